package pidfile

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

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
// and a standalone lockfile in State.ChownPaths (never the pidfile), and
// registers the cleanup that removes the pidfile and then unlocks. With
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
			s.ChownPaths = append(s.ChownPaths, lockPath)
		}
	}

	r := &release{lock: lock, written: written, ownsPidfile: lock != nil && lockPath == c.Pidfile && c.Pidfile != "", state: s}
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
	ownsPidfile bool // the pidfile is the locked file
	state       *stages.State
	pidPath     string // adopted in an upgrade: a separate pidfile removed if it names this process

	once sync.Once
	err  error
	sigs chan os.Signal
}

// run removes the pidfile while the lock is still held, then unlocks. A
// standalone lockfile is never removed.
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
			errs = append(errs, r.lock.Remove())
		}
		errs = append(errs, r.written.Remove())
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
