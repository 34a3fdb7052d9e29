package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// process is the running daemon, held by a pidfd: signals reach that
// process even if its PID is reused, and the pidfd tells when every one
// of its threads has ended (a Go daemon's main thread can be a zombie
// while other threads still run and hold its files).
type process struct{ pid, fd int }

func openProcess(pid int) (*process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		return &process{pid: pid, fd: -1}, nil // before Linux 5.3
	}
	if err != nil {
		return nil, err
	}
	return &process{pid: pid, fd: fd}, nil
}

func (p *process) signal(sig unix.Signal) error {
	if p.fd < 0 {
		return unix.Kill(p.pid, sig)
	}
	return unix.PidfdSendSignal(p.fd, sig, nil, 0)
}

// ended reports whether the process and all its threads have exited.
func (p *process) ended() bool {
	if p.fd < 0 {
		return unix.Kill(p.pid, 0) == unix.ESRCH
	}
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1
}

func (p *process) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
	}
}
