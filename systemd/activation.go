package systemd

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// ListenFDsStart is the first socket-activation fd.
const ListenFDsStart = 3

// DefaultName is the name of an activation fd when LISTEN_FDNAMES is unset.
const DefaultName = "unknown"

// Activation describes the sockets a service manager passed: fds
// ListenFDsStart .. ListenFDsStart+N-1, with one name each.
type Activation struct {
	N     int      // how many fds were passed
	Names []string // one per fd; DefaultName when the manager gave none
}

// FDs returns the fd numbers of the activation sockets.
func (a Activation) FDs() []int {
	fds := make([]int, a.N)
	for i := range fds {
		fds[i] = ListenFDsStart + i
	}
	return fds
}

// TakeActivation reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES and
// removes them from the environment, so nothing this process starts sees
// stale values. ok is false when there is no activation addressed to this
// process: the variables are unset, or LISTEN_PID names another process
// (its fds are then none of this process's business). A malformed
// LISTEN_FDS or LISTEN_FDNAMES addressed to this process, or a named fd
// that is not open, is an error with exit code 64.
func TakeActivation() (a Activation, ok bool, err error) {
	pidStr, hasPID := os.LookupEnv(EnvListenPID)
	fdsStr, hasFDs := os.LookupEnv(EnvListenFDs)
	namesStr, hasNames := os.LookupEnv(EnvListenNames)
	os.Unsetenv(EnvListenPID)
	os.Unsetenv(EnvListenFDs)
	os.Unsetenv(EnvListenNames)
	if !hasPID || !hasFDs {
		return Activation{}, false, nil
	}
	if pid, err := strconv.Atoi(pidStr); err != nil || pid != os.Getpid() {
		return Activation{}, false, nil
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 0 || n > 1<<16 {
		return Activation{}, false, stages.Errorf(stageName, stages.ExitUsage, "%s=%q is not a number of fds", EnvListenFDs, fdsStr)
	}
	if n == 0 {
		return Activation{}, false, nil
	}
	a = Activation{N: n, Names: make([]string, n)}
	for i := range a.Names {
		a.Names[i] = DefaultName
	}
	if hasNames {
		names := strings.Split(namesStr, ":")
		if len(names) != n {
			return Activation{}, false, stages.Errorf(stageName, stages.ExitUsage,
				"%s=%q has %d names for %s=%d", EnvListenNames, namesStr, len(names), EnvListenFDs, n)
		}
		copy(a.Names, names)
	}
	for _, fd := range a.FDs() {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return Activation{}, false, stages.Errorf(stageName, stages.ExitUsage, "%s=%d but fd %d is not open: %w", EnvListenFDs, n, fd, err)
		}
	}
	return a, true, nil
}

// Environ returns the variables that hand the activation fds to the
// process pid (one that keeps them at the same numbers, such as the
// program a wrapper executes in place): LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES as KEY=VALUE strings. It returns nil when a.N is 0.
func (a Activation) Environ(pid int) []string {
	if a.N == 0 {
		return nil
	}
	return []string{
		EnvListenPID + "=" + strconv.Itoa(pid),
		EnvListenFDs + "=" + strconv.Itoa(a.N),
		EnvListenNames + "=" + strings.Join(a.Names, ":"),
	}
}

// Files wraps the activation fds, named after their LISTEN_FDNAMES entry,
// and marks them close-on-exec so the daemon's own children do not inherit
// them. Call it once: each *os.File closes its fd when closed or
// collected.
func (a Activation) Files() []*os.File {
	files := make([]*os.File, a.N)
	for i, fd := range a.FDs() {
		unix.CloseOnExec(fd)
		name := DefaultName
		if i < len(a.Names) {
			name = a.Names[i]
		}
		files[i] = os.NewFile(uintptr(fd), name)
	}
	return files
}

// String describes a for messages: "2 fds (web, admin)".
func (a Activation) String() string {
	return fmt.Sprintf("%d fds (%s)", a.N, strings.Join(a.Names, ", "))
}
