//go:build linux

package blivet_test

// Hostile paths and fault injection, in real processes (issue 14; the
// rules are in docs/security.md). The test binary re-executes itself as
// the "sec" helper, which daemonizes for real.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/exefile"
	"github.com/blivet-go/blivet/internal/hostile"
)

// secOpts is the configuration a test hands to the "sec" helper.
type secOpts struct {
	User, Stdout, Pidfile, Lockfile, Chdir string `json:",omitempty"`
	// PauseBeforeFork: the launcher stops itself (SIGSTOP) right before
	// the fork stage, after reporting "paused".
	PauseBeforeFork bool `json:",omitempty"`
	// WaitTrigger: the daemon reports "waiting", then waits for the file
	// trigger before it says ready.
	WaitTrigger bool `json:",omitempty"`
	// BigEnv: the launcher adds a variable of this many bytes to its own
	// environment before Daemonize (the re-exec then carries it).
	BigEnv int `json:",omitempty"`
	// NprocLimit: the launcher lowers RLIMIT_NPROC to the tasks its user
	// has now, so the fork is refused.
	NprocLimit bool `json:",omitempty"`
}

func init() {
	blivettest.Register("sec", func(h *blivettest.H) {
		var o secOpts
		if err := json.Unmarshal([]byte(h.Env("SEC_OPTS")), &o); err != nil {
			panic(err)
		}
		launcher := os.Getenv("BLIVET_HANDOVER") == ""
		opts := []blivet.Option{blivet.WithCleanupOnSignal()}
		if o.User != "" {
			opts = append(opts, blivet.WithUser(o.User))
		}
		if o.Stdout != "" {
			opts = append(opts, blivet.WithStdout(o.Stdout))
		}
		if o.Pidfile != "" {
			opts = append(opts, blivet.WithPidfile(o.Pidfile))
		}
		if o.Lockfile != "" {
			opts = append(opts, blivet.WithLockfile(o.Lockfile))
		}
		if o.Chdir != "" {
			opts = append(opts, blivet.WithChdir(o.Chdir))
		}
		opts = append(opts, blivet.WithHookBefore("fork", func(*blivet.State) error {
			h.Report("before-fork", os.Getpid())
			if o.PauseBeforeFork {
				h.Report("paused", os.Getpid())
				_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			}
			if o.NprocLimit {
				limitNproc()
			}
			return nil
		}))
		if launcher && o.BigEnv > 0 {
			os.Setenv("SEC_BIG", strings.Repeat("x", o.BigEnv))
		}
		ctx, err := blivet.Daemonize(opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sec helper:", err)
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		if err := ctx.DropPrivileges(); err != nil {
			ctx.ReportError(err)
		}
		if o.WaitTrigger {
			h.Report("waiting", os.Getpid())
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(h.Dir, "trigger")); err == nil {
					break
				}
			}
		}
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		if o.WaitTrigger {
			h.Report("notified", os.Getpid())
		}
		sleepForever()
	})
}

// limitNproc makes sure the runtime has threads to spare, then lowers
// RLIMIT_NPROC to the number of tasks the real user has now: the next
// process (or thread) this user creates is refused with EAGAIN.
func limitNproc() {
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() { // a blocking system call makes the runtime start a thread
			defer wg.Done()
			ts := unix.Timespec{Nsec: 20e6}
			_ = unix.Nanosleep(&ts, nil)
		}()
	}
	wg.Wait()
	n := tasksOf(os.Getuid())
	_ = unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: uint64(n), Max: uint64(n)})
}

// tasksOf counts the tasks (threads) whose real uid is uid.
func tasksOf(uid int) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != uid {
			continue
		}
		tasks, _ := os.ReadDir("/proc/" + e.Name() + "/task")
		n += len(tasks)
	}
	return n
}

func secLaunch(t *testing.T, dir string, o secOpts, extra ...blivettest.LaunchOption) *blivettest.Run {
	t.Helper()
	r, _ := secStart(t, dir, o, extra...)
	r.Wait()
	return r
}

