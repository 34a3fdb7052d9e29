//go:build linux

// Real-process tests of the pidfile and the lock: they read /proc and use
// Linux tools (flock, pkill, start-stop-daemon) and a child subreaper.

package blivet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/pidfile"
	"golang.org/x/sys/unix"
)

// pfOpts is the configuration a test hands to the "pidfile-daemon" helper.
type pfOpts struct {
	Pidfile    string `json:",omitempty"`
	Lockfile   string `json:",omitempty"`
	NoLock     bool   `json:",omitempty"`
	OnSignal   bool   `json:",omitempty"`
	Foreground bool   `json:",omitempty"`
	Umask      *int   `json:",omitempty"`
	// Reaper makes the launcher a child subreaper that returns from
	// Daemonize (WithLauncherReturn) and reaps the daemon, reporting its
	// wait status as "reaped".
	Reaper bool `json:",omitempty"`
	// Barrier, when set, makes the daemon wait for this file to exist just
	// before the pidfile stage (after reporting "barrier"), so many daemons
	// race for the lock at once.
	Barrier string `json:",omitempty"`
	// DirtySig makes the helper first re-execute itself (same PID) with
	// this signal ignored, as a shell starts a background job with SIGINT
	// ignored.
	DirtySig int `json:",omitempty"`
	// FailAfter makes a hook after the env stage (a later stage than
	// pidfile) fail: "error" (exit code 3) or "panic" (70).
	FailAfter string `json:",omitempty"`
	// Mode says what the daemon does after Daemonize returns:
	//   ""                    report ready, sleep
	//   "report-error"        ReportError(code 42) before ready
	//   "close"               ready; on trigger "go": Close, report "closed", sleep
	//   "report-error-after"  ready; on trigger "go": ReportError(code 43)
	//   "exit"                ready; on trigger "go": os.Exit(0) without Close
	//   "panic"               ready; on trigger "go": panic without Close
	//   "return"              ready; on trigger "go": return from the helper's main
	//   "close-then-wait"     ready; on trigger "go": Close, report "closed", sleep
	//   "never-ready"         never reports ready (with Timeout: stopped by the launcher)
	Mode string `json:",omitempty"`
	// Timeout is WithReadyTimeout's duration ("" for none).
	Timeout string `json:",omitempty"`
}

func (o pfOpts) options(h *blivettest.H) []blivet.Option {
	var opts []blivet.Option
	if o.Pidfile != "" {
		opts = append(opts, blivet.WithPidfile(o.Pidfile))
	}
	if o.Lockfile != "" {
		opts = append(opts, blivet.WithLockfile(o.Lockfile))
	}
	if o.NoLock {
		opts = append(opts, blivet.WithoutLockfile())
	}
	if o.OnSignal {
		opts = append(opts, blivet.WithCleanupOnSignal())
	}
	if o.Umask != nil {
		opts = append(opts, blivet.WithUmask(os.FileMode(*o.Umask)))
	}
	if o.Timeout != "" {
		d, err := time.ParseDuration(o.Timeout)
		if err != nil {
			panic(err)
		}
		opts = append(opts, blivet.WithReadyTimeout(d))
	}
	opts = append(opts, blivet.WithForeground(o.Foreground))
	if o.Reaper {
		opts = append(opts, blivet.WithLauncherReturn())
	}
	if o.Barrier != "" {
		opts = append(opts, blivet.WithHookBefore("pidfile", func(*blivet.State) error {
			h.Report("barrier", os.Getpid())
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
				if _, err := os.Stat(o.Barrier); err == nil {
					return nil
				}
			}
			return errors.New("barrier never opened")
		}))
	}
	switch o.FailAfter {
	case "error":
		opts = append(opts, blivet.WithHookAfter("env", func(*blivet.State) error { return &pfAppError{3} }))
	case "panic":
		opts = append(opts, blivet.WithHookAfter("env", func(*blivet.State) error { panic("hook after env panics") }))
	}
	return opts
}

type pfAppError struct{ code int }

func (e *pfAppError) Error() string { return fmt.Sprintf("pidfile test error %d", e.code) }
func (e *pfAppError) ExitCode() int { return e.code }

func pfExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func pfSleep() {
	for {
		time.Sleep(time.Hour)
	}
}

