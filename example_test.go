package blivet_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
)

// Examples without an "Output:" comment would daemonize the test binary:
// they are compiled, not run. The others run the pipeline in-process with
// blivettest.NewRecorder, which replaces every stage that changes the
// process (fork, setsid, umask, chdir, ...) by a recording fake.

// A daemon with a pidfile and a log that binds its port as root, then
// drops privileges (split phase), then tells the launcher it is ready.
func Example() {
	// Code before Daemonize runs in every process generation (launcher,
	// intermediate, daemon): keep it free of side effects.
	ctx, err := blivet.Daemonize(
		blivet.WithPidfile("/run/echo.pid"),
		blivet.WithStdout("/var/log/echo.log"),
		blivet.WithStderr("/var/log/echo.log"),
		blivet.WithUser("nobody"),
	)
	if err != nil { // invalid configuration (64) or not root (77), before any fork
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	defer ctx.Close() // removes the pidfile

	ln, err := net.Listen("tcp", ":7") // still root: a port below 1024
	if err != nil {
		ctx.ReportError(err) // the launcher prints it and exits 70
	}
	if err := ctx.DropPrivileges(); err != nil { // chown the log, setgroups, setgid, setuid
		ctx.ReportError(err)
	}
	if err := ctx.NotifyParent(); err != nil { // the launcher exits 0
		log.Print(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() { defer conn.Close(); _, _ = io.Copy(conn, conn) }()
	}
}

// The smallest daemon: the launcher returns (exits 0) once Daemonize
// returns in the daemon.
func ExampleDaemonize() {
	ctx, err := blivet.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithAutoNotify())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	defer ctx.Close()
	select {} // serve
}

// The same program, run in-process by a test: the pipeline runs, with
// recording fakes for everything that would change the process.
func ExampleDaemonize_inProcess() {
	rec := blivettest.NewRecorder(nil) // nil: no *testing.T in an Example
	ctx, err := rec.Daemonize(blivet.WithPidfile("/run/app.pid"))
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Stages())
	fmt.Println(ctx.Role(), rec.Launcher().Ready)
	_ = ctx.NotifyParent()
	fmt.Println(rec.Launcher().Ready, rec.Launcher().ExitCode)
	_ = ctx.Close()
	fmt.Println(rec.Actions("lock", "remove"))
	// Output:
	// [signals fork setsid fork2 umask chdir stdio pidfile env output closefds]
	// daemon false
	// true 0
	// [lock /run/app.pid remove /run/app.pid]
}

func ExampleDefaultStages() {
	var names []string
	for _, st := range blivet.DefaultStages() {
		names = append(names, st.Name())
	}
	fmt.Println(strings.Join(names, " "))
	// Output: signals fork setsid fork2 umask chdir stdio pidfile env output closefds privdrop notify
}

func ExampleWrapError() {
	err := blivet.WrapError("listen", blivet.ExitOSErr, errors.New("address already in use"))
	fmt.Println(err)
	fmt.Println(blivet.ExitCodeOf(err), errors.Is(err, blivet.ErrOS))
	// Output:
	// listen: address already in use
	// 71 true
}

// exampleConfigError is an application error with its own exit code.
type exampleConfigError struct{ path string }

func (e exampleConfigError) Error() string { return "bad config " + e.path }
func (e exampleConfigError) ExitCode() int { return 78 } // EX_CONFIG

func ExampleExitCodeOf() {
	fmt.Println(blivet.ExitCodeOf(nil))
	fmt.Println(blivet.ExitCodeOf(errors.New("untyped")))
	fmt.Println(blivet.ExitCodeOf(fmt.Errorf("loading: %w", exampleConfigError{"/etc/app.conf"})))
	// Output:
	// 0
	// 70
	// 78
}