func secStart(t *testing.T, dir string, o secOpts, extra ...blivettest.LaunchOption) (*blivettest.Run, *exec.Cmd) {
	t.Helper()
	data, _ := json.Marshal(o)
	return blivettest.Start(t, "sec", append([]blivettest.LaunchOption{
		blivettest.WithDir(dir), blivettest.WithEnv("SEC_OPTS", string(data))}, extra...)...)
}

// secNone checks that nothing of the run is left running.
func secNone(t *testing.T, r *blivettest.Run) {
	t.Helper()
	blivettest.Eventually(t, 10*time.Second, func() bool { return len(r.PIDs()) == 0 }, "processes of the run still alive: %v", r.PIDs())
}

// secWant checks the launcher's exit code and that its stderr names every
// string in want.
func secWant(t *testing.T, r *blivettest.Run, code int, want ...string) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("launcher exit %d, want %d; stderr:\n%s", r.ExitCode, code, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr %q does not say %q", r.Stderr, w)
		}
	}
}

// secDir is hostile.New with the test directory writable by nobody too.
func secDir(t *testing.T) (dir, home, victim string, untouched func()) {
	t.Helper()
	sc := hostile.New(t, 0o777)
	return sc.Dir, sc.Home, sc.Victim, sc.Untouched
}

// TestHostileOutputPath is the attack of issue 14 through the library:
// the service user plants a link to a root-only file where its log goes.
// The daemon refuses it (73, naming the path and the reason) before
// truncating or handing anything over.
func TestHostileOutputPath(t *testing.T) {
	cases := []struct {
		name, want string
		plant      func(t *testing.T, home, victim, log string)
	}{
		{"symlink", "a symbolic link", func(t *testing.T, home, victim, log string) {
			if err := os.Symlink(victim, log); err != nil {
				t.Fatal(err)
			}
			_ = os.Lchown(log, 65534, 65534)
		}},
		{"hardlink", "has 2 hard links", func(t *testing.T, home, victim, log string) {
			if err := os.Link(victim, log); err != nil {
				t.Fatal(err)
			}
		}},
		{"dirlink", "symbolic link owned by uid 65534", func(t *testing.T, home, victim, log string) {
			// home/sub -> the victim's directory: log is then "victim".
			if err := os.Symlink(filepath.Dir(victim), filepath.Dir(log)); err != nil {
				t.Fatal(err)
			}
			_ = os.Lchown(filepath.Dir(log), 65534, 65534)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, home, victim, untouched := secDir(t)
			log := filepath.Join(home, "log")
			if tc.name == "dirlink" {
				log = filepath.Join(home, "sub", filepath.Base(victim))
			}
			tc.plant(t, home, victim, log)
			r := secLaunch(t, dir, secOpts{User: "nobody", Stdout: log})
			secWant(t, r, blivet.ExitCantCreate, log, tc.want)
			untouched()
			secNone(t, r)
		})
	}
	t.Run("lockfile", func(t *testing.T) {
		t.Parallel()
		dir, home, victim, untouched := secDir(t)
		lock := filepath.Join(home, "app.lock")
		if err := os.Symlink(victim, lock); err != nil {
			t.Fatal(err)
		}
		r := secLaunch(t, dir, secOpts{User: "nobody", Lockfile: lock})
		secWant(t, r, blivet.ExitCantCreate, lock, "symbolic link")
		untouched()
		secNone(t, r)
	})
	t.Run("chdir", func(t *testing.T) {
		// A working directory reached through the service user's link is
		// refused: root's cwd never moves where that user points it.
		t.Parallel()
		dir, home, victim, untouched := secDir(t)
		work := filepath.Join(home, "work")
		if err := os.Symlink(filepath.Dir(victim), work); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(work, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		r := secLaunch(t, dir, secOpts{User: "nobody", Chdir: work})
		secWant(t, r, blivet.ExitCantCreate, work, "symbolic link owned by uid 65534")
		untouched()
		secNone(t, r)
	})
	t.Run("legit", func(t *testing.T) {
		// The service's own log in its own directory still works, and is
		// handed to it.
		t.Parallel()
		dir, home, _, untouched := secDir(t)
		log := filepath.Join(home, "log")
		run := filepath.Join(dir, "run") // root's own pidfile directory
		if err := os.Mkdir(run, 0o755); err != nil {
			t.Fatal(err)
		}
		r := secLaunch(t, dir, secOpts{User: "nobody", Stdout: log, Pidfile: filepath.Join(run, "app.pid")})
		secWant(t, r, 0)
		var st unix.Stat_t
		if err := unix.Stat(log, &st); err != nil || st.Uid != 65534 || st.Nlink != 1 {
			t.Errorf("log: %v, uid %d, links %d; want nobody's, one link", err, st.Uid, st.Nlink)
		}
		untouched()
	})
}

// TestOutputDirectoryRefusedBeforeFork: an output path that is a
// directory is a usage error (64), found before any fork.
func TestOutputDirectoryRefusedBeforeFork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := secLaunch(t, dir, secOpts{Stdout: dir})
	secWant(t, r, blivet.ExitUsage, dir, "is a directory")
	if r.Has("before-fork") {
		t.Error("the pipeline reached the fork stage")
	}
	secNone(t, r)
}

