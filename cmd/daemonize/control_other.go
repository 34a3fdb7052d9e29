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

// signalHolder sends sig to pid, which holder named from the kernel's
// answer and the pidfile's agreeing number.
func signalHolder(pid int, _ string, sig syscall.Signal) error {
	if err := unix.Kill(pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}
