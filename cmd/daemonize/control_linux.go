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

	"github.com/blivet-go/blivet/internal/sys"
)

// holdsLock reports whether process pid owns the flock lock on path: one
// of its descriptors refers to the file (same device and inode) and
// /proc/PID/fdinfo of that descriptor lists a FLOCK lock, which the kernel
// shows only for the open file that owns it. A process that cannot be
// inspected (another user's, without root) is a permission error; one
// that is gone (or a zombie) holds nothing.
func holdsLock(pid int, path string) (bool, error) {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		// A process that has ended holds nothing, also while it waits to
		// be reaped: its fd directory is then closed to everyone but root
		// (a zombie has no memory to check ptrace access against).
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) || sys.Gone(pid) {
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

// proc is a lock holder pinned for signalling: by a pidfd, so that its
// PID cannot be reused by another process while daemonize holds it.
type proc struct {
	pid int
	pfd int // -1: no pidfd (kernels before 5.3), kill(2) is used
}

// pinHolder pins pid, then checks that it holds the lock on path (in that
// order, so the process checked is the process pinned).
func pinHolder(pid int, path string) (*proc, error) {
	p := &proc{pid: pid, pfd: -1}
	pfd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		p.pfd = pfd
	case errors.Is(err, unix.ENOSYS):
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("%w: PID %d is gone", errHolderUnknown, pid)
	default:
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	ok, err := holdsLock(pid, path)
	if err == nil && !ok {
		err = fmt.Errorf("%w: PID %d no longer holds it", errHolderUnknown, pid)
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// signal sends sig to the pinned process; ESRCH once it has exited.
func (p *proc) signal(sig syscall.Signal) error {
	if p.pfd < 0 {
		return os.NewSyscallError("kill", unix.Kill(p.pid, sig))
	}
	return os.NewSyscallError("pidfd_send_signal", unix.PidfdSendSignal(p.pfd, sig, nil, 0))
}

// close releases the pin.
func (p *proc) close() {
	if p.pfd >= 0 {
		unix.Close(p.pfd)
		p.pfd = -1
	}
}
