// Package rawfork executes a launch plan (stages.Plan) in child processes
// that run no Go runtime: the launcher forks, the child calls setsid, forks
// again and the grandchild, the daemon, does the planned steps (fds, umask,
// directory, lock, privilege drop) and execs. Where a stage had no raw
// form, the plan ends by re-executing the program itself, and the Go
// daemon resumes the pipeline there.
//
// The children follow the rules of Go's own syscall.forkAndExecInChild:
// the whole child runs in one function (launch) whose stack check happens
// in the parent before the fork; after the fork it calls nothing but the
// raw system call functions of package syscall and this package's clone
// routine, all of them nosplit; it allocates nothing and writes no Go
// pointer (every C string and array was made before the fork, pointer
// arrays are uintptr). Signals are blocked on the forking thread before the
// fork; the children reset every caught signal (every signal, when asked)
// to its default before they restore a mask, so no Go handler can ever run
// in them. launch is noinline, norace and nocheckptr, so debug builds
// (-gcflags=all=-N -l), -race and checkptr builds keep these properties.
//
// Failures in a child are written to the readiness pipe as a wire raw
// record (the pipeline step and the errno); the launcher turns it into the
// stage's own error.
package rawfork

import "errors"

// ErrUnsupported is returned where plans cannot run without a Go runtime;
// the caller re-executes the program instead.
var ErrUnsupported = errors.New("raw launch not supported on this platform")

// Options says how Start forks.
type Options struct {
	// Vfork makes the forks share the launcher's memory (no page tables
	// copied) and suspends the calling thread until the daemon execs or
	// fails. Leave it false when the caller must be able to give up
	// waiting: a child stuck in chdir on a dead mount would hold it.
	Vfork bool
	// DaemonIsChild makes the daemon a child of the caller (CLONE_PARENT
	// in the intermediate), so the caller can wait for it and learn how it
	// ended; init adopts it when the caller exits. Only for a caller that
	// exits once the outcome is known: a long-lived caller would have to
	// reap it.
	DaemonIsChild bool
}
