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

// Program is a daemon that is an exec'd program rather than this Go
// binary: what `daemonize` runs. Everything that needs Go (validation,
// lookups, opening and locking files, chown) is done by the caller before
// DoubleForkExec; the raw daemon child only does what must happen in the
// daemon itself, with raw system calls, then execs the program.
type Program struct {
	Umask int    // file mode creation mask
	Dir   string // working directory (absolute)
	// Drop switches ids when true: supplementary groups, then gid, then
	// uid unless UID is -1 (group only). It is then verified: all real,
	// effective and saved ids are the target's and uid 0 cannot be
	// regained, or the launch fails with 77.
	Drop   bool
	UID    int
	GID    int
	Groups []int
	// Env is the program's environment. When ListenPID is set, the entry
	// "LISTEN_PID=" is appended with the daemon's PID filled in.
	Env       []string
	ListenPID bool
	// Candidates are the paths to try in order (execvp(3) semantics: a
	// missing or non-executable candidate moves on to the next). A
	// candidate without a recognised format runs through Shell.
	Candidates []string
	Argv       []string
	Shell      string
	// Name names the program in error messages.
	Name string
	// NotFound, Denied and ExecFailed describe the program in the error
	// the launcher gets when every candidate was missing (exit code 66),
	// when one was not executable (66), or when exec failed otherwise (71).
	NotFound, Denied, ExecFailed string

	// Lock, when LockFD >= 0, is the pidfile or lockfile the launcher
	// opened and locked, at fd LockFD in the daemon. The daemon child
	// takes the lock over (so the kernel names the daemon as its holder),
	// checks that LockPath still names the file (device LockDev, inode
	// LockIno, when Regular) and, with WritePID, writes its PID into it.
	// The launcher's copy of the descriptor keeps the lock held if the
	// daemon child fails afterwards, so the launcher can remove the file.
	LockFD           int
	LockPath         string
	LockDev, LockIno uint64
	Regular          bool
	WritePID         bool

	// Vfork forks with vfork semantics: no page tables copied, and the
	// calling thread suspended until the daemon child execs or fails, so
	// DoubleForkExec returns only then. Leave it false when the caller
	// must be able to give up waiting (a ready timeout): a child stuck in
	// chdir on a dead network mount would hold the caller too.
	Vfork bool
}
