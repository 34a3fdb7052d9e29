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
// raw system call functions of package syscall, this package's clone
// routine and its decimal formatter, all of them nosplit leaves (no chain
// of nosplit calls that a debug build could push past the linker's
// limit); it allocates nothing and writes no Go
// pointer (every C string and array was made before the fork, pointer
// arrays are uintptr). Signals are blocked on the forking thread before the
// fork; the children reset every caught signal (every signal, when asked)
// to its default before they restore a mask, so no Go handler can ever run
// in them. launch is noinline, norace and nocheckptr, so debug builds
// (-gcflags=all=-N -l), -race and checkptr builds keep these properties.
//
// With Options.Vfork the children share the launcher's memory and run on
// the launching thread's stack while it is suspended. Where the clone
// routines allow it (amd64: direct_amd64.go) and the plan forks once, the
// daemon itself releases the launcher: the intermediate clones it without
// CLONE_VFORK and exits at once without touching the stack, and the
// launching thread, back from its vfork, waits in registers only until
// the kernel clears a word at the daemon's exec or exit (the kernel also
// sets it, to the daemon's TID, before the daemon runs: CLONE_PARENT_SETTID
// and CLONE_CHILD_CLEARTID). The launch then ends with one wake-up from
// the daemon's exec, as a single fork does, instead of two in a row (the
// daemon's exec waking the intermediate, whose exit wakes the launcher).
//
// Failures in a child are written to the readiness pipe as a wire raw
// record (the pipeline step and the errno); the launcher turns it into the
// stage's own error.
package rawfork

import (
	"errors"
	"os"
)

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
	// Waiter, when not nil, keeps the intermediate alive as the daemon's
	// parent: it waits for the daemon to end and writes how it ended (a
	// wire "ended" record) to Waiter, so a launcher that is not the
	// daemon's parent learns it. The waiting intermediate keeps no other
	// fd. The caller ends the wait by killing the intermediate once it is
	// done with the daemon, ready or not; init then adopts the daemon.
	// The first fork is then a plain fork (the launcher must not be
	// suspended while the intermediate waits).
	Waiter *os.File
	// CloseUnkept keeps every fd the plan does not use from the daemon
	// (Config.CloseFDs): an intermediate with its own fd table closes
	// them before the second fork; one that shares the launcher's (with
	// Vfork) leaves them, and the daemon child marks them close-on-exec
	// before its exec.
	CloseUnkept bool
}
