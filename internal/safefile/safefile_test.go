package safefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/safefile"
	"github.com/blivet-go/blivet/stages"
)

func outSpec() safefile.Spec {
	return safefile.Spec{Stage: "output", What: "output file", Access: unix.O_WRONLY, Create: true, Perm: 0o644,
		Truncate: true, Allow: safefile.Regular | safefile.FIFO | safefile.DevNull, BlockFIFO: true}
}

func wantRefused(t *testing.T, err error, path, reason string) {
	t.Helper()
	var e *stages.Error
	if !errors.As(err, &e) || e.Code != stages.ExitCantCreate || e.Stage != "output" {
		t.Fatalf("error %v, want a 73 from the output stage", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), reason) {
		t.Fatalf("error %q does not name %s and %q", err, path, reason)
	}
}

// victim is a root-only file whose content, owner and mode must survive.
func victim(t *testing.T, dir string) (string, func()) {
	t.Helper()
	v := filepath.Join(dir, "victim")
	if err := os.WriteFile(v, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Stat(v, &before); err != nil {
		t.Fatal(err)
	}
	return v, func() {
		t.Helper()
		data, err := os.ReadFile(v)
		var now unix.Stat_t
		serr := unix.Stat(v, &now)
		if err != nil || string(data) != "precious\n" || serr != nil ||
			now.Uid != before.Uid || now.Gid != before.Gid || now.Mode != before.Mode {
			t.Errorf("victim touched: %q %v, uid %d gid %d mode %o", data, err, now.Uid, now.Gid, now.Mode)
		}
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	v, untouched := victim(t, dir)
	sym := filepath.Join(dir, "sym")
	hard := filepath.Join(dir, "hard")
	sub := filepath.Join(dir, "sub")
	if err := os.Symlink(v, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(v, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "new-victim"), dangling); err != nil {
		t.Fatal(err)
	}
	for path, reason := range map[string]string{
		sym: "a symbolic link", hard: "has 2 hard links", sub: "a directory", sock: "a socket",
		"/dev/zero": "a character device", dangling: "a symbolic link",
	} {
		f, err := safefile.Open(path, outSpec())
		if err == nil {
			f.Close()
		}
		wantRefused(t, err, path, reason)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new-victim")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dangling link's target was created: %v", err)
	}
	untouched()
}

// TestAppendStaysAfterBlocking: Open puts the descriptor back in blocking
// mode with one F_SETFL that passes only O_APPEND; O_APPEND must survive
// it (or an appending log would overwrite itself), and no other open bit
// may be set through it (FreeBSD reads O_CREAT there as FRDAHEAD).
func TestAppendStaysAfterBlocking(t *testing.T) {
	spec := outSpec()
	spec.Truncate, spec.Append = false, true
	f, err := safefile.Open(filepath.Join(t.TempDir(), "app.log"), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.FcntlInt(uintptr(f.FD), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_APPEND == 0 || flags&unix.O_NONBLOCK != 0 || flags&unix.O_CREAT != 0 {
		t.Errorf("flags %#x: want O_APPEND set, O_NONBLOCK and O_CREAT clear", flags)
	}
}

func TestAccepted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.log")
	if err := os.WriteFile(p, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := safefile.Open(p, outSpec())
	if err != nil {
		t.Fatal(err)
	}
	flags, _ := unix.FcntlInt(uintptr(f.FD), unix.F_GETFL, 0)
	fdflags, _ := unix.FcntlInt(uintptr(f.FD), unix.F_GETFD, 0)
	f.Close()
	if flags&unix.O_NONBLOCK != 0 || fdflags&unix.FD_CLOEXEC == 0 {
		t.Errorf("flags %#x fd flags %#x: want blocking, close-on-exec", flags, fdflags)
	}
	if st, _ := os.Stat(p); st.Size() != 0 {
		t.Errorf("not truncated: size %d", st.Size())
	}
	n, err := safefile.Open("/dev/null", outSpec())
	if err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
	n.Close()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ff, err := safefile.Open(fifo, outSpec())
	if err != nil {
		t.Fatalf("named pipe with a reader: %v", err)
	}
	ff.Close()
}

// TestDirectoryWalk: a symbolic link above the file is followed when root
// owns it, refused when another user does.
func TestDirectoryWalk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own links as another user")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	f, err := safefile.Open(filepath.Join(link, "a.log"), outSpec())
	if err != nil {
		t.Fatalf("through a root-owned link: %v", err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(real, "a.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = safefile.Open(filepath.Join(link, "b.log"), outSpec())
	wantRefused(t, err, link, "owned by uid 65534")
	if _, err := os.Stat(filepath.Join(real, "b.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b.log created through a foreign link: %v", err)
	}
	fd, err := safefile.OpenDir(link, "chdir", "working directory")
	if err == nil {
		unix.Close(fd)
		t.Fatal("OpenDir followed a foreign link")
	}
	fd, err = safefile.OpenDir(real, "chdir", "working directory")
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}

func TestChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Link(p, p+".2"); err != nil {
		t.Fatal(err)
	}
	if _, err := safefile.Chown(int(f.Fd()), p, 65534, 65534, "privdrop"); err == nil || !strings.Contains(err.Error(), "2 hard links") {
		t.Fatalf("chown of a file that gained a name: %v", err)
	}
	os.Remove(p + ".2")
	if ok, err := safefile.Chown(int(f.Fd()), p, 65534, 65534, "privdrop"); !ok || err != nil {
		t.Fatalf("chown: %v %v", ok, err)
	}
	var st unix.Stat_t
	if unix.Stat(p, &st); st.Uid != 65534 {
		t.Errorf("owner %d", st.Uid)
	}
}
