//go:build linux

package blivet_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
)

func init() {
	// identity: a daemon that reports how the system names it.
	blivettest.Register("identity", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithAutoNotify())
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		comm, _ := os.ReadFile("/proc/self/comm")
		exe, _ := os.Readlink("/proc/self/exe")
		cmdline, _ := os.ReadFile("/proc/self/cmdline")
		h.Report("identity", []string{strings.TrimSpace(string(comm)), exe, string(cmdline)})
		select {}
	})
	// conflict-return: a launcher that returns (WithLauncherReturn) and
	// reports what errors.As finds in the daemon's error.
	blivettest.Register("conflict-return", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Env("PIDFILE")), blivet.WithAutoNotify(), blivet.WithLauncherReturn())
		if ctx != nil && ctx.IsDaemon() {
			h.Report("daemon", os.Getpid())
			select {}
		}
		var c *pidfile.ConflictError
		var e *blivet.Error
		h.Report("outcome", []any{errors.As(err, &c), c.PID, errors.Is(err, blivet.ErrLocked), errors.As(err, &e) && e.Stage == "pidfile", blivet.ExitCodeOf(err)})
		os.Exit(0)
	})
	// hook-fork2: a hook between setsid and fork2 ends the plan after
	// setsid: the re-executed program must play the intermediate.
	blivettest.Register("hook-fork2", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithAutoNotify(), blivet.WithHookBefore("fork2", func(s *blivet.State) error {
			h.Report("hook-role", s.Role.String())
			return nil
		}))
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		sid, _ := unix.Getsid(0)
		h.Report("daemon", []int{os.Getpid(), sid})
		_ = ctx
		select {}
	})
	// slow-failure: a daemon that reports a failure and goes on ending
	// for a while: its launcher must not return before it is gone.
	blivettest.Register("slow-failure", func(h *blivettest.H) {
		_, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithAutoNotify(),
			blivet.WithStageBefore("notify", slowFailure{h}))
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		select {}
	})
}

type slowFailure struct{ h *blivettest.H }

func (slowFailure) Name() string { return "slow-failure" }

func (f slowFailure) Run(s *stages.State) error {
	f.h.Report("daemon", os.Getpid())
	_ = s.Line.Fail(stages.Errorf("slow-failure", 73, "giving up"))
	time.Sleep(400 * time.Millisecond) // still ending when the launcher learns the failure
	os.Exit(73)
	return nil
}

// After a lock conflict in the daemon, the launcher that returns finds a
// *pidfile.ConflictError naming the holder, with the stage and exit code.
func TestConflictErrorReachesTheLauncher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.pid")
	first := blivettest.Launch(t, "conflict-return", blivettest.WithEnv("PIDFILE", path))
	var holder int
	first.Await("daemon", &holder)
	second := blivettest.Launch(t, "conflict-return", blivettest.WithEnv("PIDFILE", path))
	var out []any
	second.Await("outcome", &out)
	if out[0] != true || int(out[1].(float64)) != holder || out[2] != true || out[3] != true || int(out[4].(float64)) != 69 {
		t.Errorf("launcher saw [As ConflictError, its PID, Is ErrLocked, stage pidfile, code] = %v; want [true %d true true 69]", out, holder)
	}
}

// A hook between setsid and fork2 runs in the intermediate, whatever
// part of the launch was planned, and the daemon still does not lead its
// session.
func TestHookBetweenSetsidAndFork2(t *testing.T) {
	r := blivettest.Launch(t, "hook-fork2")
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d: %s", r.ExitCode, r.Stderr)
	}
	var role string
	r.Read("hook-role", &role)
	var d []int
	r.Await("daemon", &d)
	if role != "intermediate" || d[1] == d[0] {
		t.Errorf("hook ran in the %s; daemon PID %d session %d", role, d[0], d[1])
	}
}

// A daemon keeps its program's name: ps, pgrep -x and the service
// manager's log show the test binary's name, not "exe"; /proc/PID/exe is
// the test binary and the command line is the one it was started with.
func TestProcessKeepsItsName(t *testing.T) {
	r := blivettest.Launch(t, "identity")
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d: %s", r.ExitCode, r.Stderr)
	}
	var id []string
	r.Await("identity", &id)
	self, _ := os.Executable()
	want := filepath.Base(self)
	if len(want) > 15 {
		want = want[:15]
	}
	if id[0] != want {
		t.Errorf("/proc/PID/comm %q, want %q", id[0], want)
	}
	if id[1] != self {
		t.Errorf("/proc/PID/exe %q, want %q", id[1], self)
	}
	if args := strings.Split(strings.TrimSuffix(id[2], "\x00"), "\x00"); args[0] != os.Args[0] {
		t.Errorf("command line %q, want it to start with %q", args, os.Args[0])
	}
}

// When the daemon reports a failure, the launcher returns only once the
// daemon is gone (every thread), so a service manager never finds a
// leftover process of a failed start.
func TestLauncherReturnsAfterFailedDaemonIsGone(t *testing.T) {
	r := blivettest.Launch(t, "slow-failure")
	if r.ExitCode != 73 || !strings.Contains(r.Stderr, "giving up") {
		t.Fatalf("launcher exit %d stderr %q, want 73 and the daemon's message", r.ExitCode, r.Stderr)
	}
	var pid int
	r.Read("daemon", &pid)
	if !blivettest.Gone(pid) {
		t.Errorf("the launcher returned while the failed daemon %d still ran (threads %v)", pid, tasks(pid))
	}
}

func tasks(pid int) []string {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
