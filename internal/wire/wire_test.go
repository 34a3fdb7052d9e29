package wire

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
)

func TestMarkerRoundTrip(t *testing.T) {
	for _, m := range []Marker{
		{Role: "daemon", Next: 4, FD: 3, Pipeline: "00ff", Exe: ExeID{Dev: 2049, Ino: 77}},
		{Role: "intermediate", Next: 2, FD: 9, Pipeline: "x", ListenFDs: 3, ListenNames: []string{"web", "with space", ""},
			Name: "my\nprog\\", Keep: []int{5, 7}, Extra: map[string]string{"gen": "2 \"q\""}},
		{Role: "foreground", Next: 1, FD: -1, PID: 42, ListenFDs: 2},
	} {
		got, err := DecodeMarker(m.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

func TestDecodeMarkerRejectsForgeries(t *testing.T) {
	good := Marker{Role: "daemon", Next: 4, FD: 3, Pipeline: "p"}.Encode()
	for _, v := range []string{
		"", "garbage", "blivet1 role=daemon next=4 fd=3 pipeline=0 exe=1:2 pid=0 listen=0 names=",
		strings.Replace(good, "next=4", "next=x", 1),
		strings.Replace(good, `role=daemon`, `role=root`, 1),
		strings.Replace(good, "fd=3", "fd=1", 1),
		strings.Replace(good, " exe=0:0", "", 1),
		strings.Replace(good, "listen=0", "listen=2 name0=\"a\"", 1),
		good + ` name0="extra"`,
		good + ` keep=1`,
		good + ` role="daemon`,
	} {
		if _, err := DecodeMarker(v); !errors.Is(err, ErrForged) {
			t.Errorf("DecodeMarker(%q) = %v, want ErrForged", v, err)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	for _, r := range []Record{{Kind: KindPID, PID: 123}, {Kind: KindReady}, {Kind: KindExec}, {Kind: KindRaw, Step: 7, Errno: syscall.EACCES}, {Kind: KindEnded, Status: 0x0b00}} {
		line := Encode(r)
		if !strings.HasSuffix(string(line), "\n") || strings.Count(string(line), "\n") != 1 {
			t.Fatalf("%q is not one line", line)
		}
		got, ok := Decode(strings.TrimSuffix(string(line), "\n"))
		if !ok || !cmp.Equal(got, r) {
			t.Errorf("Decode(%q) = %+v, %v; want %+v", line, got, ok, r)
		}
	}
}

// A conflict reported by the daemon is a *pidfile.ConflictError in the
// launcher, with the holder's PID; errnos stay errnos.
func TestErrorRecordKeepsTypes(t *testing.T) {
	conflict := &stages.Error{Stage: "pidfile", Code: 69, Err: &pidfile.ConflictError{Path: "/run/a\nb.pid", PID: 4242}}
	notFound := stages.Wrap("output", 73, &fs.PathError{Op: "open", Path: "/x\\y", Err: syscall.ENOENT}).(*stages.Error)
	sysErr := &stages.Error{Stage: "setsid", Code: 71, Err: os.NewSyscallError("setsid", syscall.EPERM), Fatal: true}
	for _, e := range []*stages.Error{conflict, notFound, sysErr} {
		got, ok := Decode(strings.TrimSuffix(string(Encode(Record{Kind: KindError, Err: e})), "\n"))
		if !ok || got.Kind != KindError {
			t.Fatalf("not decoded: %+v", got)
		}
		if got.Err.Error() != e.Error() || got.Err.Code != e.Code || got.Err.Stage != e.Stage || got.Err.Fatal != e.Fatal {
			t.Errorf("got %q (%d, %q, %v), want %q", got.Err, got.Err.Code, got.Err.Stage, got.Err.Fatal, e)
		}
	}
	got, _ := Decode(strings.TrimSuffix(string(Encode(Record{Kind: KindError, Err: conflict})), "\n"))
	var c *pidfile.ConflictError
	if !errors.As(got.Err, &c) || c.PID != 4242 || c.Path != "/run/a\nb.pid" || !errors.Is(got.Err, stages.ErrLocked) {
		t.Errorf("conflict lost its type: %#v", got.Err)
	}
	got, _ = Decode(strings.TrimSuffix(string(Encode(Record{Kind: KindError, Err: notFound})), "\n"))
	if !errors.Is(got.Err, fs.ErrNotExist) {
		t.Errorf("ENOENT lost: %#v", got.Err)
	}
}

// Any byte of a stage name, a message or a path comes out as it went in,
// on one line.
func FuzzErrorRecord(f *testing.F) {
	f.Add("pidfile", "line\nbreak \\ \"quoted\"", "/run/x.pid", 69)
	f.Add("", "\xff\x00", "", 1)
	f.Fuzz(func(t *testing.T, stage, msg, path string, code int) {
		if code < 1 || code > 255 {
			code = 70
		}
		e := &stages.Error{Stage: stage, Code: code, Err: &fs.PathError{Op: msg, Path: path, Err: syscall.EIO}}
		line := string(Encode(Record{Kind: KindError, Err: e}))
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("%q is not one line", line)
		}
		got, ok := Decode(strings.TrimSuffix(line, "\n"))
		if !ok {
			t.Fatalf("not decoded: %q", line)
		}
		var pe *fs.PathError
		if got.Err.Stage != stage || got.Err.Code != code || got.Err.Error() != e.Error() ||
			!errors.As(got.Err, &pe) || pe.Op != msg || pe.Path != path || !errors.Is(got.Err, syscall.EIO) {
			t.Fatalf("round trip: %#v", got.Err)
		}
	})
}

func FuzzMarker(f *testing.F) {
	f.Add("daemon", "pipe", "name", 3)
	f.Fuzz(func(t *testing.T, role, pipeline, name string, fd int) {
		m := Marker{Role: role, Pipeline: pipeline, Name: name, FD: fd, ListenFDs: 1, ListenNames: []string{name}}
		got, err := DecodeMarker(m.Encode())
		if err != nil {
			return // rejected roles or fds
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	})
}

func TestUpgradeRoundTrip(t *testing.T) {
	u := Upgrade{Parent: 4242, FD: 5, Lock: 6, Dropped: true, Notify: "@sd notify\n", ListenFDs: 2, ListenNames: []string{"a", "b c"},
		Sockets: []UpgradeSocket{{Name: "web", Network: "tcp", Address: "127.0.0.1:80", FD: 7}, {Name: "x/y", Network: "unix", Address: "/run/a b.sock", FD: 8}}}
	got, err := DecodeUpgrade(u.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A launch marker is no upgrade marker, and the other way round.
	if _, err := DecodeUpgrade(Marker{Role: "daemon", FD: 3}.Encode()); !errors.Is(err, ErrForged) {
		t.Errorf("DecodeUpgrade(launch marker) = %v", err)
	}
	if _, err := DecodeMarker(u.Encode()); !errors.Is(err, ErrForged) {
		t.Errorf("DecodeMarker(upgrade marker) = %v", err)
	}
	if _, err := DecodeUpgrade(strings.Replace(u.Encode(), "fd=5", "fd=1", 1)); !errors.Is(err, ErrForged) {
		t.Errorf("upgrade marker with fd 1 accepted: %v", err)
	}
}
