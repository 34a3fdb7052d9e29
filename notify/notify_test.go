package notify

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blivet-go/blivet/stages"
)

func TestAwaitOutcomes(t *testing.T) {
	cases := []struct {
		name, wire string
		code       int
		pid        int
		msg        string
	}{
		{"ready", "blivet:pid 42\nblivet:ready\n", 0, 42, ""},
		{"error", "blivet:pid 7\nblivet:error 69 \"pidfile\" \"held by \\\"x\\\" 12\"\n", 69, 7, "pidfile: held by \"x\" 12"},
		{"raw errno", "blivet:error 71 \"setsid\" \"setsid: errno=1\"\n", 71, 0, "setsid: setsid: operation not permitted"},
		{"eof", "blivet:pid 9\n", 70, 9, "exited before it was ready"},
		{"exec then eof", "blivet:pid 9\nblivet:exec\n", 0, 9, ""},
		{"exec then error", "blivet:exec\nblivet:error 66 \"exec\" \"not found\"\n", 66, 0, "exec: not found"},
		{"crash", "blivet:pid 3\npanic: boom\n\ngoroutine 1 [running]:\n", 70, 3, "panic: boom"},
		{"bad code", "blivet:error 999 \"x\" \"y\"\n", 70, 0, "x: y"},
		{"partial record", "blivet:rea", 70, 0, "blivet:rea"},
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
