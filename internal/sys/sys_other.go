//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package sys

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdDir lists open fds. On FreeBSD without fdescfs mounted it shows only
// 0-2; CloexecExcept then falls back to the rlimit.
const fdDir = "/dev/fd"

// maxSignal is one past the highest signal number.
const maxSignal = 33

func exePath() (string, error) { return os.Executable() }

// SelfExe is empty here: the executable is always found by its path.
const SelfExe = ""

// SetProcessName is a no-op here: the name comes from the executed path.
func SetProcessName(string) error { return nil }

// ProcessName returns "" here.
func ProcessName() string { return "" }

func cloexecExcept(keep []int) error {
	fds, err := listFDs(fdDir)
	if err != nil || (len(fds) <= 3 && fdescUnreliable()) {
		return bruteForce(keep)
	}
	return cloexecList(fds, keep)
}

// fdescUnreliable is true where /dev/fd may list only 0-2 (FreeBSD without
// fdescfs).
func fdescUnreliable() bool { return runtimeGOOS == "freebsd" || runtimeGOOS == "dragonfly" }

// ClearThreadSigmask is a no-op where the platform offers no per-thread
// mask call to Go programs: a blocked-signal mask inherited by the launcher
// is not cleared there (documented limitation).
func ClearThreadSigmask() (restore func(), err error) { return func() {}, nil }

// ThreadSigmaskEmpty cannot be read on this platform; it reports true.
func ThreadSigmaskEmpty() bool { return true }

// IgnoredSignals returns the signals Go knows to be ignored. Go does not
// see an inherited SIG_IGN for every signal here, so callers that need a
// clean slate treat every signal as possibly ignored.
func IgnoredSignals() ([]syscall.Signal, error) {
	var out []syscall.Signal
	for _, s := range Signals() {
		if signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Dup2 makes newfd a copy of oldfd (clearing close-on-exec on newfd).
func Dup2(oldfd, newfd int) error { return unix.Dup2(oldfd, newfd) }

// Gone reports whether process pid no longer exists (a zombie counts as
// gone).
func Gone(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == syscall.ESRCH
}

func pipe(p *[2]int) error {
	// No pipe2 everywhere: hold the fork lock so that no fork inherits
	// the fds before they are close-on-exec.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return nil
}