func ExampleWithChdir() {
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(blivet.WithChdir("/tmp"))
	fmt.Println(err, rec.Actions("chdir"))
	_, err = blivettest.NewRecorder(nil).Daemonize(blivet.WithChdir("tmp"))
	fmt.Println(err, blivet.ExitCodeOf(err))
	// Output:
	// <nil> [chdir /tmp]
	// config: WithChdir: path "tmp" must be absolute 64
}

func ExampleWithUmask() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithUmask(0o027)) // files the daemon creates: no access for others
	fmt.Println(rec.Actions("umask"))
	// Output: [umask 027]
}

func ExampleWithStdout() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithStdout("/var/log/app.out"))
	fmt.Println(rec.Actions("stdout", "stderr"))
	// Output: [stdout > /var/log/app.out (truncate)]
}

// The same path for stdout and stderr shares one open file.
func ExampleWithStderr() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithStdout("/var/log/app.log"), blivet.WithStderr("/var/log/app.log"))
	fmt.Println(strings.Join(rec.Actions("stdout", "stderr"), "\n"))
	// Output:
	// stdout > /var/log/app.log (truncate)
	// stderr > /var/log/app.log (truncate)
}

func ExampleWithAppend() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithStdout("/var/log/app.log"), blivet.WithAppend(true))
	fmt.Println(rec.Actions("stdout"))
	// Output: [stdout > /var/log/app.log (append)]
}

// Variables are applied in order, so the later GOMAXPROCS wins.
func ExampleWithEnv() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(
		blivet.WithEnv("GOMAXPROCS", "2"),
		blivet.WithEnv("TZ", "UTC"),
		blivet.WithEnv("GOMAXPROCS", "4"),
	)
	fmt.Println(rec.Env())
	// Output: [GOMAXPROCS=2 TZ=UTC GOMAXPROCS=4]
}

// In foreground mode there is no fork, no setsid and no launcher to tell:
// failures are returned, never exits.
func ExampleWithForeground() {
	rec := blivettest.NewRecorder(nil)
	ctx, err := rec.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		panic(err)
	}
	fmt.Println(ctx.Role())
	fmt.Println(strings.Join(rec.Actions(), "\n"))
	// Output:
	// foreground
	// reset signal mask and dispositions
	// umask 022
	// chdir /
	// stdin < /dev/null
	// close-on-exec fds from 3 except []
	// ready
}

// A foreground daemon for systemd Type=notify: NotifyParent sends READY=1
// when NOTIFY_SOCKET is set.
func ExampleWithForeground_systemd() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true))
	if err != nil {
		log.Fatal(err) // foreground: every failure is returned
	}
	defer ctx.Close()
	if err := ctx.NotifyParent(); err != nil {
		log.Fatal(err)
	}
	select {}
}

func ExampleWithCloseFDs() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithCloseFDs(false))
	fmt.Println(rec.Actions("close-on-exec"))
	// Output: []
}

func ExampleWithKeepFDs() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithKeepFDs(0, 1, 2)) // 0-2 are always kept; listed for show
	fmt.Println(rec.Actions("close-on-exec"))
	// Output: [close-on-exec fds from 3 except [0 1 2]]
}

// With WithAutoNotify, Daemonize runs the whole pipeline: privileged
// initialisation goes in a hook before privdrop, and the launcher has been
// told "ready" when Daemonize returns in the daemon.
func ExampleWithAutoNotify() {
	rec := blivettest.NewRecorder(nil)
	var ln net.Listener
	ctx, err := rec.Daemonize(
		blivet.WithAutoNotify(),
		blivet.WithHookBefore("privdrop", func(*blivet.State) error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:0") // ":80" in a real daemon run as root
			return err
		}),
	)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	fmt.Println(ctx.Role(), rec.Launcher().Ready, rec.Stages()[len(rec.Stages())-1])
	// Output: daemon true notify
}

