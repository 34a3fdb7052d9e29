package notify_test

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/stages"
)

// The launcher keeps the read end and waits; the daemon writes records on
// the write end. Here both ends are in one process.
func ExampleAwait() {
	r, w, _ := os.Pipe()
	defer r.Close()
	daemon := notify.NewPipe(w)
	_ = daemon.ReportPID(4242)
	_ = daemon.Ready()

	out := notify.Await(r, 30*time.Second, 0)
	fmt.Println(out.PID, out.ExitCode, out.Err)
	// Output: 4242 0 <nil>
}

// A daemon that is not ready in time: the launcher gives up with 75 (and
// sends SIGTERM to the daemon, or to pidHint's process group, when it
// knows them).
func ExampleAwait_timeout() {
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	out := notify.Await(r, 10*time.Millisecond, 0)
	fmt.Println(out.ExitCode, out.Err)
	// Output: 75 daemon: not ready after 10ms; no process to signal
}

// The records are lines starting with "blivet:".
func ExampleNewPipe() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	_ = p.ReportPID(4242)
	_ = p.Ready() // closes the write end
	data, _ := io.ReadAll(r)
	fmt.Printf("%s", data)
	// Output:
	// blivet:pid 4242
	// blivet:ready
}

// The launcher prints the error and exits with its code.
func ExamplePipe_Fail() {
	r, w, _ := os.Pipe()
	defer r.Close()
	_ = notify.NewPipe(w).Fail(stages.Errorf("pidfile", stages.ExitCantCreate, "open /run/app.pid: read-only file system"))
	out := notify.Await(r, 0, 0)
	fmt.Println(out.ExitCode, out.Err)
	// Output: 73 pidfile: open /run/app.pid: read-only file system
}

// The outcome is told once.
func ExamplePipe_Ready() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	fmt.Println(p.Ready())
	err := p.Ready()
	fmt.Println(stages.ExitCodeOf(err), err)
	// Output:
	// <nil>
	// 70 notify: the launcher was already told the outcome
}

// A daemon that ends without saying ready is never a success: the launcher
// sees end of file and exits 70, with the PID it was told.
func ExamplePipe_ReportPID() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	_ = p.ReportPID(4242)
	_ = p.Close() // or the daemon exits, or panics
	out := notify.Await(r, 0, 0)
	fmt.Println(out.PID, out.ExitCode, out.Err)
	// Output: 4242 70 daemon: the daemon exited before it was ready
}

// Close ends the line without a message: the launcher sees end of file.
func ExamplePipe_Close() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	fmt.Println(p.Close(), p.Close(), p.File() == nil) // idempotent
	fmt.Println(notify.Await(r, 0, 0).ExitCode)
	// Output:
	// <nil> <nil> true
	// 70
}

// A wrapper that execs a program (the daemonize CLI) says "exec pending"
// and leaves the write end close-on-exec: the end of file the exec causes
// then means success.
func ExamplePipe_ExecPending() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	_ = p.ExecPending()
	_ = w.Close() // what a successful execve does to a close-on-exec fd
	out := notify.Await(r, 0, 0)
	fmt.Println(out.ExitCode, out.Err)
	// Output: 0 <nil>
}

// File is the write end while the line is open: a re-execution passes it
// on to the next generation.
func ExamplePipe_File() {
	r, w, _ := os.Pipe()
	defer r.Close()
	p := notify.NewPipe(w)
	fmt.Println(p.File() == w)
	_ = p.Ready()
	fmt.Println(p.File() == nil)
	// Output:
	// true
	// true
}

// Once stderr goes to /dev/null (the stdio stage does this), a fatal
// panic's report goes over the pipe, so the launcher can print it. It is
// process-wide (runtime/debug.SetCrashOutput) until the line is closed.
func ExamplePipe_CarryCrashOutput() {
	p := notify.NewPipe(os.NewFile(3, "blivet-ready")) // the inherited write end
	p.CarryCrashOutput()
	// ... a panic from here on reaches the launcher's stderr ...
	_ = p.Ready()
}

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the privdrop stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("notify"), blivet.WithStageAfter("privdrop", notify.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what hooks and stage edits refer to: a check before the
// launcher is told, for example, is blivet.WithHookBefore("notify", fn).
func ExampleStage_Name() {
	fmt.Println(notify.New().Name())
	// Output: notify
}

// Run tells the service manager (NOTIFY_SOCKET) and the launcher the
// daemon is ready. (The pipeline never runs it before a configured
// privilege drop: see stages.RefuseBeforeDrop.)
func ExampleStage_Run() {
	r, w, _ := os.Pipe()
	defer r.Close()
	s := &stages.State{Role: stages.RoleDaemon, Line: notify.NewPipe(w)}
	err := notify.New().Run(s)
	fmt.Println(err, notify.Await(r, time.Second, 0).ExitCode)
	// Output: <nil> 0
}
