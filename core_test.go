//go:build linux

package blivet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/sys"
	"golang.org/x/sys/unix"
)

// coreOpts is the configuration a test hands to the "core" helper.
type coreOpts struct {
	Chdir      string      `json:",omitempty"`
	Umask      *int        `json:",omitempty"`
	Stdout     string      `json:",omitempty"`
	Stderr     string      `json:",omitempty"`
	Append     bool        `json:",omitempty"`
	Env        [][2]string `json:",omitempty"`
	Foreground bool        `json:",omitempty"`
	NoClose    bool        `json:",omitempty"`
	Keep       []int       `json:",omitempty"`
	Return     bool        `json:",omitempty"`
	Timeout    string      `json:",omitempty"`
	// Mode says what the daemon does after Daemonize returns: "ready"
	// (default), "return", "exit3", "panic", "fail42", "fail300", "kill",
	// "wait-trigger" (waits for file trigger, then notifies and reports the
	// error), "sleep" (never ready).
	Mode  string `json:",omitempty"`
	Print string `json:",omitempty"` // written to stdout and stderr after Daemonize
	// GoIntermediate hooks setsid, which makes the launcher re-execute a Go
	// intermediate instead of a planned (raw) one.
	GoIntermediate bool `json:",omitempty"`
}

func (o coreOpts) options() []blivet.Option {
	var opts []blivet.Option
	if o.Chdir != "" {
		opts = append(opts, blivet.WithChdir(o.Chdir))
	}
	if o.Umask != nil {
		opts = append(opts, blivet.WithUmask(os.FileMode(*o.Umask)))
	}
	if o.Stdout != "" {
		opts = append(opts, blivet.WithStdout(o.Stdout))
	}
	if o.Stderr != "" {
		opts = append(opts, blivet.WithStderr(o.Stderr))
	}
	for _, kv := range o.Env {
		opts = append(opts, blivet.WithEnv(kv[0], kv[1]))
	}
	if o.Timeout != "" {
		d, _ := time.ParseDuration(o.Timeout)
		opts = append(opts, blivet.WithReadyTimeout(d))
	}
	opts = append(opts, blivet.WithAppend(o.Append), blivet.WithForeground(o.Foreground),
		blivet.WithCloseFDs(!o.NoClose), blivet.WithKeepFDs(o.Keep...))
	if o.Return {
		opts = append(opts, blivet.WithLauncherReturn())
	}
	if o.GoIntermediate {
		opts = append(opts, blivet.WithHookBefore("setsid", func(s *blivet.State) error {
			if s.Role != blivet.RoleIntermediate {
				return fmt.Errorf("setsid runs in the %v", s.Role)
			}
			return nil
		}))
	}
	return opts
}

// observation is what a helper process sees of itself.
type observation struct {
	PID, PPID, SID, PGID int
	TTY                  int
	Cwd                  string
	Umask                int
	FDs                  map[int]string
	Cloexec              map[int]bool
	SigIgn               uint64
	SigBlk               map[int]uint64 // per thread
	Env                  []string
}

func observe() observation {
	o := observation{PID: os.Getpid(), PPID: os.Getppid(), FDs: map[int]string{}, Cloexec: map[int]bool{}, SigBlk: map[int]uint64{}}
	o.SID, _ = unix.Getsid(0)
	o.PGID = unix.Getpgrp()
	o.Cwd, _ = os.Getwd()
	o.Umask = syscall.Umask(0)
	syscall.Umask(o.Umask)
	if fds, err := sys.OpenFDs(); err == nil {
		for _, fd := range fds {
			o.FDs[fd], _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			o.Cloexec[fd] = flags&unix.FD_CLOEXEC != 0
		}
	}
	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		o.TTY, _ = strconv.Atoi(f[4])
	}
	o.SigIgn, _ = sys.StatusMask(o.PID, 0, "SigIgn")
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		o.SigBlk[tid], _ = sys.StatusMask(o.PID, tid, "SigBlk")
	}
	o.Env = os.Environ()
	return o
}

