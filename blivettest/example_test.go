package blivettest_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
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
