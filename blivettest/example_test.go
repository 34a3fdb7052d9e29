package blivettest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/pidfile"
)

// appOptions is what a program would share between its main and its tests.
func appOptions() []blivet.Option {
	return []blivet.Option{
		blivet.WithPidfile("/run/app.pid"),
		blivet.WithStdout("/var/log/app.log"),
		blivet.WithAutoNotify(),
		blivet.WithHookBefore("privdrop", func(*blivet.State) error { return nil }), // privileged init
	}
}

// A test runs the program's pipeline in-process and checks what happened.
// In a test, pass t instead of nil.
func ExampleNewRecorder() {
	rec := blivettest.NewRecorder(nil)
	ctx, err := rec.Daemonize(appOptions()...)
	if err != nil {
		panic(err)
	}
	defer ctx.Close()
	fmt.Println(rec.Stages())
	fmt.Println(len(rec.Hooks()), rec.Launcher().Ready, rec.Launcher().ExitCode)
	fmt.Println(rec.Actions("lock", "stdout", "ready"))
	// Output:
	// [signals fork setsid fork2 umask chdir stdio pidfile env output closefds privdrop notify]
	// 1 true 0
	// [lock /run/app.pid stdout > /var/log/app.log (truncate) ready]
}

// Call turns the end of the (simulated) process into an error.
func ExampleRecorder_Call() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	err := rec.Call(func() { ctx.ReportError(errors.New("no database")) })
	fmt.Println(err)
	fmt.Println(rec.Launcher().ExitCode)
	// Output:
	// process exited with code 70: app: no database
	// 70
}

// A stage the program replaced keeps the program's version; Real brings a
// default stage back (here env, which then really changes the test
// process's environment).
func ExampleReal() {
	defer os.Unsetenv("BLIVETTEST_EXAMPLE")
	rec := blivettest.NewRecorder(nil, blivettest.Real("env"))
	_, _ = rec.Daemonize(blivet.WithEnv("BLIVETTEST_EXAMPLE", "set"))
	fmt.Println(os.Getenv("BLIVETTEST_EXAMPLE"), rec.Env())
	// Output: set []
}

// Real-process mode: the helper runs as a real daemon (the test binary
// re-executed), StartDaemon waits until it is ready.
func ExampleStartDaemon() {
	// In an init function of the test package:
	blivettest.Register("example-server", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithCleanupOnSignal())
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		h.Report("cwd", must(os.Getwd()))
		_ = ctx.NotifyParent()
		select {}
	})

	// In a test:
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "example-server")
	var cwd string
	d.Await("cwd", &cwd) // "/"
	d.Stop()             // SIGTERM; the pidfile is removed
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Actions are what the fakes would have done to the process, one line
// each; prefixes select some.
func ExampleRecorder_Actions() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithUmask(0o027))
	for _, a := range rec.Actions("umask", "chdir", "stdin", "lock") {
		fmt.Println(a)
	}
	// Output:
	// umask 027
	// chdir /
	// stdin, stdout, stderr <> /dev/null
	// lock /run/app.pid
}

// Daemonize returns in the (simulated) daemon. A failure there is reported
// to the recorded launcher and returned as an *ExitError.
func ExampleRecorder_Daemonize() {
	rec := blivettest.NewRecorder(nil)
	ctx, err := rec.Daemonize(blivet.WithPidfile("/run/app.pid"))
	fmt.Println(ctx.Role(), err)

	rec = blivettest.NewRecorder(nil)
	_, err = rec.Daemonize(blivet.WithStageBefore("chdir", failing{}))
	fmt.Println(err)
	fmt.Println(rec.Launcher().ExitCode)
	// Output:
	// daemon <nil>
	// process exited with code 78: load-config: /etc/app.conf: no such file
	// 78
}

// failing is a custom stage that fails with an application exit code.
type failing struct{}

func (failing) Name() string { return "load-config" }
func (failing) Run(*blivet.State) error {
	return blivet.WrapError("load-config", 78, errors.New("/etc/app.conf: no such file"))
}