// A supervisor-like launcher that keeps running after the daemon is up
// (or failed), and reads the outcome.
func ExampleWithLauncherReturn() {
	ctx, err := blivet.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithLauncherReturn())
	if ctx != nil && !ctx.IsDaemon() {
		out := ctx.Outcome()
		if err != nil {
			fmt.Printf("daemon failed with exit code %d: %v\n", out.ExitCode, err)
			return
		}
		fmt.Printf("daemon %d is ready\n", out.PID)
		return
	}
	if err != nil { // invalid configuration, before any fork
		log.Fatal(err)
	}
	defer ctx.Close()
	_ = ctx.NotifyParent()
	select {}
}

// A launcher that gives up on a daemon that is not ready in time: it sends
// it SIGTERM and exits 75.
func ExampleWithReadyTimeout() {
	ctx, err := blivet.Daemonize(blivet.WithReadyTimeout(30 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	time.Sleep(time.Minute) // a slow start: the launcher exits 75 after 30s
	_ = ctx.NotifyParent()  // returns an error: the launcher is gone
}

// The pidfile is locked (a second instance exits 69) and removed when the
// daemon closes its Context.
func ExampleWithPidfile() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithPidfile("/run/app.pid"))
	_ = ctx.NotifyParent()
	_ = ctx.Close()
	fmt.Println(strings.Join(rec.Actions("lock", "remove"), "\n"))
	// Output:
	// lock /run/app.pid
	// remove /run/app.pid
}

// A separate lockfile (never removed) next to the pidfile.
func ExampleWithLockfile() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithLockfile("/run/app.lock"))
	fmt.Println(rec.Actions("lock"))
	// Output: [lock /run/app.lock]
}

// A pidfile without a lock: several instances may run.
func ExampleWithoutLockfile() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithoutLockfile())
	fmt.Println(rec.Actions("lock"))
	// Output: []
}

func ExampleWithCleanupOnSignal() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithCleanupOnSignal())
	fmt.Println(rec.Actions("remove"))
	// Output: [remove /run/app.pid on SIGTERM or SIGINT]
}

// Run as root; the daemon becomes the user "www-data" with its primary
// group and supplementary groups, after binding port 80.
func ExampleWithUser() {
	ctx, err := blivet.Daemonize(blivet.WithUser("www-data"), blivet.WithStdout("/var/log/web.log"))
	if err != nil {
		log.Fatal(err) // 77 when not root
	}
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		ctx.ReportError(err)
	}
	if err := ctx.DropPrivileges(); err != nil { // 67: no such user; 77: the drop failed
		ctx.ReportError(err)
	}
	_ = ctx.NotifyParent()
	_ = ln
}

// Only the group changes: supplementary groups are cleared, the uid stays.
func ExampleWithGroup() {
	ctx, err := blivet.Daemonize(blivet.WithGroup("nogroup"), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	select {}
}

// The log stays root's: the daemon, once it is "nobody", reopens nothing.
func ExampleWithChownPaths() {
	ctx, err := blivet.Daemonize(blivet.WithUser("nobody"), blivet.WithStdout("/var/log/app.log"),
		blivet.WithChownPaths(false), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	select {}
}

// An observer sees every stage and hook, in every generation: here the
// stages that run before Daemonize returns, with the generation each one
// runs in.
func ExampleWithObserver() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithObserver(func(e blivet.Event) {
		if e.Kind == blivet.StageRan {
			fmt.Printf("%-12v %s\n", e.Role, e.Name)
		}
	}))
	// Output:
	// launcher     signals
	// launcher     fork
	// intermediate setsid
	// intermediate fork2
	// daemon       umask
	// daemon       chdir
	// daemon       stdio
	// daemon       pidfile
	// daemon       env
	// daemon       output
	// daemon       closefds
}