// pfAwaitTrigger waits for the test to create the file trigger-name.
func pfAwaitTrigger(h *blivettest.H, name string) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if pfExists(filepath.Join(h.Dir, "trigger-"+name)) {
			return
		}
	}
	panic("trigger " + name + " never came")
}

func init() {
	blivettest.Register("pidfile-daemon", func(h *blivettest.H) {
		var o pfOpts
		if err := json.Unmarshal([]byte(h.Env("PIDFILE_OPTS")), &o); err != nil {
			panic(err)
		}
		if o.DirtySig != 0 && os.Getenv("PIDFILE_DIRTY_DONE") == "" {
			pfExecDirty(syscall.Signal(o.DirtySig))
		}
		if os.Getenv("BLIVET_HANDOVER") == "" {
			ign, _ := sys.StatusMask(os.Getpid(), 0, "SigIgn")
			h.Report("initial", map[string]uint64{"ign": ign})
		}
		if o.Reaper && os.Getenv("BLIVET_HANDOVER") == "" {
			// The daemon, orphaned by the intermediate, is reparented to
			// us: we can see its wait status.
			if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
				panic(err)
			}
		}
		ctx, err := blivet.Daemonize(o.options(h)...)
		if err != nil && (ctx == nil || ctx.IsDaemon()) {
			h.Report("daemonize-error", map[string]any{"msg": err.Error(), "code": blivet.ExitCodeOf(err), "pidfile_exists": pfExists(o.Pidfile)})
			os.Exit(blivet.ExitCodeOf(err))
		}
		if !ctx.IsDaemon() {
			pfReap(h, ctx.Outcome())
			os.Exit(0)
		}
		h.Report("daemon", os.Getpid())
		if o.Mode == "report-error" {
			ctx.ReportError(&pfAppError{42})
		}
		if o.Mode == "never-ready" {
			pfSleep()
		}
		if err := ctx.NotifyParent(); err != nil {
			h.Report("notify-error", err.Error())
		}
		h.Report("ready", os.Getpid())
		switch o.Mode {
		case "close":
			pfAwaitTrigger(h, "go")
			err := ctx.Close()
			st, _ := pidfile.Probe(o.Pidfile)
			h.Report("closed", map[string]any{"err": fmt.Sprint(err), "exists": pfExists(o.Pidfile), "held": st.Held})
		case "report-error-after":
			pfAwaitTrigger(h, "go")
			ctx.ReportError(&pfAppError{43})
		case "exit":
			pfAwaitTrigger(h, "go")
			os.Exit(0)
		case "panic":
			pfAwaitTrigger(h, "go")
			panic("daemon panics after ready")
		case "return":
			pfAwaitTrigger(h, "go")
			return // blivettest.Main then exits 0, like returning from main
		case "close-then-wait":
			pfAwaitTrigger(h, "go")
			ctx.Close()
			h.Report("closed", map[string]any{"exists": pfExists(o.Pidfile)})
		}
		pfSleep()
	})
}

// pfReaped is the daemon's wait status as its subreaper saw it.
type pfReaped struct {
	PID      int
	Signaled bool
	Signal   int
	Exit     int
	Err      string
}

// pfReap runs in a subreaper launcher: it waits for the daemon.
func pfReap(h *blivettest.H, out blivet.Outcome) {
	h.Report("outcome", map[string]any{"pid": out.PID, "code": out.ExitCode})
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			h.Report("reaped", pfReaped{Err: err.Error()})
			return
		}
		if pid == out.PID {
			h.Report("reaped", pfReaped{PID: pid, Signaled: ws.Signaled(), Signal: int(ws.Signal()), Exit: ws.ExitStatus()})
			return
		}
	}
}

func pfStart(t *testing.T, o pfOpts, extra ...blivettest.LaunchOption) (*blivettest.Run, *exec.Cmd) {
	t.Helper()
	data, _ := json.Marshal(o)
	return blivettest.Start(t, "pidfile-daemon", append([]blivettest.LaunchOption{blivettest.WithEnv("PIDFILE_OPTS", string(data))}, extra...)...)
}

func pfLaunch(t *testing.T, o pfOpts, extra ...blivettest.LaunchOption) *blivettest.Run {
	t.Helper()
	r, _ := pfStart(t, o, extra...)
	r.Wait()
	return r
}

