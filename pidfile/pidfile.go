package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/blivet-go/blivet/internal/safefile"
	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// stageName names the pipeline stage, and is the Stage of every error this
// package returns.
const stageName = "pidfile"

// maxAttempts bounds how often Acquire starts over because the locked file
// was removed or replaced under it.
const maxAttempts = 100

// afterOpen, when set by a test, runs between opening the file and
// locking it: the window in which another instance may remove it.
var afterOpen func(path string)

// ConflictError is the underlying error when another process holds the
// lock. It comes wrapped in a *stages.Error with code 69, so
// errors.Is(err, stages.ErrLocked) is true and errors.As finds it.
type ConflictError struct {
	// Path is the locked file.
	Path string
	// PID is the process holding the lock, 0 when it could not be learned.
	PID int
	// FromFile is true when PID was read from the file because the kernel
	// did not name the holder: then it is only what the file says.
	FromFile bool
}

func (e *ConflictError) Error() string {
	switch {
	case e.PID > 0 && e.FromFile:
		return fmt.Sprintf("%s is locked by another instance (PID %d, according to the file)", e.Path, e.PID)
	case e.PID > 0:
		return fmt.Sprintf("%s is locked by another instance (PID %d)", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is locked by another instance (holder's PID unknown)", e.Path)
}

// Lock is an exclusive flock(2) lock on an open pidfile or lockfile. It is
// held until Unlock or until the process ends, whichever comes first; the
// garbage collector never releases it.
type Lock struct {
	mu      sync.Mutex
	f       *os.File
	path    string
	dev     uint64
	ino     uint64
	regular bool
}

// held keeps every held Lock reachable, so the finalizer of its *os.File
// can never close the fd (and drop the lock) behind the program's back.
var held sync.Map // *Lock -> struct{}

// Acquire opens path (creating it with mode 0644, subject to the umask)
// under the rules in the package documentation and takes an exclusive
// flock without waiting. It does not write anything.
//
// If another process holds the lock, the error has exit code 69 and wraps
// a *ConflictError. Any other failure (unsafe path, open, lock) has exit
// code 73. Errors are *stages.Error values naming the "pidfile" stage.
func Acquire(path string) (*Lock, error) {
	for attempt := 1; ; attempt++ {
		o, err := openSafe(path)
		if err != nil {
			return nil, err
		}
		if afterOpen != nil {
			afterOpen(o.Path)
		}
		if err := flock(o.FD, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			defer o.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &stages.Error{Stage: stageName, Code: stages.ExitUnavailable, Err: conflict(o)}
			}
			return nil, cantCreate(&os.PathError{Op: "flock", Path: o.Path, Err: err})
		}
		// The file we locked may have been unlinked (or replaced) by an
		// instance that was removing it while we opened it: then our lock
		// protects nothing. Check, after locking, that it still is the file
		// at the path.
		var now, cur unix.Stat_t
		if err := unix.Fstat(o.FD, &now); err != nil {
			o.Close()
			return nil, cantCreate(&os.PathError{Op: "fstat", Path: o.Path, Err: err})
		}
		err = unix.Fstatat(o.Dir, o.Base, &cur, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && now.Nlink > 0 && cur.Dev == now.Dev && cur.Ino == now.Ino {
			unix.Close(o.Dir)
			o.Dir = -1
			l := &Lock{
				f:       os.NewFile(uintptr(o.FD), o.Path),
				path:    o.Path,
				dev:     uint64(now.Dev),
				ino:     uint64(now.Ino),
				regular: now.Mode&unix.S_IFMT == unix.S_IFREG,
			}
			held.Store(l, struct{}{})
			return l, nil
		}
		o.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, cantCreate(&os.PathError{Op: "stat", Path: path, Err: err})
		}
		if attempt == maxAttempts {
			return nil, stages.Errorf(stageName, stages.ExitUnavailable,
				"%s: the file was removed or replaced %d times while being locked; another instance keeps recreating it", path, attempt)
		}
	}
}

// conflict describes who holds the lock on o, asking the kernel first and
// the file second.
func conflict(o *safefile.File) *ConflictError {
	e := &ConflictError{Path: o.Path}
	if h, err := holderOf(o.FD); err == nil && h.Held && h.PID > 0 {
		e.PID = h.PID
		return e
	}
	buf := make([]byte, 32)
	n, _ := unix.Pread(o.FD, buf, 0)
	if n > 0 {
		if pid, ok := parsePID(buf[:n]); ok {
			e.PID, e.FromFile = pid, true
		}
	}
	return e
}

// parsePID reads a decimal PID from the start of a pidfile's content.
func parsePID(b []byte) (int, bool) {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	return pid, err == nil && pid > 0
}

// Path returns the locked file's path, as given to Acquire but cleaned.
func (l *Lock) Path() string { return l.path }

// File returns the open, locked file. Closing it releases the lock; use
// Unlock instead. It is nil after Unlock.
func (l *Lock) File() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f
}

// WritePID replaces the file's content with pid in decimal followed by
// "\n", through the locked file descriptor. Failure has exit code 73.
func (l *Lock) WritePID(pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return stages.Errorf(stageName, stages.ExitCantCreate, "%s: writing the PID after Unlock", l.path)
	}
	return writePID(l.f, l.path, pid, l.regular)
}

