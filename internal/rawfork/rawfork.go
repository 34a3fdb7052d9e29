// Package rawfork performs the double fork of a daemon launch without
// starting a Go runtime in the intermediate process.
//
// The portable launch path re-executes the program twice: launcher ->
// intermediate (setsid, re-exec) -> daemon. Every Go process start costs
// about a millisecond, and the intermediate does nothing a Go runtime is
// needed for. So where the platform allows it, the launcher forks a raw
// child itself, the way syscall.ForkExec does: on a locked thread with every
// signal blocked, the child runs only raw system calls from nosplit, norace
// functions (no allocation, no scheduler, no stack growth). The child calls
// setsid, forks again and exits; the grandchild, not a session leader,
// arranges its fds, resets every signal to its default with an empty mask
// and executes the program as the daemon. A failure in either child is
// written to the readiness pipe as an error record, errno included.
package rawfork

import "errors"

// ErrUnsupported is returned where the raw double fork is not available;
// callers fall back to re-executing an intermediate.
var ErrUnsupported = errors.New("raw double fork not supported on this platform")