// roMount mounts a small tmpfs at dir/ro, with file f in it, and remounts
// it read-only; it is unmounted when the test ends.
func roMount(t *testing.T, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a read-only file system needs root")
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("blivet-ro", ro, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ro, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(ro, "existing.log"), []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	return ro
}

// TestReadOnlyFileSystem: a pidfile or an output file on a read-only file
// system is 73 (EROFS), named, with nothing left running.
func TestReadOnlyFileSystem(t *testing.T) {
	dir := t.TempDir()
	ro := roMount(t, dir)
	for name, o := range map[string]secOpts{
		"pidfile":         {Pidfile: filepath.Join(ro, "app.pid")},
		"output":          {Stdout: filepath.Join(ro, "new.log")},
		"existing-output": {Stdout: filepath.Join(ro, "existing.log")},
	} {
		t.Run(name, func(t *testing.T) {
			path := o.Pidfile + o.Stdout
			r := secLaunch(t, t.TempDir(), o)
			secWant(t, r, blivet.ExitCantCreate, path, "read-only file system")
			secNone(t, r)
		})
	}
	if data, _ := os.ReadFile(filepath.Join(ro, "existing.log")); string(data) != "keep\n" {
		t.Errorf("existing.log now %q", data)
	}
}

// unprivDir is a test directory the launcher can use when it runs as an
// unprivileged uid: world-writable, with a copy of the test binary in it.
func unprivDir(t *testing.T) (dir, exe string) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	exe = filepath.Join(dir, "blivet.test")
	copyExe(t, exe)
	return dir, exe
}

func copyExe(t *testing.T, to string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := exefile.Copy(self, to, 0o755); err != nil {
		t.Fatal(err)
	}
}

// withExe runs the launcher from exe instead of the test binary.
func withExe(exe string, more func(*exec.Cmd)) blivettest.LaunchOption {
	return blivettest.WithCmd(func(c *exec.Cmd) {
		c.Path, c.Args[0] = exe, exe
		if more != nil {
			more(c)
		}
	})
}

// TestForkRefusedByNproc: as a non-root user at its RLIMIT_NPROC, the
// launcher cannot create the daemon: 71, saying why, nothing left.
func TestForkRefusedByNproc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to start the launcher as a dedicated unprivileged uid")
	}
	t.Parallel()
	dir, exe := unprivDir(t)
	// A uid no other process uses, so RLIMIT_NPROC counts only this run.
	const uid = 54329
	r := secLaunch(t, dir, secOpts{NprocLimit: true}, withExe(exe, func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}))
	secWant(t, r, blivet.ExitOSErr, "resource temporarily unavailable")
	if !r.Has("before-fork") {
		t.Error("the launcher never reached the fork stage")
	}
	secNone(t, r)
	if n := tasksOf(uid); n != 0 {
		t.Errorf("%d tasks of uid %d left", n, uid)
	}
}