// Remove unlinks the file if the path still names the locked file, keeping
// the lock: call Unlock afterwards. A character device is never removed,
// nor is a file that another process put at the path. It is a no-op after
// Unlock.
func (l *Lock) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || !l.regular {
		return nil
	}
	return removeIfSame(l.path, l.dev, l.ino, 0)
}

// Unlock releases the lock and closes the file. It is idempotent.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	// Closing the only descriptor of the open file description releases
	// the flock; an explicit LOCK_UN also covers copies made by fork/dup.
	unlockErr := flock(int(l.f.Fd()), unix.LOCK_UN)
	closeErr := l.f.Close()
	l.f = nil
	held.Delete(l)
	if unlockErr != nil {
		return cantCreate(&os.PathError{Op: "unlock", Path: l.path, Err: unlockErr})
	}
	if closeErr != nil {
		return cantCreate(closeErr)
	}
	return nil
}

// Create acquires the lock on path and writes pid into it: Acquire
// followed by WritePID. If the write fails, the file is removed (the lock
// is ours, so the file is too) and unlocked.
func Create(path string, pid int) (*Lock, error) {
	l, err := Acquire(path)
	if err != nil {
		return nil, err
	}
	if err := l.WritePID(pid); err != nil {
		_ = l.Remove()
		_ = l.Unlock()
		return nil, err
	}
	return l, nil
}

// Written identifies a pidfile written by Write, so that it can be removed
// later only if it is still that file.
type Written struct {
	path     string
	dev, ino uint64
	pid      int
	regular  bool
}

