package privdrop

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// capsSupported reports whether this program can change capabilities on
// every thread: syscall.AllThreadsSyscall refuses (ENOTSUP) in a program
// linked with cgo. The probe is an invalid prctl, which fails on the first
// thread, so nothing is broadcast.
func capsSupported() error {
	_, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, 0x7fffffff, 0, 0)
	if e == syscall.ENOTSUP {
		return errors.New("this program is linked with cgo, and Go can change the capabilities of every thread only without it: " +
			"build it with CGO_ENABLED=0, or with -tags netgo when package net is what brings cgo in")
	}
	return nil
}

// capMask returns caps as a bit mask, as /proc/PID/status shows the sets.
func capMask(caps []int) uint64 {
	var m uint64
	for _, c := range caps {
		if c >= 0 && c < 64 {
			m |= 1 << c
		}
	}
	return m
}

// allThreads runs a system call on every thread of the process.
func allThreads(what string, trap, a1, a2, a3, a4, a5 uintptr) error {
	if _, _, e := syscall.AllThreadsSyscall6(trap, a1, a2, a3, a4, a5, 0); e != 0 {
		if e == syscall.ENOTSUP {
			return fmt.Errorf("%s: %w (%v)", what, e, capsSupported())
		}
		return fmt.Errorf("%s: %w", what, e)
	}
	return nil
}

// keepCaps asks every thread to keep its permitted capabilities through the
// coming setresuid (PR_SET_KEEPCAPS), or (keep false) no longer to.
func keepCaps(keep bool) error {
	v := uintptr(0)
	if keep {
		v = 1
	}
	return allThreads("prctl(PR_SET_KEEPCAPS)", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, v, 0, 0, 0)
}

// setCaps, after the uid change, sets every thread's permitted, effective
// and inheritable sets to exactly caps and raises each in the ambient set,
// so they also survive an execve of a program without file capabilities.
func setCaps(caps []int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for _, c := range caps {
		bit := uint32(1) << (c % 32)
		data[c/32].Effective |= bit
		data[c/32].Permitted |= bit
		data[c/32].Inheritable |= bit
	}
	err := allThreads("capset", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0, 0, 0)
	if err != nil {
		return err
	}
	for _, c := range caps {
		if err := allThreads("prctl(PR_CAP_AMBIENT_RAISE, "+capName(c)+")", unix.SYS_PRCTL,
			unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return err
		}
	}
	return keepCaps(false)
}