// A framework that must not exit from inside Daemonize (tests do the same
// through blivettest) turns the exit into a panic it recovers.
func ExampleWithExitFunc() {
	type exit struct{ code int }
	rec := blivettest.NewRecorder(nil) // fakes for the stages; its own exit func is replaced below
	code := func() (code int) {
		defer func() {
			if x, ok := recover().(exit); ok {
				code = x.code
			}
		}()
		opts := append(rec.Options(), blivet.WithExitFunc(func(code int) { panic(exit{code}) }))
		ctx, err := blivet.Daemonize(opts...)
		if err != nil {
			return blivet.ExitCodeOf(err)
		}
		ctx.ReportError(exampleConfigError{"/etc/app.conf"}) // does not return
		return 0
	}()
	fmt.Println(code, rec.Launcher().Err)
	// Output: 78 app: bad config /etc/app.conf
}

// exampleStage is a custom stage: a name and a Run method.
type exampleStage struct {
	name string
	run  func(*blivet.State) error
}

func (s exampleStage) Name() string               { return s.name }
func (s exampleStage) Run(st *blivet.State) error { return s.run(st) }

// Load the configuration in the daemon, before the chdir to "/" makes
// relative paths meaningless.
func ExampleWithStageBefore() {
	rec := blivettest.NewRecorder(nil)
	loadConfig := exampleStage{"load-config", func(s *blivet.State) error {
		fmt.Println("loading config in the", s.Role)
		return nil
	}}
	_, _ = rec.Daemonize(blivet.WithStageBefore("chdir", loadConfig))
	fmt.Println(rec.Stages()[4:7])
	// Output:
	// loading config in the daemon
	// [umask load-config chdir]
}

// Check the service is healthy after the notify stage told the launcher.
func ExampleWithStageAfter() {
	rec := blivettest.NewRecorder(nil)
	announce := exampleStage{"announce", func(*blivet.State) error { return nil }}
	_, _ = rec.Daemonize(blivet.WithStageAfter("notify", announce), blivet.WithAutoNotify())
	fmt.Println(rec.Stages()[11:])
	// Output: [privdrop notify announce]
}

// Replace a stage by your own: here the env stage by one that also sets a
// variable computed in the daemon.
func ExampleWithStageReplaced() {
	rec := blivettest.NewRecorder(nil)
	myEnv := exampleStage{"env", func(s *blivet.State) error {
		fmt.Println("env stage for", len(s.Config.Env), "variables")
		return nil
	}}
	_, _ = rec.Daemonize(blivet.WithEnv("A", "1"), blivet.WithStageReplaced("env", myEnv))
	fmt.Println(rec.Env()) // the fake env stage did not run
	// Output:
	// env stage for 1 variables
	// []
}

// A daemon that keeps the inherited umask.
func ExampleWithoutStage() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(blivet.WithoutStage("umask"))
	fmt.Println(rec.Ran("umask"), rec.Ran("chdir"))
	// Output: false true
}

// Hook-style privileged initialisation: with WithAutoNotify the hook runs
// in the daemon, still root, right before the drop.
func ExampleWithHookBefore() {
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(
		blivet.WithAutoNotify(),
		blivet.WithHookBefore("privdrop", func(s *blivet.State) error {
			fmt.Println("privileged init in the", s.Role)
			return nil
		}),
	)
	fmt.Println(err, rec.Launcher().Ready)
	// Output:
	// privileged init in the daemon
	// <nil> true
}

// A hook after fork2 runs in the daemon; an error there is reported to the
// launcher with its exit code, which the launcher exits with.
func ExampleWithHookAfter() {
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(blivet.WithHookAfter("fork2", func(s *blivet.State) error {
		return exampleConfigError{"/etc/app.conf"}
	}))
	fmt.Println(blivet.ExitCodeOf(err), rec.Launcher().ExitCode)
	// Output: 78 78
}

