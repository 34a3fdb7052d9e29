package sys

import (
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// flags returns fd's descriptor and status flags.
func flags(t *testing.T, fd uintptr) (fdFlags, statusFlags int) {
	t.Helper()
	f, err := unix.FcntlInt(fd, unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

// TestPipeAndNullBlockAndCloseOnExec: both are close-on-exec, and block in
// the kernel (not in non-blocking mode for Go's poller).
func TestPipeAndNullBlockAndCloseOnExec(t *testing.T) {
	r, w, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, err := OpenNull()
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, c := range []struct {
		name string
		fd   func() uintptr
	}{
		{"pipe read end", func() uintptr { return rawFD(t, r) }},
		{"pipe write end", func() uintptr { return rawFD(t, w) }},
		{"/dev/null", func() uintptr { return rawFD(t, null) }},
	} {
		fdf, st := flags(t, c.fd())
		if fdf&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: not close-on-exec", c.name)
		}
		if st&unix.O_NONBLOCK != 0 {
			t.Errorf("%s: non-blocking", c.name)
		}
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b, err := io.ReadAll(r); err != nil || string(b) != "x" {
		t.Errorf("read %q, %v; want x then EOF", b, err)
	}
}

// rawFD returns f's descriptor through SyscallConn: Fd would make it
// blocking, which is what is checked.
func rawFD(t *testing.T, f *os.File) uintptr {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		t.Fatal(err)
	}
	return fd
}
