// Package sys hides the few platform differences blivet has behind one
// small interface: where the running executable is, how to mark every
// inherited fd close-on-exec without a loop to RLIMIT_NOFILE, and how to
// read and clear the calling thread's signal state.
package sys

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsDir reports whether path (followed) is a directory; the error is the
// one os.Stat would return. It is a plain stat(2) into a local: no
// os.FileInfo to allocate and fill, on the launcher's path.
func IsDir(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// ExeID identifies an executable file by device and inode.
type ExeID struct{ Dev, Ino uint64 }

// Executable returns a path that re-executes the running program and the
// identity of the file behind it.
func Executable() (string, ExeID, error) {
	path, err := exePath()
	if err != nil {
		return "", ExeID{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if err == unix.ENOENT && path == "/proc/self/exe" {
			return "", ExeID{}, fmt.Errorf("%w (re-executing the program needs /proc mounted)", &os.PathError{Op: "stat", Path: path, Err: err})
		}
		return "", ExeID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return path, ExeID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, nil
}

// CloexecExcept marks every open fd >= 3 close-on-exec except those in keep.
// Nothing is closed: the Go runtime's own fds (epoll, eventfd) stay usable,
// and the marked fds disappear at the next exec. The cost does not grow
// with RLIMIT_NOFILE where the platform can avoid it.
func CloexecExcept(keep []int) error {
	keep = slices.Clone(keep)
	slices.Sort(keep)
	return cloexecExcept(keep)
}

// cloexecList marks each fd in fds (except kept ones) close-on-exec.
func cloexecList(fds []int, keep []int) error {
	for _, fd := range fds {
		if fd < 3 {
			continue
		}
		if _, found := slices.BinarySearch(keep, fd); found {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return os.NewSyscallError("fcntl", err)
		}
	}
	return nil
}

// listFDs reads the open fds from a directory like /proc/self/fd or /dev/fd.
func listFDs(dir string) ([]int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	fds := make([]int, 0, len(names))
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd != int(d.Fd()) {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	return fds, nil
}

// bruteForce marks every fd below the soft RLIMIT_NOFILE (capped) close-on-exec.
// It is the last resort when the platform cannot list open fds.
func bruteForce(keep []int) error {
	var rl unix.Rlimit
	max := uint64(1024)
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && uint64(rl.Cur) != uint64(unix.RLIM_INFINITY) {
		max = uint64(rl.Cur)
	}
	if max > 1<<20 {
		max = 1 << 20
	}
	fds := make([]int, 0, 64)
	for fd := 3; fd < int(max); fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return cloexecList(fds, keep)
}

// OpenFDs lists the open file descriptors of the calling process.
func OpenFDs() ([]int, error) { return listFDs(fdDir) }

// Signals lists every signal number the platform has, for resetting.
func Signals() []syscall.Signal {
	out := make([]syscall.Signal, 0, maxSignal)
	for i := 1; i < maxSignal; i++ {
		if s := syscall.Signal(i); s != syscall.SIGKILL && s != syscall.SIGSTOP {
			out = append(out, s)
		}
	}
	return out
}

// OpenNull opens /dev/null for reading and writing, close-on-exec, as a
// plain blocking file outside Go's poller. A launcher that only forks
// never needs the poller, and the first file added to it starts it
// (epoll and its wake-up descriptor): about 40 µs of a cold start.
func OpenNull() (*os.File, error) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: os.DevNull, Err: err}
	}
	return os.NewFile(uintptr(fd), os.DevNull), nil
}

// Pipe returns a close-on-exec pipe whose ends block in the kernel,
// outside Go's poller (see OpenNull): a read wakes its thread directly,
// and cannot have a deadline. Use os.Pipe for a read that may be given
// up on.
func Pipe() (r, w *os.File, err error) {
	var p [2]int
	if err := pipe(&p); err != nil {
		return nil, nil, os.NewSyscallError("pipe", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}