// pfUp launches a daemon that must come up, and returns it with its PID.
func pfUp(t *testing.T, o pfOpts) (*blivettest.Run, int) {
	t.Helper()
	r := pfLaunch(t, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var pid int
	r.Await("ready", &pid)
	return r, pid
}

// pfUpReaped launches a daemon whose launcher stays as its subreaper and
// reaps it the moment it dies (reported as "reaped"), so that tools that
// judge a process by kill(pid, 0), which succeeds on a zombie, never
// depend on init reaping, which may come late.
func pfUpReaped(t *testing.T, o pfOpts) (*blivettest.Run, int) {
	t.Helper()
	o.Reaper = true
	r, _ := pfStart(t, o)
	var out struct{ PID, Code int }
	r.Await("outcome", &out)
	var pid int
	r.Await("ready", &pid)
	if out.Code != 0 || out.PID != pid {
		t.Fatalf("outcome %+v, daemon %d", out, pid)
	}
	return r, pid
}

func pfRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func pfTrigger(t *testing.T, r *blivettest.Run, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.Dir, "trigger-"+name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func pfGone(t *testing.T, r *blivettest.Run, what string) {
	t.Helper()
	blivettest.Eventually(t, 10*time.Second, func() bool { return len(r.PIDs()) == 0 }, "%s: processes left running: %v", what, r.PIDs())
}

func pfProbe(t *testing.T, path string) pidfile.Status {
	t.Helper()
	st, err := pidfile.Probe(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func pfStat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// pfTool runs a command, skipping the test when it is not installed.
func pfTool(t *testing.T, pkg string, name string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (Debian package %s): interoperability not tested", name, pkg)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	code := 0
	if ee != nil {
		code = ee.ExitCode()
	}
	return string(out), code
}

func TestPidfileWrittenLockedAndVisible(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	_, pid := pfUp(t, pfOpts{Pidfile: path, Umask: ptr(0o027)})
	if got, want := pfRead(t, path), strconv.Itoa(pid)+"\n"; got != want {
		t.Errorf("pidfile content %q, want exactly %q", got, want)
	}
	if st := pfStat(t, path); st.Mode&0o777 != 0o640 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("pidfile mode %#o owner %d, want 0640 (0644 under umask 027) owned by %d", st.Mode&0o777, st.Uid, os.Geteuid())
	}
	if st := pfProbe(t, path); !st.Held || st.PID != pid {
		t.Errorf("Probe: %+v, want held by %d", st, pid)
	}
	// The daemon holds the lock through an open fd on the pidfile.
	if !pfHasFD(pid, path) {
		t.Errorf("daemon %d has no fd on %s", pid, path)
	}
	t.Run("flock", func(t *testing.T) {
		if out, code := pfTool(t, "util-linux", "flock", "-n", "-E", "99", path, "true"); code != 99 {
			t.Errorf("flock -n on the daemon's pidfile: exit %d (%s), want 99 (conflict)", code, out)
		}
	})
	t.Run("pkill", func(t *testing.T) {
		// -L: only if the pidfile is locked, as a live daemon's is.
		if out, code := pfTool(t, "procps", "pkill", "-0", "-L", "-F", path); code != 0 {
			t.Errorf("pkill -0 -L -F: exit %d (%s), want 0", code, out)
		}
		if out, _ := pfTool(t, "procps", "pgrep", "-L", "-F", path); strings.TrimSpace(out) != strconv.Itoa(pid) {
			t.Errorf("pgrep -F found %q, want %d", out, pid)
		}
	})
	t.Run("start-stop-daemon-status", func(t *testing.T) {
		if out, code := pfTool(t, "dpkg", "start-stop-daemon", "--status", "--pidfile", path); code != 0 {
			t.Errorf("start-stop-daemon --status: exit %d (%s), want 0 (running)", code, out)
		}
	})
}

// pfHasFD reports whether process pid has an fd open on path.
func pfHasFD(pid int, path string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == path {
			return true
		}
	}
	return false
}

func TestPidfileConflict(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	_, pid := pfUp(t, pfOpts{Pidfile: path})
	before := pfStat(t, path)
	r := pfLaunch(t, pfOpts{Pidfile: path})
	if r.ExitCode != blivet.ExitUnavailable {
		t.Fatalf("second instance: exit %d, want 69; stderr %q", r.ExitCode, r.Stderr)
	}
	for _, want := range []string{path, "PID " + strconv.Itoa(pid), "locked by another instance"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr %q does not contain %q", r.Stderr, want)
		}
	}
	after := pfStat(t, path)
	if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" || after.Ino != before.Ino || after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		t.Errorf("the losing instance touched the winner's pidfile: %q, inode %d->%d, mtime %v->%v", got, before.Ino, after.Ino, before.Mtim, after.Mtim)
	}
	pfGone(t, r, "losing instance")
	if !blivettest.Alive(pid) {
		t.Error("the winner died")
	}
	if st := pfProbe(t, path); st.PID != pid {
		t.Errorf("Probe after the conflict: %+v", st)
	}
}