func init() {
	blivettest.Register("core", func(h *blivettest.H) {
		var o coreOpts
		if err := json.Unmarshal([]byte(h.Env("CORE_OPTS")), &o); err != nil {
			panic(err)
		}
		if os.Getenv("BLIVET_HANDOVER") == "" && !o.Foreground {
			h.Report("launcher", observe())
		}
		ctx, err := blivet.Daemonize(o.options()...)
		if err != nil && (ctx == nil || ctx.IsDaemon()) {
			h.Report("daemonize-error", map[string]any{"msg": err.Error(), "code": blivet.ExitCodeOf(err), "pid": os.Getpid()})
			os.Exit(blivet.ExitCodeOf(err))
		}
		if !ctx.IsDaemon() {
			out := ctx.Outcome()
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			h.Report("outcome", map[string]any{"pid": out.PID, "code": out.ExitCode, "err": msg, "locked": errors.Is(err, blivet.ErrLocked)})
			os.Exit(0)
		}
		defer ctx.Close()
		if o.Print != "" {
			fmt.Fprintln(os.Stdout, o.Print+" out")
			fmt.Fprintln(os.Stderr, o.Print+" err")
		}
		h.Report("daemon", observe())
		switch o.Mode {
		case "return":
			return
		case "exit3":
			os.Exit(3)
		case "panic":
			panic("helper panics before ready")
		case "fail42":
			ctx.ReportError(&appError{42})
		case "fail300":
			ctx.ReportError(&appError{300})
		case "kill":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case "sleep":
			sleepForever()
		case "wait-trigger":
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(h.Dir, "trigger")); err == nil {
					break
				}
			}
			err := ctx.NotifyParent()
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			h.Report("notify-result", map[string]any{"err": msg, "code": blivet.ExitCodeOf(err)})
			sleepForever()
		}
		if err := ctx.NotifyParent(); err != nil {
			h.Report("notify-error", err.Error())
		}
		h.Report("after-ready", observe())
		sleepForever()
	})
}

func launchCore(t *testing.T, o coreOpts, extra ...blivettest.LaunchOption) *blivettest.Run {
	t.Helper()
	data, _ := json.Marshal(o)
	return blivettest.Launch(t, "core", append([]blivettest.LaunchOption{blivettest.WithEnv("CORE_OPTS", string(data))}, extra...)...)
}