// TestEnvironmentTooLarge: a launcher whose environment cannot be passed
// to the re-executed generation (E2BIG) fails with 71, saying so.
func TestEnvironmentTooLarge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := secLaunch(t, dir, secOpts{BigEnv: 200 << 10, Pidfile: filepath.Join(dir, "app.pid")})
	secWant(t, r, blivet.ExitOSErr, "argument list too long")
	if _, err := os.Stat(filepath.Join(dir, "app.pid")); err == nil {
		t.Error("a pidfile was written")
	}
	secNone(t, r)
}

// TestWithoutProc: in a mount namespace where /proc is an empty tmpfs, the
// launch still works (or fails clearly).
func TestWithoutProc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root for a private mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("skipped: no unshare(1)")
	}
	t.Parallel()
	dir := t.TempDir()
	pid := filepath.Join(dir, "app.pid")
	r := secLaunch(t, dir, secOpts{Pidfile: pid, Stdout: filepath.Join(dir, "out.log")}, blivettest.WithCmd(func(c *exec.Cmd) {
		script := `mount -t tmpfs blivet-noproc /proc && test ! -e /proc/self && exec "$0" "$@"`
		c.Args = append([]string{unshare, "-m", "--propagation", "private", "sh", "-c", script}, c.Args...)
		c.Path = unshare
	}))
	t.Logf("without /proc: launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	switch r.ExitCode {
	case 0:
		data, err := os.ReadFile(pid)
		p, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || !blivettest.Alive(p) {
			t.Fatalf("ready without /proc, but pidfile %q (%v) names no live daemon", data, err)
		}
		r.Kill()
	case blivet.ExitOSErr:
		if !strings.Contains(r.Stderr, "needs /proc mounted") {
			t.Errorf("71 without naming /proc: %q", r.Stderr)
		}
	default:
		t.Fatalf("without /proc: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	secNone(t, r)
}

// procState returns the state letter of pid from /proc/PID/stat.
func procState(pid int) byte {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return 0
	}
	return data[i+2]
}

// TestExecutableReplacedBeforeReexec: the program file is deleted, or
// replaced by another program, between the launcher's start and its
// re-exec (a package upgrade during a start). blivet re-executes the
// running image (/proc/self/exe), so the daemon is the program that was
// started: the launch succeeds, with the old code.
func TestExecutableReplacedBeforeReexec(t *testing.T) {
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			exe := filepath.Join(dir, "blivet.test")
			copyExe(t, exe)
			pid := filepath.Join(dir, "app.pid")
			r, cmd := secStart(t, dir, secOpts{PauseBeforeFork: true, Pidfile: pid}, withExe(exe, nil))
			var paused int
			r.Await("paused", &paused)
			blivettest.Eventually(t, 10*time.Second, func() bool { return procState(paused) == 'T' }, "launcher %d never stopped", paused)
			switch how {
			case "deleted":
				if err := os.Remove(exe); err != nil {
					t.Fatal(err)
				}
			case "replaced":
				if err := exefile.Write(exe+".new", []byte("#!/bin/sh\necho upgraded; exit 99\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(exe+".new", exe); err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			r.Wait()
			secWant(t, r, 0)
			data, _ := os.ReadFile(pid)
			p, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if !blivettest.Alive(p) {
				t.Fatalf("pidfile %q names no live daemon", data)
			}
			if link, _ := os.Readlink("/proc/" + strconv.Itoa(p) + "/exe"); !strings.HasPrefix(link, exe) || !strings.HasSuffix(link, "(deleted)") {
				t.Errorf("daemon runs %q, want the started (now deleted) image of %s", link, exe)
			}
			// Re-executed through /proc/self/exe, it still shows the
			// program's name (the kernel would call it "exe").
			if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm"); strings.TrimSpace(string(comm)) != "blivet.test" {
				t.Errorf("daemon's name %q, want blivet.test", comm)
			}
			r.Kill()
			secNone(t, r)
		})
	}
}

