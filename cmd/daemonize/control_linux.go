package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// holdsLock reports whether process pid owns the flock lock on path: one
// of its descriptors refers to the file (same device and inode) and
// /proc/PID/fdinfo of that descriptor lists a FLOCK lock, which the kernel
// shows only for the open file that owns it. A process that cannot be
// inspected (another user's, without root) is a permission error; one
// that is gone holds nothing.
func holdsLock(pid int, path string) (bool, error) {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("inspecting PID %d: %w", pid, err)
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(dir+"/"+e.Name(), &st) != nil || st.Dev != want.Dev || st.Ino != want.Ino {
			continue
		}
		info, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			rest, ok := strings.CutPrefix(line, "lock:")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) >= 2 && f[1] == "FLOCK" { // not "->": a waiter
				return true, nil
			}
		}
	}
	return false, nil
}

// lockHolders returns every visible process that owns the lock on path
// (processes that share the locked open file, such as a program and the
// children it forked). Processes that cannot be inspected are skipped.
func lockHolders(path string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if ok, _ := holdsLock(pid, path); ok {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// signalHolder sends sig to pid after checking, once more, that pid holds
// the lock on path. The process is pinned by a pidfd first, so its PID
// cannot be reused between the check and the signal (kill(2) is used on
// kernels without pidfds, before 5.3).
func signalHolder(pid int, path string, sig syscall.Signal) error {
	pfd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		defer unix.Close(pfd)
	case errors.Is(err, unix.ESRCH):
		return err
	case errors.Is(err, unix.ENOSYS):
		pfd = -1
	default:
		return os.NewSyscallError("pidfd_open", err)
	}
	ok, err := holdsLock(pid, path)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: PID %d no longer holds it", errHolderUnknown, pid)
	}
	if pfd < 0 {
		return os.NewSyscallError("kill", unix.Kill(pid, sig))
	}
	if err := unix.PidfdSendSignal(pfd, sig, nil, 0); err != nil {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	return nil
}