// Write writes pid in decimal followed by "\n" to path without taking any
// lock, opening the file under the same rules as Acquire. It is for a
// pidfile next to a standalone lockfile that the caller already holds, or
// for several instances that share a pidfile (WithoutLockfile). If the
// write fails on a regular file, the file is removed. Failure has exit
// code 73.
func Write(path string, pid int) (*Written, error) {
	o, err := openSafe(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	var st unix.Stat_t
	if err := unix.Fstat(o.FD, &st); err != nil {
		return nil, cantCreate(&os.PathError{Op: "fstat", Path: o.Path, Err: err})
	}
	w := &Written{path: o.Path, dev: uint64(st.Dev), ino: uint64(st.Ino), pid: pid, regular: st.Mode&unix.S_IFMT == unix.S_IFREG}
	f := os.NewFile(uintptr(o.FD), o.Path)
	o.FD = -1 // f owns it now
	defer f.Close()
	if err := writePID(f, o.Path, pid, w.regular); err != nil {
		if w.regular {
			_ = unix.Unlinkat(o.Dir, o.Base, 0)
		}
		return nil, err
	}
	return w, nil
}

// Remove unlinks the pidfile if its path still names the file Write wrote
// and that file still holds the PID written (another instance sharing an
// unlocked pidfile may have rewritten it since). A character device is
// never removed.
func (w *Written) Remove() error {
	if w == nil || !w.regular {
		return nil
	}
	return removeIfSame(w.path, w.dev, w.ino, w.pid)
}

// removeIfSame unlinks path if it is the file dev/ino and, when pid is not
// zero, if its content still names pid. It works under the directory
// opened by safefile's walk (see parentOf), never by path.
func removeIfSame(path string, dev, ino uint64, pid int) error {
	dir, base, err := parentOf(path)
	if err != nil {
		return err
	}
	if dir < 0 {
		return nil
	}
	defer unix.Close(dir)
	return removeSameAt(dir, path, base, dev, ino, pid)
}

// parentOf opens path's directory by safefile's walk (a symbolic link on
// the way is followed only when root or the effective user owns it) and
// returns it with path's last component. A directory that does not exist
// gives -1 and no error: there is nothing to remove.
func parentOf(path string) (dir int, base string, err error) {
	clean := filepath.Clean(path)
	dirPath, base := filepath.Split(clean)
	if dirPath == "" {
		dirPath = "."
	}
	dir, err = safefile.OpenDir(dirPath, stageName, "")
	if errors.Is(err, unix.ENOENT) {
		return -1, base, nil
	}
	return dir, base, err
}

// removeSameAt unlinks base in dir (path in messages) if it is the file
// dev/ino and, when pid is not zero, if its content still names pid.
func removeSameAt(dir int, path, base string, dev, ino uint64, pid int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return cantCreate(&os.PathError{Op: "stat", Path: path, Err: err})
	}
	if uint64(st.Dev) != dev || uint64(st.Ino) != ino {
		return nil
	}
	if pid != 0 {
		// Read only when the content decides: a daemon that dropped
		// privileges may not read the file it may still unlink.
		_, data, err := look(dir, base)
		if got, ok := parsePID(data); err != nil || !ok || got != pid {
			return nil
		}
	}
	if err := unix.Unlinkat(dir, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return cantCreate(&os.PathError{Op: "remove", Path: path, Err: err})
	}
	return nil
}

// errNotRegular is look's error for a file it does not read.
var errNotRegular = errors.New("not a regular file")

// look reports what base in dir is (fstatat(2) without following) and,
// for a regular file, a pidfile's worth of its start, read through a
// descriptor opened with O_NOFOLLOW and O_NONBLOCK and checked to be that
// same file: nothing swapped in since is followed or can block, and a
// device is never opened. Anything else gives its stat and errNotRegular.
func look(dir int, base string) (unix.Stat_t, []byte, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return st, nil, errNotRegular
	}
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, nil, err
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return st, nil, err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return st, nil, unix.ESTALE
	}
	buf := make([]byte, 64)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		return st, nil, err
	}
	return st, buf[:n], nil
}

// writePID writes "PID\n" at offset 0 of a regular file and then, if the
// file was longer, truncates it to that length (in that order, so a reader
// never sees an empty file), or just writes it to a character device.
// Under the lock (every writer but WithoutLockfile's) the size read first
// stays true until the write; a new pidfile is empty and needs no
// truncation (on ext4 an ftruncate costs ~20 us even when it changes
// nothing). Writers sharing an unlocked pidfile race either way.
func writePID(f *os.File, path string, pid int, regular bool) error {
	if pid <= 0 {
		return stages.Errorf(stageName, stages.ExitCantCreate, "%s: invalid PID %d", path, pid)
	}
	data := strconv.AppendInt(nil, int64(pid), 10)
	data = append(data, '\n')
	if !regular {
		_, err := f.Write(data)
		return cantCreate(err)
	}
	longer := true
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil {
		longer = st.Size > int64(len(data))
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return cantCreate(err)
	}
	if !longer {
		return nil
	}
	return cantCreate(f.Truncate(int64(len(data))))
}

// openSafe opens path for reading and writing under the rules in the
// package documentation, through package safefile (the one implementation
// of blivet's file-safety rules, see docs/security.md): the last component
// is never followed, the directory must be private when running as root,
// and only a regular file with one link or a character device is accepted.
func openSafe(path string) (*safefile.File, error) {
	f, err := safefile.Open(path, safefile.Spec{
		Stage:      stageName,
		Access:     unix.O_RDWR,
		Create:     true,
		Perm:       0o644,
		Allow:      safefile.Regular | safefile.CharDevice,
		PrivateDir: true,
		KeepDir:    true,
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// cantCreate wraps err with exit code 73, or returns nil.
func cantCreate(err error) error { return stages.Wrap(stageName, stages.ExitCantCreate, err) }