// TestLauncherStoppedDuringHandshake: the launcher is stopped while the
// daemon says ready, and stays stopped a while after; continued, it still
// exits 0.
func TestLauncherStoppedDuringHandshake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pid := filepath.Join(dir, "app.pid")
	r, cmd := secStart(t, dir, secOpts{WaitTrigger: true, Pidfile: pid})
	var daemon int
	r.Await("waiting", &daemon)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	blivettest.Eventually(t, 10*time.Second, func() bool { return procState(cmd.Process.Pid) == 'T' }, "launcher never stopped")
	if err := os.WriteFile(filepath.Join(dir, "trigger"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The daemon says ready while the launcher is stopped; the launcher
	// stays stopped a while longer (the fault under test).
	var notified int
	r.Await("notified", &notified)
	time.Sleep(500 * time.Millisecond)
	if st := procState(cmd.Process.Pid); st != 'T' {
		t.Fatalf("launcher state %q after the daemon said ready, want still stopped (T)", st)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r.Wait()
	secWant(t, r, 0)
	if !blivettest.Alive(daemon) {
		t.Errorf("daemon %d gone after the handshake", daemon)
	}
	r.Kill()
	secNone(t, r)
}

// TestStalePidfileTakenOver: an existing pidfile with garbage, 10 MB of
// data or the PID of another live process, with no lock holder, is taken
// over: the new daemon's PID is written (and nothing else remains), and
// the other process is not signalled.
func TestStalePidfileTakenOver(t *testing.T) {
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	// The parallel launches run in a group, so the checks of the other
	// process below come after all of them.
	t.Run("launches", func(t *testing.T) {
		for name, content := range map[string][]byte{
			"garbage": []byte("not a pid\x00\xff\n"),
			"huge":    []byte(strings.Repeat("9", 10<<20)),
			"live":    []byte(strconv.Itoa(other.Process.Pid) + "\n"),
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				pid := filepath.Join(dir, "app.pid")
				if err := os.WriteFile(pid, content, 0o644); err != nil {
					t.Fatal(err)
				}
				r := secLaunch(t, dir, secOpts{Pidfile: pid})
				secWant(t, r, 0)
				data, _ := os.ReadFile(pid)
				p, err := strconv.Atoi(strings.TrimSuffix(string(data), "\n"))
				if err != nil || !blivettest.Alive(p) || p == other.Process.Pid || len(data) > 12 {
					t.Fatalf("pidfile holds %q (%d bytes), want the new daemon's PID only", data[:min(len(data), 40)], len(data))
				}
				r.Kill()
				secNone(t, r)
			})
		}
	})
	if st := procState(other.Process.Pid); st == 0 || st == 'Z' || st == 'T' {
		t.Errorf("the process named in the stale pidfile changed state: %q", st)
	}
	var ws syscall.WaitStatus
	if p, _ := syscall.Wait4(other.Process.Pid, &ws, syscall.WNOHANG, nil); p != 0 {
		t.Errorf("the process named in the stale pidfile ended: %v", ws)
	}
}

// fdCount counts this process's open fds.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// loadRun starts the "sec" helper with a plain exec.Cmd (blivettest's
// per-run bookkeeping would dominate at this scale), waits for the
// launcher and returns its exit code and stderr.
func loadRun(exe, dir, pidfile, token string) (int, string, error) {
	data, _ := json.Marshal(secOpts{Pidfile: pidfile})
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), token, "BLIVETTEST_HELPER=sec", "BLIVETTEST_DIR="+dir, "SEC_OPTS="+string(data), "GORACE=atexit_sleep_ms=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return -1, "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return -1, stderr.String(), fmt.Errorf("launcher hung for 60s")
	}
	return cmd.ProcessState.ExitCode(), stderr.String(), nil
}

// readPid reads a pidfile's PID (0 if none).
func readPid(path string) int {
	data, _ := os.ReadFile(path)
	p, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return p
}

