//go:build linux

package main

import "syscall"

func vforkExit() (pid, errno uintptr)

// secondClone prices a double fork's second child: a child sharing this
// process's memory (as blivet's raw children do) that exits at once,
// reaped.
func secondClone() {
	pid, errno := vforkExit()
	if errno != 0 {
		fail(71, "clone", syscall.Errno(errno))
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(int(pid), &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}