// Split-phase privilege drop: bind as root, hand the log to the user and
// become it, then say ready.
func ExampleContext_DropPrivileges() {
	ctx, err := blivet.Daemonize(blivet.WithUser("nobody"), blivet.WithStdout("/var/log/app.log"))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	ln, err := net.Listen("tcp", ":443") // root
	if err != nil {
		ctx.ReportError(err)
	}
	if err := ctx.DropPrivileges(); err != nil { // nobody from here on, irreversibly
		ctx.ReportError(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		log.Print(err)
	}
	_ = ln
}

// ChownPaths hands the log to the target user early, still as root, for a
// program that must write to it from a process started before the drop.
func ExampleContext_ChownPaths() {
	ctx, err := blivet.Daemonize(blivet.WithUser("nobody"), blivet.WithStdout("/var/log/app.log"))
	if err != nil {
		log.Fatal(err)
	}
	if err := ctx.ChownPaths(); err != nil { // 73 if a chown fails
		ctx.ReportError(err)
	}
	if err := ctx.DropPrivileges(); err != nil { // chowns nothing twice
		ctx.ReportError(err)
	}
	_ = ctx.NotifyParent()
}

// NotifyParent refuses while a configured drop has not run: a daemon never
// says "ready" as root by mistake.
func ExampleContext_NotifyParent() {
	ctx, err := blivet.Daemonize(blivet.WithUser("nobody"))
	if err != nil {
		log.Fatal(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		ctx.ReportError(err) // exit code 70: DropPrivileges first
	}
}

// ReportError tells the launcher, which prints the error and exits with
// its code; the daemon ends. Here in-process, so the exit is recorded.
func ExampleContext_ReportError() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithPidfile("/run/app.pid"))
	err := rec.Call(func() {
		ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, errors.New("address already in use")))
	})
	fmt.Println(err)
	fmt.Println(rec.Launcher().ExitCode, rec.Actions("remove"))
	// Output:
	// process exited with code 71: listen: address already in use
	// 71 [remove /run/app.pid]
}

func ExampleContext_Close() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithAutoNotify())
	fmt.Println(ctx.Close(), ctx.Close(), rec.Actions("remove")) // idempotent
	// Output: <nil> <nil> [remove /run/app.pid]
}

// Cleanup is Close under another name.
func ExampleContext_Cleanup() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithAutoNotify())
	defer func() { fmt.Println(rec.Actions("remove")) }()
	defer ctx.Cleanup()
	// Output: [remove /run/app.pid]
}

// With WithLauncherReturn, the launcher's Context reports the outcome.
func ExampleContext_Outcome() {
	ctx, err := blivet.Daemonize(blivet.WithLauncherReturn())
	if ctx != nil && !ctx.IsDaemon() {
		out := ctx.Outcome()
		fmt.Println("daemon", out.PID, "exit code", out.ExitCode, "error", err)
		os.Exit(out.ExitCode)
	}
}

func ExampleContext_IsDaemon() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithLauncherReturn())
	fmt.Println(ctx.IsDaemon(), ctx.Outcome().ExitCode)
	// Output: true 0
}

func ExampleContext_Role() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithForeground(true))
	fmt.Println(ctx.Role())
	// Output: foreground
}

// State exposes the pipeline state, for frameworks: here the resolved
// configuration.
func ExampleContext_State() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithUmask(0o077))
	fmt.Printf("%#o %s\n", ctx.State().Config.Umask, ctx.State().Config.Dir)
	// Output: 077 /
}

// Validate checks options as Daemonize would, without daemonizing: a tool
// can reject a bad configuration (64, or 77 for privileges when not root)
// before it starts anything, and read the resolved values.
func ExampleValidate() {
	cfg, err := blivet.Validate(blivet.WithPidfile("/run/app.pid"), blivet.WithUmask(0o027))
	fmt.Println(err, cfg.Pidfile, cfg.LockPath(), cfg.Dir)
	fmt.Printf("%#o\n", cfg.Umask)

	_, err = blivet.Validate(blivet.WithPidfile("run/app.pid"))
	fmt.Println(err)
	fmt.Println(blivet.ExitCodeOf(err), errors.Is(err, blivet.ErrUsage))
	// Output:
	// <nil> /run/app.pid /run/app.pid /
	// 027
	// config: WithPidfile: path "run/app.pid" must be absolute
	// 64 true
}

