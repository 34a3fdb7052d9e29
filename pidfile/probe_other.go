//go:build !linux

package pidfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// holderOf asks fcntl(F_GETLK) whether a lock that would conflict with a
// write lock is held on the open file fd. On the BSDs and macOS flock and
// fcntl locks share one implementation, so this sees flock locks; their
// owner is the open file, not a process, so the PID is usually unknown.
func holderOf(fd int) (Status, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Status{}, os.NewSyscallError("fcntl", err)
		}
		break
	}
	if lk.Type == unix.F_UNLCK {
		return Status{}, nil
	}
	pid := int(lk.Pid)
	if pid < 0 {
		pid = 0
	}
	return Status{Held: true, PID: pid}, nil
}
