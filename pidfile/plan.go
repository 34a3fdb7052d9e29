package pidfile

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/stages"
)

// Name is the stage's name.
const Name = stageName

var _ stages.Planner = (*Stage)(nil)

// Plan describes the stage for a launch plan that ends with another
// program (the daemonize command): the launcher opens the lockfile and the
// pidfile under the rules of Acquire, without locking them; the daemon
// child takes the lock itself (so the kernel names it, and the program
// after it, as the holder; there is no moment where another instance could
// win it in between), checks that the path still names the file, writes
// its PID through the locked descriptor and keeps it open for the program.
// A conflict is reported as it is by Acquire: exit code 69 with a
// *ConflictError naming the holder. If the launch fails, the launcher
// removes a pidfile nobody holds that still is the file it opened.
//
// In a plan followed by a Go daemon (the library) the stage declines: it
// runs in the daemon, which then holds the lock and removes the pidfile.
func (st *Stage) Plan(s *stages.State, p *stages.Plan) error {
	c := &s.Config
	lockPath := c.LockPath()
	if c.Pidfile == "" && lockPath == "" {
		return nil
	}
	if !st.CanPlan(s, p.Final) {
		return stages.ErrNoRawForm
	}
	var files []*os.File
	open := func(path string) (*os.File, error) {
		o, err := openSafe(path)
		if err != nil {
			return nil, err
		}
		unix.Close(o.Dir)
		o.Dir = -1
		f := os.NewFile(uintptr(o.FD), o.Path)
		if st := &o.Stat; st.Mode&unix.S_IFMT != unix.S_IFREG {
			// A device as pidfile: written by the Go stage only.
			f.Close()
			return nil, stages.ErrNoRawForm
		}
		files = append(files, f)
		if path == c.Pidfile && o.Created {
			// After a failed launch whose daemon never wrote its PID, the
			// empty file this launch created goes (only the pidfile, only
			// when nobody holds the lock; a separate lockfile is never
			// removed). A pidfile that names the failed daemon is the
			// launcher's to remove, whichever generation wrote it
			// (RemoveEnded).
			dev, ino := uint64(o.Stat.Dev), uint64(o.Stat.Ino)
			p.OnFailure(func(int) { removeCreated(o.Path, lockPath, dev, ino) })
		}
		return f, nil
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if lockPath != "" {
		lock, err := open(lockPath)
		if err != nil {
			closeAll()
			return err
		}
		p.Add(stages.Op{Kind: stages.OpLock, File: lock, Path: lock.Name(), Explain: lockError(lock.Name())})
		if lockPath == c.Pidfile {
			p.Add(stages.Op{Kind: stages.OpWritePID, File: lock, Explain: writeError(lock.Name())})
		}
		p.Add(stages.Op{Kind: stages.OpKeepOpen, File: lock})
		if lockPath != c.Pidfile {
			if err := s.HandOver(lockPath, lock); err != nil {
				closeAll()
				return cantCreate(err)
			}
		}
	}
	if c.Pidfile != "" && lockPath != c.Pidfile {
		pf, err := open(c.Pidfile)
		if err != nil {
			closeAll()
			return err
		}
		p.Add(stages.Op{Kind: stages.OpWritePID, File: pf, Explain: writeError(pf.Name())})
	}
	p.OnDone(func() error { closeAll(); return nil })
	return nil
}

// CanPlan reports whether Plan would plan: in a Final plan, unless the
// pidfile is to be removed on a signal (the Go stage's handler does that).
func (*Stage) CanPlan(s *stages.State, final bool) bool {
	return (s.Config.Pidfile == "" && s.Config.LockPath() == "") || (final && !s.Config.CleanupOnSignal)
}

// lockError explains a failed lock step of a plan as Acquire would.
func lockError(path string) func(syscall.Errno) error {
	return func(errno syscall.Errno) error {
		switch errno {
		case unix.EWOULDBLOCK:
			e := &ConflictError{Path: path}
			if st, err := Probe(path); err == nil && st.Held {
				e.PID = st.PID
			} else if data, err := os.ReadFile(path); err == nil {
				e.PID, e.FromFile = 0, false
				if pid, ok := parsePID(data); ok {
					e.PID, e.FromFile = pid, true
				}
			}
			return &stages.Error{Stage: stageName, Code: stages.ExitUnavailable, Err: e}
		case unix.ESTALE:
			return stages.Errorf(stageName, stages.ExitUnavailable,
				"%s was removed or replaced while starting (another instance is starting or stopping)", path)
		}
		return cantCreate(&os.PathError{Op: "flock", Path: path, Err: errno})
	}
}

func writeError(path string) func(syscall.Errno) error {
	return func(errno syscall.Errno) error {
		return cantCreate(&os.PathError{Op: "write", Path: path, Err: errno})
	}
}

// removeCreated removes the pidfile path this launch created after a
// failed launch, if it is still that file (dev/ino) and still empty. See
// removeIf.
func removeCreated(path, lockPath string, dev, ino uint64) {
	_ = removeIf(path, lockPath, func(st unix.Stat_t, data []byte) bool {
		return uint64(st.Dev) == dev && uint64(st.Ino) == ino && len(data) == 0
	})
}

// RemoveStale removes the pidfile at path after the process pid it names
// has ended without cleaning up (a program that failed to get ready):
// only if it still holds pid and nobody holds the lock on lockPath (the
// pidfile itself when they are the same; "" for none). It takes the lock
// itself while removing, so no instance starting meanwhile loses its
// pidfile.
func RemoveStale(path, lockPath string, pid int) error {
	return removeIf(path, lockPath, func(_ unix.Stat_t, data []byte) bool {
		got, ok := parsePID(data)
		return ok && got == pid
	})
}

// RemoveEnded removes the pidfile at path of the process pid, which failed
// to get ready and has ended, as RemoveStale does. Its lock may still be
// held for a moment after the process is reported gone (a child that
// inherited the descriptor is ending): while the file names pid, the
// release is awaited, at most within; a file that names another process
// (the instance a conflict lost to, or one that took the lock since) is
// left at once.
func RemoveEnded(path, lockPath string, pid int, within time.Duration) error {
	if pid <= 0 {
		return nil
	}
	deadline := time.Now().Add(within)
	for names(path, pid) {
		if lockPath == "" || time.Now().After(deadline) {
			break
		}
		if st, err := Probe(lockPath); err != nil || !st.Held {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return RemoveStale(path, lockPath, pid)
}

// names reports whether the pidfile at path is a regular file naming pid
// (read under safefile's walk, without following or blocking).
func names(path string, pid int) bool {
	dir, base, err := parentOf(path)
	if err != nil || dir < 0 {
		return false
	}
	defer unix.Close(dir)
	_, data, err := look(dir, base)
	got, ok := parsePID(data)
	return err == nil && ok && got == pid
}

// removeIf removes the pidfile path when stale says so of its identity and
// content, deciding while it holds the lock on lockPath ("" for none), so
// no instance that takes the lock meanwhile loses its pidfile. A lock held
// by a live process means the pidfile is not stale: nothing is removed.
func removeIf(path, lockPath string, stale func(st unix.Stat_t, data []byte) bool) error {
	dir, base, err := parentOf(path)
	if err != nil || dir < 0 {
		return err
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil // nothing there: nothing to remove, and no lock to take
	}
	if lockPath != "" {
		if s, err := Probe(lockPath); err != nil || s.Held {
			return err
		}
		l, err := Acquire(lockPath)
		if err != nil {
			return err
		}
		defer l.Unlock()
	}
	// Looked at again under the lock: what is decided on is what is
	// removed (removeSameAt checks the identity once more).
	st, data, err := look(dir, base)
	if err != nil || !stale(st, data) {
		return nil
	}
	return removeSameAt(dir, path, base, uint64(st.Dev), uint64(st.Ino), 0)
}
