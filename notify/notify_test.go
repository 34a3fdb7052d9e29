package notify

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
)

func TestAwaitOutcomes(t *testing.T) {
	// PIDs above any pid_max: no such process, so nothing is waited for.
	const p1, p2 = 99999942, 99999907
	rec := func(r wire.Record) string { return string(wire.Encode(r)) }
	pid := func(n int) string { return rec(wire.Record{Kind: wire.KindPID, PID: n}) }
	fail := func(stage string, code int, msg string) string {
		return rec(wire.Record{Kind: wire.KindError, Err: stages.Errorf(stage, code, "%s", msg)})
	}
	cases := []struct {
		name, wire string
		code       int
		pid        int
		msg        string
	}{
		{"ready", pid(p1) + rec(wire.Record{Kind: wire.KindReady}), 0, p1, ""},
		{"error", pid(p2) + fail("pidfile", 69, "held by \"x\" 12\nsecond line"), 69, p2, "pidfile: held by \"x\" 12\nsecond line"},
		{"raw errno", rec(wire.Record{Kind: wire.KindRaw, Step: 3, Errno: syscall.EPERM}), 71, 0, "operation not permitted"},
		{"eof", pid(p1), 70, p1, "exited before it was ready"},
		{"exec then eof", pid(p1) + rec(wire.Record{Kind: wire.KindExec}), 0, p1, ""},
		{"exec then error", rec(wire.Record{Kind: wire.KindExec}) + fail("exec", 66, "not found"), 66, 0, "exec: not found"},
		{"crash", pid(p2) + "panic: boom\n\ngoroutine 1 [running]:\n", 70, p2, "panic: boom"},
		{"bad code", wire.Version + " error code=999 stage=\"x\" msg=\"y\"\n", 70, 0, "x: y"},
		{"partial record", wire.Version + " rea", 70, 0, wire.Version + " rea"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := Await(strings.NewReader(c.wire), 0, 0)
			if out.ExitCode != c.code || out.PID != c.pid {
				t.Errorf("outcome %+v, want code %d pid %d", out, c.code, c.pid)
			}
			if c.msg == "" && out.Err != nil || c.msg != "" && (out.Err == nil || !strings.Contains(out.Err.Error(), c.msg)) {
				t.Errorf("error %v, want %q", out.Err, c.msg)
			}
		})
	}
}

func TestAwaitTimeout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	out := Await(r, 20*time.Millisecond, 0)
	if out.ExitCode != stages.ExitTempFail || !errors.Is(out.Err, stages.ErrTimeout) {
		t.Errorf("outcome %+v, want 75", out)
	}
}

func TestPipeRoundTrip(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := NewPipe(w)
	if err := p.ReportPID(1234); err != nil {
		t.Fatal(err)
	}
	if err := p.Fail(&stages.Error{Stage: "chdir", Code: 71, Err: errors.New("no such\nfile")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(); err == nil {
		t.Error("Ready after Fail succeeded")
	}
	out := Await(r, 0, 0)
	if out.PID != 1234 || out.ExitCode != 71 || out.Err.Error() != "chdir: no such\nfile" {
		t.Errorf("outcome %+v", out)
	}
}

func TestLauncherGoneIsEPIPE(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	err = NewPipe(w).Ready()
	if stages.ExitCodeOf(err) != stages.ExitOSErr || !strings.Contains(err.Error(), "launcher is gone") {
		t.Errorf("Ready with no reader: %v", err)
	}
}
