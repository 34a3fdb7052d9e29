package handover

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/google/go-cmp/cmp"
)

func TestMarkerRoundTrip(t *testing.T) {
	m := Marker{Role: "daemon", Next: 4, FD: 3, Pipeline: "00ff", Exe: sys.ExeID{Dev: 2049, Ino: 77}, PID: 0}
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeRejectsForgeries(t *testing.T) {
	for _, v := range []string{
		"", "garbage", "blivet0 role=daemon",
		"blivet1 role=daemon next=4 fd=3 pipeline=0 exe=1:2",               // missing field
		"blivet1 role=daemon next=x fd=3 pipeline=0 exe=1:2 pid=0",         // bad number
		"blivet1 role=root next=4 fd=3 pipeline=0 exe=1:2 pid=0",           // unknown role
		"blivet1 role=daemon next=4 fd=1 pipeline=0 exe=1:2 pid=0",         // stdio is no pipe
		"blivet1 role=daemon next=4 fd=3 pipeline=0 exe=1:2 pid=0 extra=1", // unknown field
	} {
		if _, err := Decode(v); !errors.Is(err, ErrForged) {
			t.Errorf("Decode(%q) = %v, want ErrForged", v, err)
		}
	}
}

func TestVerify(t *testing.T) {
	_, exe, err := sys.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	good := Marker{Role: "daemon", Next: 1, FD: int(w.Fd()), Pipeline: "p", Exe: exe}
	if err := good.Verify("p"); err != nil {
		t.Fatalf("genuine marker: %v", err)
	}
	cases := map[string]Marker{
		"pipeline differs":    good,
		"executable changed":  {Role: "daemon", Next: 1, FD: int(w.Fd()), Pipeline: "q", Exe: sys.ExeID{Dev: exe.Dev, Ino: exe.Ino + 1}},
		"not the write end":   {Role: "daemon", Next: 1, FD: int(r.Fd()), Pipeline: "q", Exe: exe},
		"for PID":             {Role: "foreground", Next: 1, FD: -1, Pipeline: "q", Exe: exe, PID: os.Getpid() + 1},
		"bad file descriptor": {Role: "daemon", Next: 1, FD: 999, Pipeline: "q", Exe: exe},
	}
	for want, m := range cases {
		err := m.Verify("q")
		if want == "pipeline differs" {
			err = m.Verify("other")
		}
		if !errors.Is(err, ErrForged) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

func TestEnvironStripsMarkers(t *testing.T) {
	env := []string{"A=1", EnvKey + "=stale", "B=2"}
	m := Marker{Role: "intermediate", Next: 2, FD: 3, Pipeline: "x"}
	got := Environ(env, &m)
	want := []string{"A=1", "B=2", EnvKey + "=" + m.Encode()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