func TestPidfileStaleAfterSIGKILL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	r, pid := pfUpReaped(t, pfOpts{Pidfile: path})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var reaped pfReaped
	r.Await("reaped", &reaped)
	if reaped.Err != "" || !reaped.Signaled || syscall.Signal(reaped.Signal) != syscall.SIGKILL {
		t.Fatalf("daemon's wait status %+v, want killed by SIGKILL", reaped)
	}
	// Reaped: every thread has exited, the lock is gone. Left on disk,
	// unlocked.
	if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
		t.Fatalf("stale pidfile %q", got)
	}
	if st := pfProbe(t, path); st != (pidfile.Status{Exists: true}) {
		t.Fatalf("Probe of a stale pidfile: %+v, want existing and not held", st)
	}
	t.Run("tools-see-stale", func(t *testing.T) {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Fatalf("kill(%d, 0) after the daemon was reaped: %v", pid, err)
		}
		if out, code := pfTool(t, "procps", "pkill", "-0", "-L", "-F", path); code == 0 {
			t.Errorf("pkill -L -F matched a stale pidfile (%s)", out)
		}
		if out, code := pfTool(t, "dpkg", "start-stop-daemon", "--status", "--pidfile", path); code != 1 {
			t.Errorf("start-stop-daemon --status: exit %d (%s), want 1 (not running, pidfile exists)", code, out)
		}
	})
	_, pid2 := pfUp(t, pfOpts{Pidfile: path})
	if got := pfRead(t, path); got != strconv.Itoa(pid2)+"\n" || pid2 == pid {
		t.Errorf("after restart the pidfile says %q, want %d", got, pid2)
	}
}

func TestPidfileCleanup(t *testing.T) {
	t.Parallel()
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "d.pid")
		r, pid := pfUp(t, pfOpts{Pidfile: path, Mode: "close"})
		pfTrigger(t, r, "go")
		var closed struct {
			Err          string
			Exists, Held bool
		}
		r.Await("closed", &closed)
		if closed.Err != "<nil>" || closed.Exists || closed.Held {
			t.Errorf("after Close: %+v, want pidfile removed and unlocked", closed)
		}
		if !blivettest.Alive(pid) || pfExists(path) {
			t.Errorf("daemon alive %v, pidfile exists %v: want the pidfile removed by Close in a live daemon", blivettest.Alive(pid), pfExists(path))
		}
	})
	t.Run("report-error-before-ready", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "d.pid")
		r := pfLaunch(t, pfOpts{Pidfile: path, Mode: "report-error"})
		if r.ExitCode != 42 {
			t.Fatalf("exit %d, want 42; stderr %q", r.ExitCode, r.Stderr)
		}
		// Removed before the launcher was told: no waiting needed.
		if pfExists(path) {
			t.Error("pidfile left after ReportError")
		}
		pfGone(t, r, "ReportError")
	})
	t.Run("report-error-after-ready", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "d.pid")
		r, pid := pfUp(t, pfOpts{Pidfile: path, Mode: "report-error-after"})
		pfTrigger(t, r, "go")
		blivettest.AwaitGone(t, pid, 10*time.Second)
		if pfExists(path) {
			t.Error("pidfile left after ReportError")
		}
	})
	for _, fail := range []struct {
		how  string
		code int
	}{{"error", 3}, {"panic", blivet.ExitSoftware}} {
		t.Run("later-stage-"+fail.how, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "d.pid")
			r := pfLaunch(t, pfOpts{Pidfile: path, FailAfter: fail.how})
			if r.ExitCode != fail.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.ExitCode, fail.code, r.Stderr)
			}
			if pfExists(path) {
				t.Error("pidfile left after a later stage failed")
			}
			pfGone(t, r, "failed daemon")
		})
	}
	t.Run("foreground-later-stage-error", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "d.pid")
		r := pfLaunch(t, pfOpts{Pidfile: path, Foreground: true, FailAfter: "error"})
		var e struct {
			Code          int
			PidfileExists bool `json:"pidfile_exists"`
		}
		r.Read("daemonize-error", &e)
		if e.Code != 3 || e.PidfileExists {
			t.Errorf("foreground Daemonize error: %+v, want code 3 and the pidfile removed before it returned", e)
		}
	})
	// The row "left on disk, unlocked; the next start overwrites it"
	// (SIGKILL: TestPidfileStaleAfterSIGKILL).
	for _, mode := range []string{"exit", "panic", "return"} {
		t.Run(mode+"-without-close", func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "d.pid")
			r, pid := pfUp(t, pfOpts{Pidfile: path, Mode: mode})
			pfTrigger(t, r, "go")
			// The main thread may end (and look dead) while other threads
			// still hold the lock, and init may reap late: wait for what
			// the test is about, the lock released and every thread gone.
			blivettest.Eventually(t, 10*time.Second, func() bool { return !pfProbe(t, path).Held },
				"pidfile of an ended daemon still locked: %+v (daemon %d, threads alive: %v)", pfProbe(t, path), pid, blivettest.Alive(pid))
			blivettest.AwaitGone(t, pid, 10*time.Second)
			if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
				t.Errorf("pidfile %q, want left on disk", got)
			}
			_, pid2 := pfUp(t, pfOpts{Pidfile: path})
			if got := pfRead(t, path); got != strconv.Itoa(pid2)+"\n" {
				t.Errorf("next start did not overwrite the pidfile: %q, want %d", got, pid2)
			}
		})
	}
}

