package sys

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DescribeStatus says how a process ended ("exited with status 3",
// "killed by SIGSEGV").
func DescribeStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		name := unix.SignalName(ws.Signal())
		if name == "" {
			name = fmt.Sprintf("signal %d", int(ws.Signal()))
		}
		s := "killed by " + name
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return fmt.Sprintf("ended with wait status %#x", uint32(ws))
}

// WaitGone polls until no thread of pid runs any more (see Gone), until
// within has passed (0: no limit) or until stop is closed (nil: never). It
// reports whether pid is gone.
func WaitGone(pid int, within time.Duration, stop <-chan struct{}) bool {
	var until <-chan time.Time
	if within > 0 {
		t := time.NewTimer(within)
		defer t.Stop()
		until = t.C
	}
	delay := time.Millisecond
	for !Gone(pid) {
		select {
		case <-stop:
			return false
		case <-until:
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
	return true
}
