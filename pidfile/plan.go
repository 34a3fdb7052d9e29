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
		if path == c.Pidfile {
			// After a failed launch: only the pidfile, only when nobody
			// holds the lock, and only when it names the failed daemon or
			// is the empty file this launch created. A separate lockfile is
			// never removed.
			dev, ino, created := uint64(o.Stat.Dev), uint64(o.Stat.Ino), o.Created
			p.OnFailure(func(pid int) { removeFailed(o.Path, lockPath, dev, ino, created, pid) })
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

// removeFailed removes the pidfile path after a failed launch, if it is
// still the file dev/ino and it names the failed daemon pid, or this
// launch created it (created) and it is still empty. See removeIf.
func removeFailed(path, lockPath string, dev, ino uint64, created bool, pid int) {
	_ = removeIf(path, lockPath, func(st unix.Stat_t, data []byte) bool {
		got, ok := parsePID(data)
		same := uint64(st.Dev) == dev && uint64(st.Ino) == ino
		return same && ((pid > 0 && ok && got == pid) || (created && len(data) == 0))
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
// held for a moment after the process is reported gone (its last threads,
// or a child that inherited the descriptor, are ending): when the file
// names pid, the release is awaited, at most within; a file that names
// another process (the instance a conflict lost to) is left at once. A
// file that is not a regular file is never read, so nothing can block.
func RemoveEnded(path, lockPath string, pid int, within time.Duration) error {
	if pid <= 0 {
		return nil
	}
	if got, ok := readPIDFile(path); !ok || got != pid {
		return nil
	}
	if lockPath != "" {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if st, err := Probe(lockPath); err != nil || !st.Held {
				break
			}
		}
	}
	return RemoveStale(path, lockPath, pid)
}

// readPIDFile reads the PID a regular file at path names, without
// following a link in its last component or blocking on a named pipe.
func readPIDFile(path string) (int, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, false
	}
	buf := make([]byte, 32)
	n, _ := unix.Pread(fd, buf, 0)
	if n <= 0 {
		return 0, false
	}
	return parsePID(buf[:n])
}

// removeIf removes the pidfile path when stale says so of its identity and
// content, deciding while it holds the lock on lockPath ("" for none), so
// no instance that takes the lock meanwhile loses its pidfile. A lock held
// by a live process means the pidfile is not stale: nothing is removed.
func removeIf(path, lockPath string, stale func(st unix.Stat_t, data []byte) bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil
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
	data, err := os.ReadFile(path)
	if err != nil || !stale(st, data) {
		return nil
	}
	return removeIfSame(path, uint64(st.Dev), uint64(st.Ino), 0)
}