// A daemon the launcher stops because it was not ready in time dies of the
// SIGTERM without cleaning up; the launcher, once it is gone, removes the
// pidfile it left (it still names it, and nobody holds the lock).
func TestPidfileRemovedAfterReadyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	// 1s: long enough for the daemon to take the pidfile and report on a
	// loaded machine (the test reads the report).
	r := pfLaunch(t, pfOpts{Pidfile: path, Mode: "never-ready", Timeout: "1s"})
	if r.ExitCode != 75 || !strings.Contains(r.Stderr, "not ready after 1s") {
		t.Fatalf("exit %d stderr %q, want 75 and the timeout", r.ExitCode, r.Stderr)
	}
	var pid int
	r.Read("daemon", &pid)
	// The launcher returned only once the daemon was gone, and removed
	// its pidfile before returning: nothing to wait for here.
	if blivettest.Alive(pid) {
		t.Errorf("daemon %d still runs after the launcher returned", pid)
	}
	if pfExists(path) {
		t.Errorf("pidfile %s left behind (%q) by a daemon stopped at the ready timeout", path, pfRead(t, path))
	}
}

func TestPidfileCleanupOnSignal(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run("foreground-"+sig.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "d.pid")
			r, cmd := pfStart(t, pfOpts{Pidfile: path, Foreground: true, OnSignal: true})
			var pid int
			r.Await("ready", &pid)
			if pid != cmd.Process.Pid || pfRead(t, path) != strconv.Itoa(pid)+"\n" {
				t.Fatalf("foreground pidfile %q, process %d", pfRead(t, path), cmd.Process.Pid)
			}
			cmd.Process.Signal(sig)
			r.Wait()
			if r.Signal != sig {
				t.Errorf("process ended with exit %d signal %v, want signal %v", r.ExitCode, r.Signal, sig)
			}
			if pfExists(path) {
				t.Error("pidfile left after the signal")
			}
		})
	}
	t.Run("daemon-SIGTERM", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "d.pid")
		r, _ := pfStart(t, pfOpts{Pidfile: path, OnSignal: true, Reaper: true})
		var out struct{ PID, Code int }
		r.Await("outcome", &out)
		var pid int
		r.Await("ready", &pid)
		if out.Code != 0 || out.PID != pid {
			t.Fatalf("outcome %+v, daemon %d", out, pid)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		var reaped pfReaped
		r.Await("reaped", &reaped)
		if reaped.Err != "" || !reaped.Signaled || syscall.Signal(reaped.Signal) != syscall.SIGTERM {
			t.Errorf("daemon's wait status %+v, want killed by SIGTERM", reaped)
		}
		if pfExists(path) {
			t.Error("pidfile left after SIGTERM")
		}
		r.Wait()
	})
	t.Run("after-close", func(t *testing.T) {
		t.Parallel()
		// Close stops the handling: a later SIGTERM still ends the
		// process by SIGTERM.
		path := filepath.Join(t.TempDir(), "d.pid")
		r, cmd := pfStart(t, pfOpts{Pidfile: path, Foreground: true, OnSignal: true, Mode: "close-then-wait"})
		var pid int
		r.Await("ready", &pid)
		pfTrigger(t, r, "go")
		var closed struct{ Exists bool }
		r.Await("closed", &closed)
		if closed.Exists {
			t.Error("pidfile left after Close")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		r.Wait()
		if r.Signal != syscall.SIGTERM {
			t.Errorf("ended with exit %d signal %v (stderr %q), want SIGTERM", r.ExitCode, r.Signal, r.Stderr)
		}
	})
	t.Run("started-with-SIGINT-ignored", func(t *testing.T) {
		t.Parallel()
		// A shell starts background jobs with SIGINT ignored. The handling
		// is installed after the signals stage cleaned the inherited state,
		// so nothing undoes it.
		path := filepath.Join(t.TempDir(), "d.pid")
		r, cmd := pfStart(t, pfOpts{Pidfile: path, Foreground: true, OnSignal: true, DirtySig: int(syscall.SIGINT)})
		var pid int
		r.Await("ready", &pid)
		var initial struct{ Ign uint64 }
		r.Read("initial", &initial)
		if initial.Ign&(1<<(syscall.SIGINT-1)) == 0 {
			t.Fatalf("helper started with SigIgn %#x: SIGINT not ignored, the test proves nothing", initial.Ign)
		}
		cmd.Process.Signal(syscall.SIGINT)
		r.Wait()
		if r.Signal != syscall.SIGINT {
			t.Errorf("ended with exit %d signal %v (stderr %q), want SIGINT", r.ExitCode, r.Signal, r.Stderr)
		}
		if pfExists(path) {
			t.Error("pidfile left after the signal")
		}
	})
	t.Run("without-option", func(t *testing.T) {
		t.Parallel()
		// The row "left on disk": without WithCleanupOnSignal the Go
		// runtime's default ends the process, the pidfile stays, unlocked.
		path := filepath.Join(t.TempDir(), "d.pid")
		r, cmd := pfStart(t, pfOpts{Pidfile: path, Foreground: true})
		var pid int
		r.Await("ready", &pid)
		cmd.Process.Signal(syscall.SIGTERM)
		r.Wait()
		if r.Signal != syscall.SIGTERM {
			t.Errorf("ended with exit %d signal %v", r.ExitCode, r.Signal)
		}
		if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
			t.Errorf("pidfile %q, want left on disk", got)
		}
		if pfProbe(t, path).Held {
			t.Error("still locked")
		}
	})
}

func TestPidfileStandaloneLockfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, lock := filepath.Join(dir, "d.pid"), filepath.Join(dir, "d.lock")
	r, pid := pfUp(t, pfOpts{Pidfile: path, Lockfile: lock, Mode: "close"})
	if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
		t.Errorf("pidfile %q", got)
	}
	if st := pfProbe(t, lock); !st.Held || st.PID != pid {
		t.Errorf("lockfile: %+v, want held by %d", st, pid)
	}
	if pfProbe(t, path).Held {
		t.Error("the pidfile is locked too; the lock belongs on the lockfile")
	}
	second := pfLaunch(t, pfOpts{Pidfile: path, Lockfile: lock})
	if second.ExitCode != blivet.ExitUnavailable || !strings.Contains(second.Stderr, lock) || !strings.Contains(second.Stderr, "PID "+strconv.Itoa(pid)) {
		t.Errorf("second instance: exit %d, stderr %q; want 69 naming %s and PID %d", second.ExitCode, second.Stderr, lock, pid)
	}
	if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
		t.Errorf("the loser rewrote the pidfile: %q", got)
	}
	pfTrigger(t, r, "go")
	var closed struct{ Exists bool }
	r.Await("closed", &closed)
	if closed.Exists || pfExists(path) {
		t.Error("pidfile left after Close")
	}
	if !pfExists(lock) {
		t.Error("the standalone lockfile was removed")
	}
	if pfProbe(t, lock).Held {
		t.Error("lockfile still locked after Close")
	}
}

func TestPidfileWithoutLockfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	_, pid1 := pfUp(t, pfOpts{Pidfile: path, NoLock: true})
	_, pid2 := pfUp(t, pfOpts{Pidfile: path, NoLock: true})
	if !blivettest.Alive(pid1) || !blivettest.Alive(pid2) {
		t.Fatalf("both instances should run: %d %v, %d %v", pid1, blivettest.Alive(pid1), pid2, blivettest.Alive(pid2))
	}
	if got := pfRead(t, path); got != strconv.Itoa(pid2)+"\n" {
		t.Errorf("pidfile %q, want the second instance's %d", got, pid2)
	}
	if pfProbe(t, path).Held {
		t.Error("WithoutLockfile left a lock")
	}
}

func TestPidfileUnsafePathsRefused(t *testing.T) {
	t.Parallel()
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		os.WriteFile(victim, []byte("precious\n"), 0o600)
		path := filepath.Join(dir, "d.pid")
		os.Symlink(victim, path)
		r := pfLaunch(t, pfOpts{Pidfile: path})
		if r.ExitCode != blivet.ExitCantCreate || !strings.Contains(r.Stderr, "symbolic link") {
			t.Errorf("exit %d, stderr %q; want 73 naming the symlink rule", r.ExitCode, r.Stderr)
		}
		if got := pfRead(t, victim); got != "precious\n" {
			t.Errorf("victim file changed: %q", got)
		}
		pfGone(t, r, "refused daemon")
	})
	t.Run("unsafe-directory", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the directory rule applies to root; run as root to test it")
		}
		dir := filepath.Join(t.TempDir(), "run")
		os.Mkdir(dir, 0o755)
		path := filepath.Join(dir, "d.pid")
		os.WriteFile(path, []byte("precious\n"), 0o644)
		os.Chmod(dir, 0o777)
		r := pfLaunch(t, pfOpts{Pidfile: path})
		if r.ExitCode != blivet.ExitCantCreate || !strings.Contains(r.Stderr, "must not be writable by group or others unless it is sticky") {
			t.Errorf("exit %d, stderr %q; want 73 naming the directory rule", r.ExitCode, r.Stderr)
		}
		if got := pfRead(t, path); got != "precious\n" {
			t.Errorf("file in the unsafe directory changed: %q", got)
		}
		pfGone(t, r, "refused daemon")
	})
	t.Run("directory-is-usage-error", func(t *testing.T) {
		r := pfLaunch(t, pfOpts{Pidfile: t.TempDir()})
		if r.ExitCode != blivet.ExitUsage {
			t.Errorf("pidfile path is a directory: exit %d (%q), want 64", r.ExitCode, r.Stderr)
		}
	})
}

func TestPidfileENOSPC(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	r := pfLaunch(t, pfOpts{Pidfile: "/dev/full"})
	if r.ExitCode != blivet.ExitCantCreate || !strings.Contains(r.Stderr, "no space left on device") {
		t.Errorf("exit %d, stderr %q; want 73 with ENOSPC", r.ExitCode, r.Stderr)
	}
	pfGone(t, r, "daemon that could not write its pidfile")
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Errorf("/dev/full: %v", err)
	}
}

func TestPidfileForegroundConflict(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	r1, cmd := pfStart(t, pfOpts{Pidfile: path, Foreground: true})
	var pid int
	r1.Await("ready", &pid)
	if pid != cmd.Process.Pid || pfProbe(t, path).PID != pid {
		t.Fatalf("foreground lock: pid %d, process %d, probe %+v", pid, cmd.Process.Pid, pfProbe(t, path))
	}
	r2 := pfLaunch(t, pfOpts{Pidfile: path, Foreground: true})
	var e struct {
		Code int
		Msg  string
	}
	r2.Read("daemonize-error", &e)
	if e.Code != blivet.ExitUnavailable || r2.ExitCode != blivet.ExitUnavailable || !strings.Contains(e.Msg, "PID "+strconv.Itoa(pid)) {
		t.Errorf("second foreground instance: %+v exit %d, want 69 naming PID %d", e, r2.ExitCode, pid)
	}
}

