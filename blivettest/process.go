package blivettest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/internal/sys"
)

// Environment variables of the real-process mode.
const (
	envHelper = "BLIVETTEST_HELPER" // which registered helper to run
	envDir    = "BLIVETTEST_DIR"    // the run's report directory
	envToken  = "BLIVETTEST_TOKEN"  // marks every process of one run, for cleanup
)

// HelperFunc is the body of a helper program: it runs in every process
// generation, like a real main, and usually calls blivet.Daemonize.
type HelperFunc func(h *H)

var (
	helpersMu sync.Mutex
	helpers   = map[string]HelperFunc{}
)

// Register makes fn runnable as a helper program called name. Call it from
// init functions or TestMain, before Main.
func Register(name string, fn HelperFunc) {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	if _, dup := helpers[name]; dup {
		panic("blivettest: helper " + name + " registered twice")
	}
	helpers[name] = fn
}

// Main runs the registered helper named by the environment when the test
// binary was started as a helper, and the tests otherwise. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { blivettest.Main(m) }
func Main(m *testing.M) {
	if name := os.Getenv(envHelper); name != "" {
		helpersMu.Lock()
		fn := helpers[name]
		helpersMu.Unlock()
		if fn == nil {
			fmt.Fprintf(os.Stderr, "blivettest: no helper registered as %q\n", name)
			os.Exit(2)
		}
		fn(&H{Dir: os.Getenv(envDir)})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// H is what a helper program gets: a directory shared with the test, to
// report observations in.
type H struct {
	// Dir is the run's report directory (the test's t.TempDir()).
	Dir string
}

// Report writes v as JSON under key in the report directory, atomically,
// so a test polling for it never reads half a report.
func (h *H) Report(key string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	tmp := filepath.Join(h.Dir, "."+key+".tmp"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		panic(fmt.Sprintf("blivettest: report %s as uid %d: %v (a helper that drops privileges needs a report directory its user can reach and write)", key, os.Geteuid(), err))
	}
	if err := os.Rename(tmp, filepath.Join(h.Dir, key+".json")); err != nil {
		panic(fmt.Sprintf("blivettest: report %s as uid %d: %v", key, os.Geteuid(), err))
	}
}

// Env returns the helper's configuration variable key (set by the test
// with WithEnv).
func (h *H) Env(key string) string { return os.Getenv(key) }

// Pidfile returns the conventional pidfile path in the report directory:
// a helper started with StartDaemon passes it to blivet.WithPidfile, and
// StartDaemon reads the daemon's PID from it.
func (h *H) Pidfile() string { return filepath.Join(h.Dir, PidfileName) }

// PidfileName is the base name of H.Pidfile in the report directory.
const PidfileName = "daemon.pid"

// Run is one launch of a helper program, as a test sees it.
type Run struct {
	t        testing.TB
	Dir      string // the report directory
	ExitCode int    // the launcher's exit code; -1 if it died by a signal
	Signal   syscall.Signal
	Stdout   string
	Stderr   string
	token    string
	waitFn   func()
}

// LaunchOption configures Launch.
type LaunchOption func(*launchConfig)

type launchConfig struct {
	env     []string
	args    []string
	dir     string
	timeout time.Duration
	prepare func(*exec.Cmd)
}

// WithEnv adds KEY=VALUE to the helper's environment.
func WithEnv(key, value string) LaunchOption {
	return func(c *launchConfig) { c.env = append(c.env, key+"="+value) }
}

// WithArgs passes extra arguments after the test binary's own.
func WithArgs(args ...string) LaunchOption {
	return func(c *launchConfig) { c.args = append(c.args, args...) }
}

// WithDir shares dir as the report directory instead of a new temp dir
// (several launches of one test then see each other's files). A helper
// that drops privileges must be able to reach and write dir: the caller
// sees to that (blivettest does it for the directories it creates).
func WithDir(dir string) LaunchOption { return func(c *launchConfig) { c.dir = dir } }

// WithTimeout bounds how long the launcher may take (default 20s).
func WithTimeout(d time.Duration) LaunchOption { return func(c *launchConfig) { c.timeout = d } }

// WithCmd lets the test adjust the launcher's exec.Cmd before it starts
// (stdin, extra files, SysProcAttr).
func WithCmd(fn func(*exec.Cmd)) LaunchOption { return func(c *launchConfig) { c.prepare = fn } }

// Start runs the helper program name, re-executing the test binary, and
// returns at once with the running launcher. Every process of the run
// (launcher, intermediate, daemon and their children) is killed when the
// test ends.
func Start(t testing.TB, name string, opts ...LaunchOption) (*Run, *exec.Cmd) {
	t.Helper()
	c := launchConfig{timeout: 20 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	if c.dir == "" {
		c.dir = t.TempDir()
		if os.Geteuid() == 0 {
			if err := shareDir(c.dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	r := &Run{t: t, Dir: c.dir, token: hex.EncodeToString(tok[:])}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^$"}, c.args...)...)
	cmd.Env = append(os.Environ(), envHelper+"="+name, envDir+"="+c.dir, envToken+"="+r.token)
	if _, set := os.LookupEnv("GORACE"); !set {
		// Under -race every exit otherwise sleeps a second (atexit_sleep_ms).
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.prepare != nil {
		c.prepare(cmd)
	}
	t.Cleanup(r.Kill)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitFn = func() {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(c.timeout):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("launcher of %s did not exit within %v; stderr:\n%s", name, c.timeout, stderr.String())
		}
		r.Stdout, r.Stderr = stdout.String(), stderr.String()
		r.ExitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Signal = ws.Signal()
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	}
	return r, cmd
}

// shareDir opens a new report directory to every user, for helpers that
// drop privileges: the directory becomes 01777 (like /tmp: anyone can
// create files, nobody can remove another user's) and its parent, which
// the testing package creates 0700, becomes 0755. A root daemon may still
// keep its pidfile there: the pidfile package accepts a sticky directory.
func shareDir(dir string) error {
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o777|os.ModeSticky)
}

// reachHint explains, for a failure message, why a helper running as
// another user than the test may be unable to use dir: the first
// directory on the way that others cannot traverse, or dir itself not
// writable by others. It is empty when the test does not run as root (no
// helper can then drop privileges) or when nothing is in the way.
func reachHint(dir string) string {
	if os.Geteuid() != 0 || dir == "" {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if st, err := os.Stat(abs); err == nil && st.Mode().Perm()&0o003 != 0o003 {
		return fmt.Sprintf("\n(if the helper drops privileges: its report directory %s is mode %#o, so the dropped user cannot write reports there; chmod it 01777, or leave out WithDir and blivettest creates one that is)", abs, st.Mode().Perm())
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			return fmt.Sprintf("\n(if the helper drops privileges: %s, on the way to the report directory %s, is mode %#o, so the dropped user cannot reach it; chmod it 0755 or use a directory elsewhere)", p, abs, st.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

// Launch runs the helper program name and waits for its launcher to exit.
func Launch(t testing.TB, name string, opts ...LaunchOption) *Run {
	t.Helper()
	r, _ := Start(t, name, opts...)
	r.Wait()
	return r
}

// Wait waits for the launcher started by Start to exit.
func (r *Run) Wait() {
	r.t.Helper()
	if r.waitFn != nil {
		r.waitFn()
		r.waitFn = nil
	}
}

// Read decodes the report key into v, failing the test if it is missing.
func (r *Run) Read(key string, v any) {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir, key+".json"))
	if err != nil {
		r.t.Fatalf("report %s: %v (launcher exit %d, stderr %q)", key, err, r.ExitCode, r.Stderr)
	}
	if err := json.Unmarshal(data, v); err != nil {
		r.t.Fatalf("report %s: %v", key, err)
	}
}

// Has reports whether the report key exists.
func (r *Run) Has(key string) bool {
	_, err := os.Stat(filepath.Join(r.Dir, key+".json"))
	return err == nil
}

// Await polls for the report key until it appears (or 10s pass) and decodes it.
func (r *Run) Await(key string, v any) {
	r.t.Helper()
	Eventually(r.t, 10*time.Second, func() bool { return r.Has(key) }, "report %s never appeared (stderr %q)%s", key, r.Stderr, reachHint(r.Dir))
	r.Read(key, v)
}

// PIDs returns the live processes of this run (found by their token).
func (r *Run) PIDs() []int { return PIDsWithEnv(envToken + "=" + r.token) }

// Kill sends SIGKILL to every live process of this run and waits until
// they are gone. It runs automatically at the end of the test.
func (r *Run) Kill() {
	killed := r.PIDs()
	for _, pid := range killed {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Wait for the effect: every thread of every killed process gone (a
	// dying process may stop showing its environment, and so drop out of
	// PIDs, before its threads have exited).
	gone := func() bool {
		for _, pid := range killed {
			if !Gone(pid) {
				return false
			}
		}
		return len(r.PIDs()) == 0
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gone() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// Eventually polls cond every few milliseconds until it is true, failing
// the test with the message if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Alive reports whether any thread of process pid is still running. A
// process is alive until every one of its tasks (threads) has exited: a Go
// daemon whose main thread has ended (a zombie thread-group leader) while
// other threads still run still holds its fds and locks, and is alive.
// Once Alive is false, everything the process held is released (an
// unreaped zombie may remain; reaping is its parent's or init's business,
// which may come late, so Alive never waits for it).
//
// It is the library's own test (internal/sys.Gone): on Linux it reads
// /proc/PID/task/*/stat; without /proc it falls back to kill(pid, 0),
// which cannot tell a zombie from a live process.
func Alive(pid int) bool { return pid > 0 && !sys.Gone(pid) }

// Gone reports whether every thread of process pid has exited: the
// opposite of Alive. Poll it (with Eventually) to wait for a process to
// end, rather than kill(pid, 0), which keeps succeeding until the
// process is reaped.
func Gone(pid int) bool { return !Alive(pid) }

// AwaitGone polls until every thread of process pid has exited, failing
// the test if that takes longer than timeout.
func AwaitGone(t testing.TB, pid int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool { return Gone(pid) }, "process %d still has running threads %v after %v", pid, liveTasks(pid), timeout)
}

// liveTasks lists the threads of pid that have not exited, for messages.
func liveTasks(pid int) []string {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		data, err := os.ReadFile(dir + "/" + e.Name() + "/stat")
		if i := bytes.LastIndexByte(data, ')'); err == nil && i >= 0 && i+2 < len(data) {
			out = append(out, e.Name()+":"+string(data[i+2]))
		}
	}
	return out
}

// environOf returns the environment of process pid. A thread-group leader
// that has exited no longer has a memory map of its own, so its environ
// is empty while other threads still run: read it through one of them.
func environOf(pid int) []byte {
	base := "/proc/" + strconv.Itoa(pid)
	if data, err := os.ReadFile(base + "/environ"); err == nil && len(data) > 0 {
		return data
	}
	ents, _ := os.ReadDir(base + "/task")
	for _, e := range ents {
		if data, err := os.ReadFile(base + "/task/" + e.Name() + "/environ"); err == nil && len(data) > 0 {
			return data
		}
	}
	return nil
}

// PIDsWithEnv returns the live processes (some thread still running)
// whose environment holds kv ("NAME=value"), other than this one. The
// environment is read through every thread: once the main thread of a
// multithreaded program has exited, /proc/PID/environ is empty while the
// others run on. A test that gives the processes it starts a token
// variable finds them all with it, whatever their parents.
func PIDsWithEnv(kv string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data := environOf(pid)
		for _, v := range strings.Split(string(data), "\x00") {
			if v == kv {
				if Alive(pid) {
					out = append(out, pid)
				}
				break
			}
		}
	}
	return out
}

// Daemon is a helper program running as a real daemon, started by
// StartDaemon.
type Daemon struct {
	// Run is the launch; its launcher has exited 0.
	*Run
	// PID is the daemon's PID.
	PID int
	// Pidfile is the pidfile the PID was read from ("" if the helper
	// wrote none and the PID was found among the run's processes).
	Pidfile string
}

// StartDaemon runs the helper program name as a real daemon and waits until
// it is ready: the launcher must exit 0, or the test fails with the
// launcher's stderr. The PID comes from the helper's pidfile (H.Pidfile)
// or, without one, from the one process of the run still alive. The
// daemon is killed when the test ends; Stop ends it earlier, gracefully.
func StartDaemon(t testing.TB, name string, opts ...LaunchOption) *Daemon {
	t.Helper()
	r := Launch(t, name, opts...)
	if r.ExitCode != 0 {
		t.Fatalf("daemon %s did not become ready: launcher exit %d, stderr:\n%s%s", name, r.ExitCode, r.Stderr, reachHint(r.Dir))
	}
	d := &Daemon{Run: r}
	path := filepath.Join(r.Dir, PidfileName)
	if data, err := os.ReadFile(path); err == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 1 {
			t.Fatalf("pidfile %s holds %q, not a PID", path, data)
		}
		d.PID, d.Pidfile = pid, path
	} else if pids := r.PIDs(); len(pids) == 1 {
		d.PID = pids[0]
	} else {
		t.Fatalf("daemon %s: no pidfile (%v) and %d live processes %v", name, err, len(pids), pids)
	}
	if !Alive(d.PID) {
		t.Fatalf("daemon %s (pid %d) is not running after it said ready%s", name, d.PID, reachHint(r.Dir))
	}
	return d
}

// Stop sends SIGTERM to the daemon and waits until every thread of it has
// exited (see Alive), failing the test if one still runs after 10s (it is
// then killed).
func (d *Daemon) Stop() {
	d.t.Helper()
	if err := syscall.Kill(d.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		d.t.Fatalf("SIGTERM to %d: %v", d.PID, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for Alive(d.PID) {
		if time.Now().After(deadline) {
			d.Kill()
			d.t.Fatalf("daemon %d still running 10s after SIGTERM", d.PID)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
