//go:build !linux

package main

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// holdsLock cannot look inside other processes on this system.
func holdsLock(int, string) (bool, error) { return false, errors.ErrUnsupported }

// lockHolders cannot list the processes holding a lock on this system.
func lockHolders(string) ([]int, error) { return nil, nil }

// proc is a lock holder to signal, by its PID (no pidfds here).
type proc struct{ pid int }

// pinHolder returns pid, which holder named from the kernel's answer and
// the pidfile's agreeing number.
func pinHolder(pid int, _ string) (*proc, error) { return &proc{pid: pid}, nil }

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) error {
	if err := unix.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", p.pid, err)
	}
	return nil
}

// close does nothing: there is no pin to release.
func (p *proc) close() {}