// stopDaemon sends SIGTERM (the helper removes its pidfile and dies by
// it) and waits until every task of pid is gone.
func stopDaemon(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for !blivettest.Gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("daemon %d still running 20s after SIGTERM", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// TestLoadConcurrentLaunches: 200 launches at once, on 200 pidfiles, all
// come up and are held at the same time; none hangs; all stop cleanly.
func TestLoadConcurrentLaunches(t *testing.T) {
	const n = 200
	exe, _ := os.Executable()
	dir := t.TempDir()
	token := "SEC_LOAD=" + filepath.Base(dir) + strconv.Itoa(os.Getpid())
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]string, n)
	pids := make([]int, n)
	t.Cleanup(func() {
		for _, p := range pids {
			if p > 0 {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pf := filepath.Join(dir, fmt.Sprintf("d%03d.pid", i))
			code, stderr, err := loadRun(exe, dir, pf, token)
			pids[i] = readPid(pf)
			if err != nil || code != 0 {
				errs[i] = fmt.Sprintf("launch %d: exit %d, %v, stderr %q", i, code, err, stderr)
			}
		}(i)
	}
	wg.Wait()
	up := time.Since(start)
	held := 0
	for i, p := range pids {
		if errs[i] != "" {
			t.Error(errs[i])
		} else if blivettest.Alive(p) {
			held++
		}
	}
	t.Logf("%d concurrent launches: %d ready and held at once, in %v", n, held, up.Round(time.Millisecond))
	if held != n {
		t.Fatalf("only %d of %d daemons held at once", held, n)
	}
	stopStart := time.Now()
	for _, p := range pids {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			if err := stopDaemon(p); err != nil {
				t.Error(err)
			}
		}(p)
	}
	wg.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	t.Logf("stopped %d daemons in %v; pidfiles left: %d", n, time.Since(stopStart).Round(time.Millisecond), len(left))
	if live := blivettest.PIDsWithEnv(token); len(live) != 0 {
		t.Errorf("processes of the launches still alive: %v", live)
	}
	if len(left) != 0 {
		t.Errorf("pidfiles left after stop: %v", left)
	}
}

// TestLoadStartStopCycles: 1,000 start/stop cycles (in parallel lanes,
// each lane on its own pidfile) leak no fd of the test process, no
// process and no file.
func TestLoadStartStopCycles(t *testing.T) {
	const cycles, lanes = 1000, 8
	exe, _ := os.Executable()
	dir := t.TempDir()
	token := "SEC_LOAD=" + filepath.Base(dir) + strconv.Itoa(os.Getpid())
	fdsBefore := fdCount(t)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var started []int
	for l := 0; l < lanes; l++ {
		wg.Add(1)
		go func(l int) {
			defer wg.Done()
			pf := filepath.Join(dir, fmt.Sprintf("lane%d.pid", l))
			for c := l; c < cycles; c += lanes {
				code, stderr, err := loadRun(exe, dir, pf, token)
				p := readPid(pf)
				mu.Lock()
				started = append(started, p)
				mu.Unlock()
				if err != nil || code != 0 || p <= 0 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("cycle %d: exit %d, %v, pid %d, stderr %q", c, code, err, p, stderr))
					mu.Unlock()
					return
				}
				if err := stopDaemon(p); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				if _, err := os.Stat(pf); err == nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("cycle %d: pidfile left after stop", c))
					mu.Unlock()
					return
				}
			}
		}(l)
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	runtime.GC()
	fdsAfter := fdCount(t)
	alive := len(blivettest.PIDsWithEnv(token)) // by token: the PIDs themselves get reused
	files, _ := os.ReadDir(dir)
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	t.Logf("%d start/stop cycles in %d lanes: %v; fds %d before, %d after; live daemons %d; files left %v",
		len(started), lanes, time.Since(start).Round(time.Millisecond), fdsBefore, fdsAfter, alive, names)
	if len(started) != cycles {
		t.Errorf("%d cycles ran, want %d", len(started), cycles)
	}
	if fdsAfter > fdsBefore {
		t.Errorf("fd leak: %d open before, %d after", fdsBefore, fdsAfter)
	}
	if alive != 0 {
		t.Errorf("%d daemons still alive", alive)
	}
	// Only the helper's own reports may remain.
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			t.Errorf("file left: %s", n)
		}
	}
}