// The privilege drop is resolved, recorded and not done. Configuring a
// drop needs root (77 otherwise), so such tests skip when not root.
func ExampleRecorder_Drop() {
	var t *testing.T // the test's
	if os.Geteuid() != 0 {
		t.Skip("WithUser needs root")
	}
	rec := blivettest.NewRecorder(t)
	ctx, err := rec.Daemonize(blivet.WithUser("nobody"), blivet.WithStdout("/var/log/app.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.DropPrivileges(); err != nil { // recorded, not done
		t.Fatal(err)
	}
	d, ok := rec.Drop()
	if !ok || d.Target.Name != "nobody" || len(d.Chown) != 1 {
		t.Errorf("drop %+v ran %v; want nobody, chown [/var/log/app.log]", d, ok)
	}
}

func ExampleRecorder_Env() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithEnv("TZ", "UTC"), blivet.WithEnv("GOGC", "50"))
	fmt.Println(rec.Env(), os.Getenv("GOGC") == "50") // the test's environment is untouched
	// Output: [TZ=UTC GOGC=50] false
}

// Exited tells whether the program would have ended the process.
func ExampleRecorder_Exited() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	fmt.Println(rec.Exited())
	_ = rec.Call(func() { ctx.ReportError(errors.New("no database")) })
	fmt.Println(rec.Exited())
	// Output:
	// 0 false
	// 70 true
}

// Hooks are described with their registration site.
func ExampleRecorder_Hooks() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithHookBefore("chdir", func(*blivet.State) error { return nil }))
	for _, h := range rec.Hooks() {
		fmt.Println(strings.HasPrefix(h, "hook before chdir (example_test.go:"))
	}
	// Output: true
}

// What the launcher was told: nothing yet (-1), then ready (0).
func ExampleRecorder_Launcher() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	fmt.Println(rec.Launcher().ExitCode)
	_ = ctx.NotifyParent()
	l := rec.Launcher()
	fmt.Println(l.Ready, l.ExitCode, l.PID == os.Getpid())
	// Output:
	// -1
	// true 0 true
}

// startApp stands for code under test that calls blivet.Daemonize itself
// and accepts extra options.
func startApp(extra ...blivet.Option) (*blivet.Context, error) {
	return blivet.Daemonize(append(extra, blivet.WithPidfile("/run/app.pid"), blivet.WithAutoNotify())...)
}

// Options hands the Recorder's fakes to code that calls blivet.Daemonize
// itself; Call turns an exit into an error.
func ExampleRecorder_Options() {
	rec := blivettest.NewRecorder(nil)
	var ctx *blivet.Context
	err := rec.Call(func() {
		var err error
		ctx, err = startApp(rec.Options()...) // the Recorder's options first
		if err != nil {
			panic(err)
		}
	})
	fmt.Println(err, ctx.Role(), rec.Launcher().Ready)
	// Output: <nil> daemon true
}

func ExampleRecorder_Ran() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize() // split phase: Daemonize returns before privdrop
	fmt.Println(rec.Ran("closefds"), rec.Ran("privdrop"))
	// Output: true false
}

func ExampleRecorder_Stages() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithForeground(true), blivet.WithoutStage("umask"))
	fmt.Println(rec.Stages())
	// Output: [signals fork setsid fork2 chdir stdio pidfile env output closefds]
}

// Steps are the stages and hooks in order, with the generation each ran
// in and its outcome.
func ExampleRecorder_Steps() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize()
	for _, s := range rec.Steps()[:5] {
		fmt.Printf("%-12v %s\n", s.Role, s.Name)
	}
	// Output:
	// launcher     signals
	// launcher     fork
	// intermediate setsid
	// intermediate fork2
	// daemon       umask
}

// A failed step shows its exit code and error.
func ExampleStep_String() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithStageBefore("chdir", failing{}))
	steps := rec.Steps()
	fmt.Println(steps[0])
	fmt.Println(steps[len(steps)-1])
	// Output:
	// stage signals [launcher]
	// stage load-config [daemon]: exit 78: load-config: /etc/app.conf: no such file
}

func ExampleExitError_Error() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	err := rec.Call(func() { ctx.ReportError(errors.New("no database")) })
	fmt.Println(err.Error())
	// Output: process exited with code 70: app: no database
}

