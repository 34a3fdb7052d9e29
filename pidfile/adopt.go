package pidfile

import (
	"os"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// This file holds the pidfile's share of an upgrade (blivet's
// Context.Upgrade): the new generation adopts the lock the previous one
// holds (the same open file, so the lock is never released), and the
// previous one writes the new generation's PID once it is ready.

// Adopt takes over fd, an open file inherited from the previous generation
// that holds the exclusive flock on path: it checks that fd is the file
// at path and holds the lock (taking it again through the same open file
// is a no-op), and marks it close-on-exec. Failure has exit code 73 (69
// when another process holds the lock).
func Adopt(fd int, path string) (*Lock, error) {
	var st, cur unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, cantCreate(&os.PathError{Op: "fstat", Path: path, Err: err})
	}
	if err := unix.Lstat(path, &cur); err != nil {
		return nil, cantCreate(&os.PathError{Op: "lstat", Path: path, Err: err})
	}
	if st.Dev != cur.Dev || st.Ino != cur.Ino {
		return nil, stages.Errorf(stageName, stages.ExitCantCreate,
			"%s: the inherited lock is on another file (was the lockfile replaced?)", path)
	}
	if err := flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		code := stages.ExitCantCreate
		if err == unix.EWOULDBLOCK {
			code = stages.ExitUnavailable
		}
		return nil, stages.Errorf(stageName, code, "%s: the inherited fd does not hold the lock: %v", path, err)
	}
	unix.CloseOnExec(fd)
	l := &Lock{
		f:       os.NewFile(uintptr(fd), path),
		path:    path,
		dev:     uint64(st.Dev),
		ino:     uint64(st.Ino),
		regular: st.Mode&unix.S_IFMT == unix.S_IFREG,
	}
	held.Store(l, struct{}{})
	return l, nil
}

// Abandon closes the lock's file without unlocking it: the lock stays
// held as long as another process has the same open file (the other
// generation of an upgrade). It is a no-op after Unlock.
func (l *Lock) Abandon() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	held.Delete(l)
	return err
}

// Rewrite replaces the content of the pidfile open as f (the locked
// pidfile) with pid, through the descriptor. Failure has exit code 73.
func Rewrite(f *os.File, pid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return cantCreate(&os.PathError{Op: "fstat", Path: f.Name(), Err: err})
	}
	return writePID(f, f.Name(), pid, st.Mode&unix.S_IFMT == unix.S_IFREG)
}

// adopt is Run in a generation started by an upgrade: the lock is the
// inherited one, and the PID is written by the previous generation once
// this one is ready.
func adopt(s *stages.State) error {
	c := &s.Config
	lockPath := c.LockPath()
	fd := s.Inherited.LockFD
	if lockPath == "" && c.Pidfile == "" {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil
	}
	var lock *Lock
	var err error
	switch {
	case lockPath != "" && fd >= 0:
		lock, err = Adopt(fd, lockPath)
	case lockPath != "":
		lock, err = Acquire(lockPath) // the previous generation had no lock
	case fd >= 0:
		unix.Close(fd)
	}
	if err != nil {
		return err
	}
	if lock != nil {
		s.LockFile = lock.File()
		s.OwnFDs = append(s.OwnFDs, int(s.LockFile.Fd()))
		if lockPath != c.Pidfile {
			s.ChownPaths = append(s.ChownPaths, lockPath)
		}
	}
	r := &release{lock: lock, ownsPidfile: lock != nil && lockPath == c.Pidfile && c.Pidfile != "", state: s}
	if !r.ownsPidfile && c.Pidfile != "" {
		r.pidPath = c.Pidfile
	}
	s.OnCleanup(r.run)
	if c.CleanupOnSignal && c.Pidfile != "" {
		r.watch()
	}
	return nil
}

// removeIfOurs removes the pidfile at path if it names this process.
func removeIfOurs(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	return removeIfSame(path, uint64(st.Dev), uint64(st.Ino), os.Getpid())
}
