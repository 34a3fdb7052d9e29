package pidfile

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Status is what Probe learned about a pidfile or lockfile.
type Status struct {
	// Exists is true when the file exists.
	Exists bool
	// Held is true when a live process holds a flock(2) lock on the file:
	// the daemon runs. A pidfile that exists but is not held is stale.
	Held bool
	// PID is the process holding the lock, as the kernel names it. It is
	// 0 when the lock is not held, or when the holder is not visible (in
	// another PID namespace) or the platform cannot tell (see Probe).
	PID int
}

// Probe reports whether a live process holds the lock on path (a pidfile
// or a standalone lockfile) and which PID it has. It asks the kernel, never
// trusting the number written in the file, and never takes a lock, so it
// cannot make a concurrent start fail.
//
// A missing file is reported as Status{} and no error: nothing runs.
//
// On Linux the answer comes from /proc/locks, matched against the file's
// device and inode (both as stat(2) reports them and as the kernel lists
// them, which differ on btrfs subvolumes and overlayfs); /proc must be
// mounted. Elsewhere it comes from fcntl(F_GETLK), which sees flock locks
// on the BSDs and macOS but usually reports PID 0 for them.
//
// Probe opens the file read-only to identify it. Opening and closing a
// file drops the calling process's own POSIX (fcntl) locks on it; blivet's
// locks are flock locks and are not affected.
func Probe(path string) (Status, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			return Status{}, nil
		}
		if err != nil {
			return Status{}, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return Status{}, &fs.PathError{Op: "fstat", Path: path, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return Status{}, &fs.PathError{Op: "probe", Path: path, Err: errors.New("not a regular file")}
		}
		s, err := holderOf(fd)
		if err != nil {
			return Status{}, &os.PathError{Op: "probe", Path: path, Err: err}
		}
		s.Exists = true
		return s, nil
	}
}