func ExampleExitError_ExitCode() {
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(blivet.WithStageBefore("chdir", failing{}))
	var exit *blivettest.ExitError
	fmt.Println(errors.As(err, &exit), exit.ExitCode(), blivet.ExitCodeOf(err))
	// Output: true 78 78
}

// The ExitError wraps what the launcher was told, so errors.Is and
// errors.As see through it.
func ExampleExitError_Unwrap() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	err := rec.Call(func() { ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, errors.New("address in use"))) })
	var be *blivet.Error
	fmt.Println(errors.Is(err, blivet.ErrOS), errors.As(err, &be), be.Stage)
	// Output: true true listen
}

func ExampleAlive() {
	fmt.Println(blivettest.Alive(os.Getpid()), blivettest.Alive(0))
	// Output: true false
}

func ExampleGone() {
	fmt.Println(blivettest.Gone(os.Getpid()), blivettest.Gone(0))
	// Output: false true
}

// AwaitGone waits for the effect of a stop (every thread of the process
// exited, its fds and locks released), not for init to reap it.
func ExampleAwaitGone() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	_ = syscall.Kill(d.PID, syscall.SIGTERM)
	blivettest.AwaitGone(t, d.PID, 10*time.Second)
}

// Main dispatches to the registered helper when the test binary was
// started as one, and runs the tests otherwise. It belongs in TestMain:
//
//	func TestMain(m *testing.M) { blivettest.Main(m) }
func ExampleMain() {
	var m *testing.M // TestMain's argument
	blivettest.Main(m)
}

// Register helpers from an init function (or TestMain) of the test
// package. A helper is a small main: it runs in every generation.
func ExampleRegister() {
	blivettest.Register("bad-pidfile", func(h *blivettest.H) {
		_, err := blivet.Daemonize(blivet.WithPidfile("relative.pid"))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err)) // 64, before any fork
	})
}

// Launch runs a helper and waits for its launcher: for failure tests.
func ExampleLaunch() {
	var t testing.TB // the test's *testing.T
	r := blivettest.Launch(t, "bad-pidfile")
	if r.ExitCode != blivet.ExitUsage || !strings.Contains(r.Stderr, "must be absolute") {
		t.Errorf("exit %d, stderr %q; want 64, must be absolute", r.ExitCode, r.Stderr)
	}
}

// Start returns while the launcher still waits: the test can look at the
// daemon before it says ready.
func ExampleStart() {
	blivettest.Register("gated", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize()
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		h.Report("pid", os.Getpid())
		for { // until the test says go
			if _, err := os.Stat(filepath.Join(h.Dir, "go")); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = ctx.NotifyParent()
		select {}
	})

	var t testing.TB // the test's *testing.T
	r, _ := blivettest.Start(t, "gated")
	var pid int
	r.Await("pid", &pid) // the daemon runs; its launcher waits
	// ... inspect /proc/<pid> before ready ...
	_ = os.WriteFile(filepath.Join(r.Dir, "go"), nil, 0o644)
	r.Wait()
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d: %s", r.ExitCode, r.Stderr)
	}
}

// A helper configured from the test through its environment.
func ExampleWithEnv() {
	blivettest.Register("port", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithAutoNotify())
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		h.Report("port", h.Env("APP_PORT"))
		select {}
	})

	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "port", blivettest.WithEnv("APP_PORT", "7007"))
	var port string
	d.Await("port", &port) // "7007"
}

// Extra arguments follow the test binary's own (-test.run=^$); the helper
// finds them in os.Args[2:].
func ExampleWithArgs() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server", blivettest.WithArgs("-config", "/etc/app.conf"))
	d.Stop()
}

// A second instance with the same report directory, hence the same
// pidfile, fails with 69.
func ExampleWithDir() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	r := blivettest.Launch(t, "server", blivettest.WithDir(d.Dir))
	if r.ExitCode != blivet.ExitUnavailable {
		t.Errorf("second instance: exit %d, want 69", r.ExitCode)
	}
}

// A daemon that takes long to get ready needs more than the default 20s.
func ExampleWithTimeout() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "slow-server", blivettest.WithTimeout(time.Minute))
	d.Stop()
}