// An Event's String is a log line: generation, step, duration, error. An
// observer can log it as is: blivet.WithObserver(func(e blivet.Event) { log.Print(e) }).
func ExampleEvent_String() {
	e := blivet.Event{Kind: blivet.StageRan, Name: "pidfile", Stage: "pidfile", Role: blivet.RoleDaemon,
		Duration: 180 * time.Microsecond, Err: blivet.WrapError("pidfile", blivet.ExitUnavailable, errors.New("locked"))}
	fmt.Println(e)
	// Output: [daemon] pidfile (180µs): pidfile: locked
}

// The kind tells stages from hooks; a hook's Stage is the stage it is
// attached to.
func ExampleEventKind_String() {
	rec := blivettest.NewRecorder(nil)
	_, _ = rec.Daemonize(
		blivet.WithHookBefore("chdir", func(*blivet.State) error { return nil }),
		blivet.WithObserver(func(e blivet.Event) {
			if e.Stage == "chdir" {
				fmt.Println(e.Kind, e.Stage)
			}
		}),
	)
	// Output:
	// hook chdir
	// stage chdir
}

// Status updates the line systemctl status shows. Outside a service
// manager (no NOTIFY_SOCKET) it sends nothing and returns nil.
func ExampleContext_Status() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	_ = ctx.Status("loading zones")
	// ... load them ...
	if err := ctx.NotifyParent(); err != nil { // READY=1
		log.Fatal(err)
	}
	_ = ctx.Status("serving 3 zones")
}

// A status is one line: a newline would start another assignment, so it is
// refused (64) before anything is sent.
func ExampleContext_Status_oneLine() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithAutoNotify())
	defer ctx.Close()
	err := ctx.Status("loading\nzones")
	fmt.Println(blivet.ExitCodeOf(err))
	// Output: 64
}

// On SIGTERM, tell the service manager the daemon is stopping (STOPPING=1),
// then shut down.
func ExampleContext_Stopping() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	_ = ctx.Stopping()
	// ... drain connections ...
}

// A reload on SIGHUP for Type=notify-reload (or ExecReload=): RELOADING=1
// with MONOTONIC_USEC first, READY=1 when the new configuration is in use.
func ExampleContext_Reloading() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for range hup {
		_ = ctx.Reloading()
		// ... re-read the configuration ...
		_ = ctx.Reloaded()
	}
}

// Reloaded ends a reload started with Reloading, also when it failed: the
// service goes on with its old configuration.
func ExampleContext_Reloaded() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	reload := func() error { return nil } // re-read the configuration
	_ = ctx.Reloading()
	if err := reload(); err != nil {
		_ = ctx.Status("reload failed: " + err.Error())
	}
	_ = ctx.Reloaded()
}

// With WatchdogSec= in the unit, StartWatchdog pings the service manager
// at half that interval until Close; without it, it returns 0.
func ExampleContext_StartWatchdog() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close() // stops the pings
	every, err := ctx.StartWatchdog()
	if err != nil { // a malformed WATCHDOG_USEC (64)
		log.Fatal(err)
	}
	if every > 0 {
		log.Printf("watchdog: pinging every %v", every)
	}
	select {}
}

// The names come from FileDescriptorName= (LISTEN_FDNAMES), in fd order.
func ExampleContext_ListenNames() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	if names := ctx.ListenNames(); names != nil {
		log.Printf("socket-activated: %v", names) // [web admin]
	}
	_ = ctx.NotifyParent()
}

// Files gives the activation fds themselves, for sockets the net package
// does not wrap or for passing on to a child process.
func ExampleContext_Files() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	for _, f := range ctx.Files("") { // every activation fd
		log.Printf("fd %d named %s", f.Fd(), f.Name())
	}
	cmd := exec.Command("/usr/local/bin/worker")
	cmd.ExtraFiles = ctx.Files("jobs") // fd 3 in the worker
	_ = cmd.Start()
}