// startDirty starts the launcher with SIGHUP and SIGUSR2 ignored and
// SIGUSR1 and SIGTERM blocked, as nohup or a careless parent would.
func startDirty(t *testing.T, o coreOpts, extra ...blivettest.LaunchOption) *blivettest.Run {
	t.Helper()
	data, _ := json.Marshal(o)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM} {
		set.Val[(s-1)/64] |= 1 << ((s - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGHUP, syscall.SIGUSR2)
	r, _ := blivettest.Start(t, "core", append([]blivettest.LaunchOption{blivettest.WithEnv("CORE_OPTS", string(data))}, extra...)...)
	signal.Reset(syscall.SIGHUP, syscall.SIGUSR2)
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	r.Wait()
	return r
}

func ownSID(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func TestDaemonShape(t *testing.T) {
	t.Run("direct", func(t *testing.T) { testDaemonShape(t, coreOpts{}) })
	t.Run("go-intermediate", func(t *testing.T) { testDaemonShape(t, coreOpts{GoIntermediate: true}) })
}

func testDaemonShape(t *testing.T, o coreOpts) {
	r := startDirty(t, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	if r.Stderr != "" || r.Stdout != "" {
		t.Errorf("launcher printed on success: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	var l, d, after observation
	r.Read("launcher", &l)
	r.Read("daemon", &d)
	r.Await("after-ready", &after)
	// The launcher really was started dirty, so the checks below can fail.
	if l.SigIgn&(1<<(syscall.SIGHUP-1)) == 0 {
		t.Fatalf("test setup: launcher SigIgn %x lacks SIGHUP", l.SigIgn)
	}
	if blk := l.SigBlk[l.PID]; blk&(1<<(syscall.SIGUSR1-1)) == 0 {
		t.Fatalf("test setup: launcher main thread SigBlk %x lacks SIGUSR1", blk)
	}
	if d.PID == d.SID {
		t.Errorf("daemon %d is its session's leader", d.PID)
	}
	if d.SID == ownSID(t) || d.SID == l.SID {
		t.Errorf("daemon in the launcher's session %d", d.SID)
	}
	if blivettest.Alive(d.SID) {
		t.Errorf("intermediate (session leader %d) still exists", d.SID)
	}
	// The launcher reaps the intermediate before it exits, so by now the
	// daemon has been adopted by init.
	if ppid := procPPID(t, d.PID); ppid != 1 {
		t.Errorf("daemon's parent is %d, want 1 (init); launcher %d, intermediate %d", ppid, l.PID, d.SID)
	}
	if d.TTY != 0 {
		t.Errorf("daemon has controlling tty %d", d.TTY)
	}
	if d.Cwd != "/" || d.Umask != 0o022 {
		t.Errorf("cwd %q umask %#o, want / and 022", d.Cwd, d.Umask)
	}
	for fd := 0; fd < 3; fd++ {
		if d.FDs[fd] != "/dev/null" {
			t.Errorf("fd %d is %q, want /dev/null", fd, d.FDs[fd])
		}
	}
	if d.SigIgn != 0 {
		t.Errorf("daemon SigIgn = %x, want 0", d.SigIgn)
	}
	for tid, blk := range after.SigBlk {
		if blk != 0 {
			t.Errorf("daemon thread %d SigBlk = %x, want 0", tid, blk)
		}
	}
	for _, kv := range d.Env {
		if strings.HasPrefix(kv, "BLIVET_HANDOVER=") {
			t.Errorf("marker leaked into the daemon's environment: %s", kv)
		}
	}
	// Before ready: 0-2, the readiness pipe, runtime fds. After: no pipe.
	if !slices.ContainsFunc(mapValues(d.FDs), func(s string) bool { return strings.HasPrefix(s, "pipe:") }) {
		t.Errorf("no readiness pipe before ready: %v", d.FDs)
	}
	for fd, target := range after.FDs {
		if fd > 2 && !strings.HasPrefix(target, "anon_inode:") {
			t.Errorf("after ready, fd %d -> %s is open (want only 0-2 and runtime fds)", fd, target)
		}
	}
	t.Run("ps", func(t *testing.T) {
		// The real process, as ps sees it.
		if _, err := exec.LookPath("ps"); err != nil {
			t.Skip("ps is not installed (Debian package procps): the daemon is not checked as ps sees it")
		}
		out, err := exec.Command("ps", "-o", "pid=,ppid=,sess=", "-p", strconv.Itoa(d.PID)).Output()
		if err != nil {
			t.Fatalf("ps: %v", err)
		}
		f := strings.Fields(string(out))
		if len(f) != 3 || f[0] != strconv.Itoa(d.PID) || f[2] != strconv.Itoa(d.SID) || f[2] == f[0] {
			t.Errorf("ps -o pid,ppid,sess: %q", out)
		}
	})
}

func mapValues(m map[int]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestConfiguredChdirUmaskEnv(t *testing.T) {
	dir := t.TempDir()
	um := 0o077
	r := launchCore(t, coreOpts{Chdir: dir, Umask: &um, Env: [][2]string{{"A", "1"}, {"B", "x=y"}, {"A", "2"}, {"EMPTY", ""}}})
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	var d observation
	r.Read("daemon", &d)
	if d.Cwd != dir || d.Umask != 0o077 {
		t.Errorf("cwd %q umask %#o, want %q 077", d.Cwd, d.Umask, dir)
	}
	env := map[string]string{}
	for _, kv := range d.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["A"] != "2" || env["B"] != "x=y" || env["PATH"] != os.Getenv("PATH") {
		t.Errorf("env A=%q B=%q PATH=%q", env["A"], env["B"], env["PATH"])
	}
	if v, ok := env["EMPTY"]; !ok || v != "" {
		t.Errorf("EMPTY = %q, %v", v, ok)
	}
}

func TestOutputFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "both.log")
	if err := os.WriteFile(log, []byte("old content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(log)
	os.WriteFile(log, []byte("old content\n"), 0o644)
	r := launchCore(t, coreOpts{Stdout: log, Stderr: log, Print: "hello"})
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	var d observation
	r.Read("daemon", &d)
	if d.FDs[1] != log || d.FDs[2] != log {
		t.Errorf("fds 1,2 = %q %q, want %q", d.FDs[1], d.FDs[2], log)
	}
	blivettest.Eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(log)
		return string(b) == "hello out\nhello err\n"
	}, "shared log not truncated and written in order")
	// One open file: both fds share one file description (same offset).
	var s1, s2 unix.Stat_t
	unix.Stat(fmt.Sprintf("/proc/%d/fdinfo/1", d.PID), &s1)
	pos1, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/1", d.PID))
	pos2, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/2", d.PID))
	if strings.Split(string(pos1), "\n")[0] != strings.Split(string(pos2), "\n")[0] {
		t.Errorf("fd 1 and 2 do not share an offset: %q vs %q", pos1, pos2)
	}
	_ = s2

	// Append mode, separate files, mode 0644 & ~umask.
	out, errf := filepath.Join(dir, "o.log"), filepath.Join(dir, "e.log")
	os.WriteFile(out, []byte("kept\n"), 0o644)
	um := 0o027
	r = launchCore(t, coreOpts{Stdout: out, Stderr: errf, Append: true, Umask: &um, Print: "again"})
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	blivettest.Eventually(t, 5*time.Second, func() bool {
		b1, _ := os.ReadFile(out)
		b2, _ := os.ReadFile(errf)
		return string(b1) == "kept\nagain out\n" && string(b2) == "again err\n"
	}, "append mode")
	st, err := os.Stat(errf)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("new output file mode %v, want 0640 (0644 &^ 027)", st.Mode().Perm())
	}
}

func TestInheritedFDs(t *testing.T) {
	t.Run("direct", func(t *testing.T) { testInheritedFDs(t, coreOpts{}) })
	t.Run("go-intermediate", func(t *testing.T) { testInheritedFDs(t, coreOpts{GoIntermediate: true}) })
}

func testInheritedFDs(t *testing.T, base coreOpts) {
	f, err := os.CreateTemp(t.TempDir(), "inherited")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	withFile := blivettest.WithCmd(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{nil, nil, f} }) // fd 5
	cases := []struct {
		name string
		o    coreOpts
		want bool
	}{
		{"closed", coreOpts{}, false},
		{"kept", coreOpts{Keep: []int{5}}, true},
		{"no-close", coreOpts{NoClose: true}, true},
	}
	for _, c := range cases {
		c.o.GoIntermediate = base.GoIntermediate
		t.Run(c.name, func(t *testing.T) {
			r := launchCore(t, c.o, withFile)
			if r.ExitCode != 0 {
				t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
			}
			var l, d observation
			r.Read("launcher", &l)
			r.Read("daemon", &d)
			if l.FDs[5] != f.Name() {
				t.Fatalf("test setup: launcher fd 5 = %q", l.FDs[5])
			}
			if got := d.FDs[5] == f.Name(); got != c.want {
				t.Errorf("daemon has inherited fd 5: %v, want %v (fds %v)", got, c.want, d.FDs)
			}
		})
	}
}

func TestFailuresBeforeReady(t *testing.T) {
	cases := []struct {
		mode, want string
		code       int
	}{
		{"return", "exited before it was ready", 70},
		{"exit3", "exited before it was ready", 70},
		{"panic", "helper panics before ready", 70},
		{"kill", "exited before it was ready", 70},
		{"fail42", "application error 42", 42},
		{"fail300", "application error 300", 70},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := launchCore(t, coreOpts{Mode: c.mode})
			if r.ExitCode != c.code || !strings.Contains(r.Stderr, c.want) {
				t.Errorf("exit %d stderr %q, want %d and %q", r.ExitCode, r.Stderr, c.code, c.want)
			}
			var d observation
			r.Read("daemon", &d)
			blivettest.Eventually(t, 5*time.Second, func() bool { return !blivettest.Alive(d.PID) }, "daemon %d still alive", d.PID)
		})
	}
}