// WithCmd adjusts the launcher's command: here an extra inherited fd, which
// must not reach the daemon.
func ExampleWithCmd() {
	var t testing.TB // the test's *testing.T
	marker, err := os.Create(filepath.Join(t.TempDir(), "marker"))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	d := blivettest.StartDaemon(t, "server", blivettest.WithCmd(func(c *exec.Cmd) {
		c.ExtraFiles = []*os.File{marker} // fd 3 in the launcher
	}))
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.PID))
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.PID, fd.Name())); target == marker.Name() {
			t.Errorf("fd %s of the daemon is the launcher's extra file", fd.Name())
		}
	}
}

// Stop sends SIGTERM and waits; the daemon removes its pidfile on the way
// out (WithCleanupOnSignal, or its own handler calling ctx.Close).
func ExampleDaemon_Stop() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	d.Stop()
	if _, err := os.Stat(d.Pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile %s left behind", d.Pidfile)
	}
}

// Eventually polls for what a daemon does in the background.
func ExampleEventually() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	log := filepath.Join(d.Dir, "server.log")
	blivettest.Eventually(t, 5*time.Second, func() bool {
		data, _ := os.ReadFile(log)
		return strings.Contains(string(data), "listening")
	}, "no %q line in %s", "listening", log)
}

// Report writes JSON that the test reads with Run.Read or Run.Await.
func ExampleH_Report() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	h := &blivettest.H{Dir: dir} // what a helper gets
	h.Report("cwd", "/")
	data, _ := os.ReadFile(filepath.Join(dir, "cwd.json"))
	fmt.Println(string(data))
	// Output: "/"
}

// The pidfile StartDaemon reads the daemon's PID from.
func ExampleH_Pidfile() {
	h := &blivettest.H{Dir: "/tmp/run1"}
	fmt.Println(h.Pidfile())
	// Output: /tmp/run1/daemon.pid
}

// Env reads a variable the test set with WithEnv.
func ExampleH_Env() {
	blivettest.Register("configured", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()), blivet.WithAutoNotify())
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		h.Report("mode", h.Env("APP_MODE")) // "" when the test set none
		select {}
	})
}

// Await polls for a report a running daemon writes (here its uid after
// the privilege drop).
func ExampleRun_Await() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	var uid int
	d.Await("uid", &uid)
}

// Read decodes a report the helper wrote before its launcher exited (here
// "cwd", written before it said ready).
func ExampleRun_Read() {
	var t testing.TB // the test's *testing.T
	r := blivettest.Launch(t, "server")
	var cwd string
	r.Read("cwd", &cwd)
	if cwd != "/" {
		t.Errorf("cwd %q", cwd)
	}
}

// A daemon that fails before ready never reaches its "ready" report.
func ExampleRun_Has() {
	var t testing.TB // the test's *testing.T
	r := blivettest.Launch(t, "bad-pidfile")
	if r.Has("ready") {
		t.Error("reported ready despite a bad pidfile path")
	}
}

// Kill ends every process of the run at once (SIGKILL), as a crash would:
// the pidfile stays, but nothing holds its lock.
func ExampleRun_Kill() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	d.Kill()
	st, err := pidfile.Probe(d.Pidfile)
	if err != nil || !st.Exists || st.Held {
		t.Errorf("after a crash: %+v %v; want a stale pidfile", st, err)
	}
}

// After ready only the daemon is left: launcher and intermediate are gone.
func ExampleRun_PIDs() {
	var t testing.TB // the test's *testing.T
	d := blivettest.StartDaemon(t, "server")
	if pids := d.PIDs(); len(pids) != 1 || pids[0] != d.PID {
		t.Errorf("live processes %v, want only the daemon %d", pids, d.PID)
	}
}

// Wait waits for the launcher Start started, then its exit code and output
// are set.
func ExampleRun_Wait() {
	var t testing.TB // the test's *testing.T
	r, cmd := blivettest.Start(t, "server")
	t.Logf("launcher PID %d", cmd.Process.Pid)
	r.Wait()
	t.Logf("exit %d, stderr %q", r.ExitCode, r.Stderr)
}
