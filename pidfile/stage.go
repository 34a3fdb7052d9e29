package pidfile

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/stages"
)

// Stage is the pipeline stage that takes the single-instance lock and
// writes the pidfile, in the daemon (or the foreground process). It reads
// Config.Pidfile, Lockfile, NoLock and CleanupOnSignal, and does nothing
// when there is neither a pidfile nor a lockfile.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the pidfile stage.
func New() *Stage { return &Stage{} }

// Name returns "pidfile".
func (*Stage) Name() string { return stageName }

// Run takes the lock on Config.LockPath() (the pidfile itself unless a
// lockfile is configured or NoLock is set), then writes os.Getpid() to the
// pidfile: through the locked descriptor when the pidfile is the lock, by
// Write otherwise. It records the lock in State.LockFile and State.OwnFDs
// and a standalone lockfile in State.ChownPaths (never the pidfile), with a
// descriptor of it in State.ChownFiles when a drop is configured, and
// registers the cleanup that removes the pidfile (or, where removal is not
// permitted, empties it) and then unlocks. With
// Config.CleanupOnSignal it finally installs the SIGTERM/SIGINT handling
// described in the package documentation.
//
// A lock conflict fails with 69, anything else with 73; nothing is left
// locked or half-written when Run fails.
func (*Stage) Run(s *stages.State) error {
	if s.Inherited != nil { // an upgrade's new generation (adopt.go)
		return adopt(s)
	}
	c := &s.Config
	lockPath := c.LockPath()
	if c.Pidfile == "" && lockPath == "" {
		return nil
	}
	pid := os.Getpid()
	var lock *Lock
	var written *Written
	if lockPath != "" {
		l, err := Acquire(lockPath)
		if err != nil {
			return err
		}
		lock = l
	}
	switch {
	case c.Pidfile == "":
	case lock != nil && lockPath == c.Pidfile:
		if err := lock.WritePID(pid); err != nil {
			_ = lock.Remove()
			_ = lock.Unlock()
			return err
		}
	default:
		w, err := Write(c.Pidfile, pid)
		if err != nil {
			if lock != nil {
				_ = lock.Unlock()
			}
			return err
		}
		written = w
	}

	if lock != nil {
		s.LockFile = lock.File()
		s.OwnFDs = append(s.OwnFDs, int(s.LockFile.Fd()))
		if lockPath != c.Pidfile {
			// The drop hands over the file locked here, through a
			// descriptor of its own (closing that copy keeps the lock).
			if err := s.HandOver(lockPath, s.LockFile); err != nil {
				if written != nil {
					_ = written.Remove()
				}
				_ = lock.Unlock()
				s.LockFile = nil
				return stages.Wrap("pidfile", stages.ExitCantCreate, err)
			}
		}
	}

	r := &release{lock: lock, written: written, ownsPidfile: lock != nil && lockPath == c.Pidfile && c.Pidfile != "", state: s}
	if written != nil {
		// Keep a descriptor on the pidfile written without its own lock,
		// to empty it when removal is not permitted (after a privilege
		// drop); the locked pidfile has its lock's descriptor for that.
		// It is close-on-exec, like the lock.
		r.keep = reopen(written)
	}
	s.OnCleanup(r.run)
	if c.CleanupOnSignal && c.Pidfile != "" {
		r.watch()
	}
	return nil
}

// release undoes what Run did, once, whoever asks first: Close,
// ReportError, a later stage's failure, or a signal.
type release struct {
	lock        *Lock
	written     *Written
	keep        *os.File // open on written's file, or nil
	ownsPidfile bool     // the pidfile is the locked file
	state       *stages.State
	pidPath     string // adopted in an upgrade: a separate pidfile removed if it names this process

	once sync.Once
	err  error
	sigs chan os.Signal
}

// run removes the pidfile while the lock is still held, then unlocks. A
// standalone lockfile is never removed. When the pidfile cannot be removed
// (after a privilege drop the daemon usually may not write its directory),
// run empties it through the descriptor it holds, so no PID is left behind
// for a tool to find alive or, later, reused; that counts as success.
func (r *release) run() error {
	r.once.Do(func() {
		if r.sigs != nil {
			// After Stop nothing is delivered to the channel any more, so
			// closing it is safe and ends the watching goroutine.
			signal.Stop(r.sigs)
			close(r.sigs)
		}
		if r.state != nil && r.state.HandedOver() {
			// Another generation of an upgrade owns the pidfile and
			// shares the lock: close, never unlock or remove.
			if r.lock != nil {
				r.err = r.lock.Abandon()
			}
			return
		}
		var errs []error
		if r.pidPath != "" {
			errs = append(errs, removeIfOurs(r.pidPath))
		}
		if r.ownsPidfile {
			errs = append(errs, orEmpty(r.lock.Remove(), func() error { return emptyLocked(r.lock) }))
		}
		errs = append(errs, orEmpty(r.written.Remove(), func() error { return emptyWritten(r.keep, r.written.pid) }))
		if r.keep != nil {
			_ = r.keep.Close()
		}
		if r.lock != nil {
			errs = append(errs, r.lock.Unlock())
		}
		for _, err := range errs {
			if err != nil && r.err == nil {
				r.err = err
			}
		}
	})
	return r.err
}

// orEmpty returns nil when removal succeeded, or failed but empty then
// emptied the file; otherwise the removal's error.
func orEmpty(removeErr error, empty func() error) error {
	if removeErr == nil {
		return nil
	}
	if empty() == nil {
		return nil
	}
	return removeErr
}

// emptyLocked truncates the locked pidfile to zero bytes through the
// locked descriptor, while the lock is still held (so the next instance,
// which writes its PID only once it holds the lock, is never clobbered).
func emptyLocked(l *Lock) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || !l.regular {
		return errors.New("no locked regular file")
	}
	return l.f.Truncate(0)
}

// emptyWritten truncates the pidfile written by Write through keep, if it
// still holds pid (an instance sharing an unlocked pidfile may have
// rewritten it since).
func emptyWritten(keep *os.File, pid int) error {
	if keep == nil {
		return errors.New("no descriptor kept on the pidfile")
	}
	buf := make([]byte, 32)
	n, _ := keep.ReadAt(buf, 0)
	if got, ok := parsePID(buf[:n]); !ok || got != pid {
		return nil // not ours any more: leave it to its writer
	}
	return keep.Truncate(0)
}

// reopen opens the regular file Write wrote again, close-on-exec, and
// returns it if it still is that file; nil otherwise.
func reopen(w *Written) *os.File {
	if !w.regular {
		return nil
	}
	fd, err := unix.Open(w.path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || uint64(st.Dev) != w.dev || uint64(st.Ino) != w.ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), w.path)
}

// watch installs the SIGTERM/SIGINT handling in one call, so it is all or
// nothing.
func (r *release) watch() {
	r.sigs = make(chan os.Signal, 1)
	signal.Notify(r.sigs, syscall.SIGTERM, syscall.SIGINT)
	go func(ch <-chan os.Signal) {
		sig, ok := <-ch
		if !ok {
			return
		}
		_ = r.run()
		raise(sig.(syscall.Signal))
	}(r.sigs)
}

// raise ends the process by sig: default disposition, then the signal
// sent to ourselves. Should the signal somehow not be fatal (blocked on
// every thread), the process exits with the shell's 128+sig.
func raise(sig syscall.Signal) {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(5 * time.Second)
	os.Exit(128 + int(sig))
}