// TestPidfileRace starts many daemons that all reach the lock at once,
// in several rounds side by side: in each, exactly one runs, every other
// launcher exits 69, and the pidfile names the survivor.
func TestPidfileRace(t *testing.T) {
	t.Parallel()
	const launches, rounds = 8, 5
	for round := 0; round < rounds; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) {
			t.Parallel() // the rounds are independent: each has its own pidfile
			dir := t.TempDir()
			path, barrier := filepath.Join(dir, "d.pid"), filepath.Join(dir, "go")
			runs := make([]*blivettest.Run, launches)
			for i := range runs {
				runs[i], _ = pfStart(t, pfOpts{Pidfile: path, Barrier: barrier})
			}
			for _, r := range runs {
				var pid int
				r.Await("barrier", &pid)
			}
			if err := os.WriteFile(barrier, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var winners []*blivettest.Run
			for _, r := range runs {
				r.Wait()
				switch r.ExitCode {
				case 0:
					winners = append(winners, r)
				case blivet.ExitUnavailable:
					if !strings.Contains(r.Stderr, path) {
						t.Errorf("round %d: loser's message %q does not name the pidfile", round, r.Stderr)
					}
				default:
					t.Errorf("round %d: launcher exit %d, stderr %q", round, r.ExitCode, r.Stderr)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d launchers exited 0, want exactly 1", round, len(winners))
			}
			var pid int
			winners[0].Await("ready", &pid)
			for _, r := range runs {
				if r != winners[0] {
					pfGone(t, r, "losing instance")
					if !strings.Contains(r.Stderr, "PID "+strconv.Itoa(pid)) {
						t.Errorf("round %d: loser's message %q does not name the winner %d", round, r.Stderr, pid)
					}
				}
			}
			if live := winners[0].PIDs(); len(live) != 1 || live[0] != pid {
				t.Errorf("round %d: winner's live processes %v, want just the daemon %d", round, live, pid)
			}
			if got := pfRead(t, path); got != strconv.Itoa(pid)+"\n" {
				t.Errorf("round %d: pidfile %q, want the survivor %d", round, got, pid)
			}
			if st := pfProbe(t, path); st.PID != pid {
				t.Errorf("round %d: lock held by %+v, want %d", round, st, pid)
			}
			for _, r := range runs {
				r.Kill()
			}
		})
	}
}

func TestPidfileStartStopDaemon(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	// --retry waits until the process is gone as start-stop-daemon sees
	// it: reaped. The subreaper launcher reaps it at once.
	_, pid := pfUpReaped(t, pfOpts{Pidfile: path, OnSignal: true})
	out, code := pfTool(t, "dpkg", "start-stop-daemon", "--stop", "--pidfile", path, "--retry", "TERM/10")
	if code != 0 {
		t.Fatalf("start-stop-daemon --stop: exit %d (%s)", code, out)
	}
	if !blivettest.Gone(pid) {
		t.Errorf("daemon %d still has running threads after start-stop-daemon --stop --retry", pid)
	}
	if pfExists(path) {
		t.Error("pidfile left: WithCleanupOnSignal should have removed it")
	}
	if out, code := pfTool(t, "dpkg", "start-stop-daemon", "--status", "--pidfile", path); code != 3 {
		t.Errorf("--status after stop: exit %d (%s), want 3 (not running)", code, out)
	}
}

func TestPidfilePkillStops(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "d.pid")
	_, pid := pfUp(t, pfOpts{Pidfile: path, OnSignal: true})
	if out, code := pfTool(t, "procps", "pkill", "-F", path); code != 0 {
		t.Fatalf("pkill -F: exit %d (%s)", code, out)
	}
	blivettest.AwaitGone(t, pid, 10*time.Second)
	if pfExists(path) {
		t.Error("pidfile left after pkill's SIGTERM")
	}
}

// pfExecDirty re-executes the helper in place with sig ignored, which
// survives exec. (Blocking it would prove nothing: the Go runtime unblocks
// SIGTERM and SIGINT at startup, and replaces an inherited SIG_IGN for
// every signal but SIGHUP, SIGINT and SIGPIPE.)
func pfExecDirty(sig syscall.Signal) {
	signal.Ignore(sig)
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	panic(syscall.Exec(exe, os.Args, append(os.Environ(), "PIDFILE_DIRTY_DONE=1")))
}
