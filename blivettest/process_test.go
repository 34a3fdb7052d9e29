package blivettest_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
)

func TestMain(m *testing.M) { blivettest.Main(m) }

func init() {
	blivettest.Register("blivettest-daemon", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithCleanupOnSignal(),
			blivet.WithStdout(filepath.Join(h.Dir, "out.log")))
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		h.Report("daemon", os.Getpid())
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		select {}
	})
	blivettest.Register("blivettest-drop", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithUser("nobody"), blivet.WithCleanupOnSignal())
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		if err := ctx.DropPrivileges(); err != nil {
			ctx.ReportError(err)
		}
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		h.Report("uid", os.Geteuid()) // after the drop, in the report directory
		select {}
	})
	blivettest.Register("blivettest-fail", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize()
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		ctx.ReportError(blivet.WrapError("app", 42, os.ErrNotExist))
	})
}

func TestStartDaemon(t *testing.T) {
	d := blivettest.StartDaemon(t, "blivettest-daemon")
	var pid int
	d.Await("daemon", &pid)
	if pid != d.PID || d.Pidfile != filepath.Join(d.Dir, blivettest.PidfileName) || !blivettest.Alive(d.PID) {
		t.Fatalf("daemon pid %d, StartDaemon says %d from %q", pid, d.PID, d.Pidfile)
	}
	if d.PID == os.Getpid() || d.ExitCode != 0 {
		t.Fatalf("pid %d exit %d", d.PID, d.ExitCode)
	}
	d.Stop()
	if blivettest.Alive(d.PID) {
		t.Fatal("alive after Stop")
	}
	if _, err := os.Stat(d.Pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile after SIGTERM with WithCleanupOnSignal: %v", err)
	}
}

// TestStartDaemonWithDrop: a helper that drops privileges can still write
// its reports in the directory blivettest creates, and its pidfile there
// (left to root) holds no PID once it has stopped.
func TestStartDaemonWithDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: dropping privileges needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	d := blivettest.StartDaemon(t, "blivettest-drop")
	var uid int
	d.Await("uid", &uid)
	if strconv.Itoa(uid) != u.Uid {
		t.Errorf("daemon reports euid %d, want nobody's %s", uid, u.Uid)
	}
	d.Stop()
	if data, err := os.ReadFile(d.Pidfile); err == nil && len(data) != 0 {
		t.Errorf("pidfile after a stop as nobody: %q, want removed or empty", data)
	}
}

func TestLaunchReportsTheDaemonsError(t *testing.T) {
	r := blivettest.Launch(t, "blivettest-fail")
	if r.ExitCode != 42 || !strings.Contains(r.Stderr, "app") {
		t.Fatalf("exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	// The daemon reports, then ends: it may still be exiting right now.
	blivettest.Eventually(t, 10*time.Second, func() bool { return len(r.PIDs()) == 0 }, "the failed daemon is still alive: %v", r.PIDs())
}
