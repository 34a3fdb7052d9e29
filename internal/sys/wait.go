package sys

import (
	"fmt"
	"syscall"
	"time"
)

// WaitChild waits for the child pid to end and says how it ended
// ("exited with status 3", "killed by SIGSEGV"). ok is false when pid is
// not a child of this process.
func WaitChild(pid int) (how string, ok bool) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "", false
		}
		break
	}
	return DescribeStatus(ws), true
}

// DescribeStatus says how a process ended.
func DescribeStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		s := fmt.Sprintf("killed by %s", SignalName(ws.Signal()))
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return fmt.Sprintf("ended with wait status %#x", uint32(ws))
}

// SignalName returns "SIGSEGV" for syscall.SIGSEGV, or "signal N".
func SignalName(sig syscall.Signal) string {
	for name, s := range signalNames {
		if s == sig {
			return name
		}
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// SignalByName returns the signal named name ("HUP", "SIGHUP", "hup") or
// given as a number ("1").
func SignalByName(name string) (syscall.Signal, bool) {
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name {
		return syscall.Signal(n), n > 0 && n < maxSignal
	}
	up := []byte(name)
	for i, c := range up {
		if c >= 'a' && c <= 'z' {
			up[i] = c - 'a' + 'A'
		}
	}
	u := string(up)
	if len(u) < 3 || u[:3] != "SIG" {
		u = "SIG" + u
	}
	s, ok := signalNames[u]
	return s, ok
}

var signalNames = map[string]syscall.Signal{
	"SIGABRT": syscall.SIGABRT, "SIGALRM": syscall.SIGALRM, "SIGBUS": syscall.SIGBUS,
	"SIGCHLD": syscall.SIGCHLD, "SIGCONT": syscall.SIGCONT, "SIGFPE": syscall.SIGFPE,
	"SIGHUP": syscall.SIGHUP, "SIGILL": syscall.SIGILL, "SIGINT": syscall.SIGINT,
	"SIGKILL": syscall.SIGKILL, "SIGPIPE": syscall.SIGPIPE, "SIGQUIT": syscall.SIGQUIT,
	"SIGSEGV": syscall.SIGSEGV, "SIGSTOP": syscall.SIGSTOP, "SIGTERM": syscall.SIGTERM,
	"SIGTRAP": syscall.SIGTRAP, "SIGTSTP": syscall.SIGTSTP, "SIGTTIN": syscall.SIGTTIN,
	"SIGTTOU": syscall.SIGTTOU, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGWINCH": syscall.SIGWINCH, "SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ,
	"SIGSYS": syscall.SIGSYS, "SIGPROF": syscall.SIGPROF, "SIGURG": syscall.SIGURG,
	"SIGVTALRM": syscall.SIGVTALRM, "SIGIO": syscall.SIGIO,
}

// WaitGone polls until no thread of pid runs any more (a zombie whose
// threads have all ended counts as gone), or until within has passed (0:
// for ever). It reports whether pid is gone.
func WaitGone(pid int, within time.Duration) bool {
	var until time.Time
	if within > 0 {
		until = time.Now().Add(within)
	}
	delay := time.Millisecond
	for {
		if Gone(pid) {
			return true
		}
		if !until.IsZero() && time.Now().After(until) {
			return false
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}