func TestValidationBeforeFork(t *testing.T) {
	cases := []struct {
		name string
		o    coreOpts
		want string
	}{
		{"relative chdir", coreOpts{Chdir: "tmp"}, "must be absolute"},
		{"missing chdir", coreOpts{Chdir: "/nonexistent/dir"}, "no such file"},
		{"chdir not a dir", coreOpts{Chdir: "/etc/passwd"}, "not a directory"},
		{"relative stdout", coreOpts{Stdout: "x.log"}, "must be absolute"},
		{"NUL in path", coreOpts{Stdout: "/tmp/a\x00b"}, "NUL"},
		{"empty env key", coreOpts{Env: [][2]string{{"", "v"}}}, "empty variable name"},
		{"env key with =", coreOpts{Env: [][2]string{{"A=B", "v"}}}, "contains '='"},
		{"umask too big", coreOpts{Umask: ptr(0o1777)}, "WithUmask"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := launchCore(t, c.o)
			if r.ExitCode != 64 {
				t.Fatalf("exit %d, want 64; stderr %q", r.ExitCode, r.Stderr)
			}
			var e struct {
				Msg  string
				Code int
				PID  int
			}
			r.Read("daemonize-error", &e)
			if !strings.Contains(e.Msg, c.want) || e.Code != 64 {
				t.Errorf("error %q code %d, want %q", e.Msg, e.Code, c.want)
			}
			if r.Has("daemon") || len(r.PIDs()) != 0 {
				t.Errorf("a daemon was started despite the validation error")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestLauncherReturn(t *testing.T) {
	r := launchCore(t, coreOpts{Return: true})
	var out struct {
		PID, Code int
		Err       string
	}
	r.Await("outcome", &out)
	var d observation
	r.Read("daemon", &d)
	if out.PID != d.PID || out.Code != 0 || out.Err != "" {
		t.Errorf("outcome %+v, daemon pid %d", out, d.PID)
	}
	r = launchCore(t, coreOpts{Return: true, Mode: "fail42"})
	r.Await("outcome", &out)
	if out.Code != 42 || !strings.Contains(out.Err, "application error 42") {
		t.Errorf("outcome %+v, want code 42", out)
	}
}

func TestLauncherGoneBeforeReady(t *testing.T) {
	data, _ := json.Marshal(coreOpts{Mode: "wait-trigger"})
	r, cmd := blivettest.Start(t, "core", blivettest.WithEnv("CORE_OPTS", string(data)))
	var d observation
	r.Await("daemon", &d)
	// SIGTERM ends the waiting launcher by that signal; the daemon, in its
	// own session, is unaffected.
	cmd.Process.Signal(syscall.SIGTERM)
	r.Wait()
	if r.Signal != syscall.SIGTERM {
		t.Errorf("launcher ended with exit %d signal %v, want SIGTERM", r.ExitCode, r.Signal)
	}
	os.WriteFile(filepath.Join(r.Dir, "trigger"), nil, 0o644)
	var res struct {
		Err  string
		Code int
	}
	r.Await("notify-result", &res)
	if res.Code != 71 || !strings.Contains(res.Err, "launcher is gone") {
		t.Errorf("NotifyParent with the launcher gone: %+v, want 71", res)
	}
	if !blivettest.Alive(d.PID) {
		t.Errorf("daemon died (of SIGPIPE?)")
	}
}

func TestReadyTimeout(t *testing.T) {
	// 1s: long enough for the daemon to reach its report on a loaded
	// machine (the test reads it), short enough to wait out.
	r := launchCore(t, coreOpts{Mode: "sleep", Timeout: "1s"})
	if r.ExitCode != 75 || !strings.Contains(r.Stderr, "not ready after 1s") {
		t.Fatalf("exit %d stderr %q, want 75", r.ExitCode, r.Stderr)
	}
	var d observation
	r.Read("daemon", &d)
	blivettest.Eventually(t, 5*time.Second, func() bool { return !blivettest.Alive(d.PID) }, "daemon %d survived the timeout", d.PID)
}

func TestForgedMarker(t *testing.T) {
	for _, v := range []string{"garbage", "blivet1 role=daemon next=4 fd=3 pipeline=0 exe=1:2 pid=0"} {
		r := launchCore(t, coreOpts{}, blivettest.WithEnv("BLIVET_HANDOVER", v))
		var e struct {
			Msg  string
			Code int
		}
		r.Read("daemonize-error", &e)
		if r.ExitCode != 64 || !strings.Contains(e.Msg, "BLIVET_HANDOVER") {
			t.Errorf("marker %q: exit %d error %q", v, r.ExitCode, e.Msg)
		}
		if r.Has("daemon") {
			t.Errorf("marker %q: a half-daemon ran", v)
		}
	}
}

func TestForeground(t *testing.T) {
	r := startDirty(t, coreOpts{Foreground: true, Mode: "return", Print: "fg"})
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	var d observation
	r.Read("daemon", &d)
	if d.SigIgn != 0 {
		t.Errorf("foreground SigIgn = %x, want 0 (re-exec in place)", d.SigIgn)
	}
	for tid, blk := range d.SigBlk {
		if blk != 0 {
			t.Errorf("foreground thread %d SigBlk = %x", tid, blk)
		}
	}
	if d.FDs[0] != "/dev/null" || r.Stdout != "fg out\n" || !strings.Contains(r.Stderr, "fg err") {
		t.Errorf("stdin %q, stdout %q, stderr %q: want /dev/null and inherited output", d.FDs[0], r.Stdout, r.Stderr)
	}
	// Inherited fds stay open under the running runtime, marked close-on-exec.
	f, err := os.CreateTemp(t.TempDir(), "inherited")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r = launchCore(t, coreOpts{Foreground: true, Mode: "return"},
		blivettest.WithCmd(func(c *exec.Cmd) { c.ExtraFiles = []*os.File{nil, nil, f} }))
	r.Read("daemon", &d)
	if d.FDs[5] != f.Name() || !d.Cloexec[5] {
		t.Errorf("foreground inherited fd 5: %q cloexec %v, want open and close-on-exec", d.FDs[5], d.Cloexec[5])
	}
	// Errors are returned, not exits, and it all runs in one process.
	r = launchCore(t, coreOpts{Foreground: true, Stdout: "/nonexistent/x.log"})
	var e struct {
		Msg       string
		Code, PID int
	}
	r.Read("daemonize-error", &e)
	if e.Code != 73 || !strings.Contains(e.Msg, "output") {
		t.Errorf("foreground output failure: %+v", e)
	}
}

// procPPID reads pid's parent from /proc/PID/stat.
func procPPID(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
