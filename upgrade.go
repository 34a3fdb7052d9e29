package blivet

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/systemd"
	"golang.org/x/sys/unix"
)

// This file is the zero-downtime upgrade: Context.Upgrade starts the
// program's executable again as the next generation of the daemon, which
// inherits the named listeners and the lock, and takes over once it is
// ready.
//
// The previous generation passes, in the environment variable
// BLIVET_UPGRADE: its PID, the fd of the readiness pipe (the same record
// protocol as the launcher's, package notify), the fd of the locked
// lockfile (the same open file: the lock is never released), the named
// sockets with their fds, the socket-activation fds (kept at 3..), whether
// it dropped its privileges, and the service manager's socket. The new
// generation takes the variable at start-up (init), and Daemonize resumes
// its pipeline after the fork stages (from the start in foreground mode):
// no forks, no setsid; the output files are appended to; the pidfile stage
// adopts the lock; the listen stage adopts the sockets; privdrop verifies
// instead of dropping when the previous generation had dropped.

const envUpgrade = wire.UpgradeEnvKey

// launchExe is the program's executable as resolved when Daemonize
// returned the daemon's Context (early in its life, before any upgrade):
// Upgrade starts the file now at that path, so a new build installed
// there (by rename or copy) is picked up, even if the running binary was
// moved away. Launchers and the daemonize command never upgrade, so they
// do not pay for resolving it.
var (
	launchExeOnce sync.Once
	launchExe     string
	launchExeErr  error
)

// resolveLaunchExe sets launchExe once.
func resolveLaunchExe() {
	launchExeOnce.Do(func() { launchExe, launchExeErr = os.Executable() })
}

// upgradeMarker is what a generation hands to its successor (encoded by
// internal/wire, as every handover is).
type upgradeMarker = wire.Upgrade

var (
	upMu       sync.Mutex
	upTaken    *upgradeMarker // set by init in a generation started by Upgrade
	upTakenErr error
	upConsumed bool
)

func init() {
	if m, ok, err := wire.TakeUpgrade(); ok {
		upTaken, upTakenErr = &m, err
	}
}

// upgradeDropped reports whether this process is an upgrade's new
// generation whose predecessor had dropped privileges (so it is not root,
// and a configured drop is verified rather than refused).
func upgradeDropped() bool {
	upMu.Lock()
	defer upMu.Unlock()
	return upTaken != nil && upTakenErr == nil && upTaken.Dropped
}

// resumeStep is where an upgrade's new generation resumes: after the last
// fork stage, as the previous daemon did, or at the start in foreground
// mode.
func resumeStep(p *pipeline, foreground bool) int {
	if foreground {
		return 0
	}
	at := 0
	for i, s := range p.steps {
		if _, ok := s.stage.(stages.Forker); ok {
			at = i + 1
		}
	}
	return at
}

// resumeUpgrade sets up this generation when Upgrade started it: the line
// to the previous generation, the role, the step to resume at and what was
// inherited. It does nothing in any other process. A marker that does not
// check out is reported to the previous generation when the pipe can be
// trusted, and returned.
func (c *Context) resumeUpgrade(cfg *config, p *pipeline) error {
	upMu.Lock()
	m, merr, consumed := upTaken, upTakenErr, upConsumed
	upConsumed = true
	upMu.Unlock()
	if m == nil || consumed {
		return nil
	}
	st := c.state
	if merr == nil && m.Parent != os.Getppid() {
		merr = fmt.Errorf("invalid %s: handed over by PID %d, but the parent is PID %d", envUpgrade, m.Parent, os.Getppid())
	}
	if merr == nil && !handover.IsPipeWriter(m.FD) {
		merr = fmt.Errorf("invalid %s: fd %d is not the write end of a pipe", envUpgrade, m.FD)
	}
	if merr != nil {
		return c.fail(asError("upgrade", ExitUsage, merr), true)
	}
	unix.CloseOnExec(m.FD)
	st.Line = notify.NewPipe(os.NewFile(uintptr(m.FD), "blivet-upgrade"))
	st.Role = RoleDaemon
	if cfg.Foreground {
		st.Role = RoleForeground
	}
	// Continue the logs of the previous generation, never truncate them.
	st.Config.Append = true
	st.NotifySocket = m.Notify
	st.ListenFDs, st.ListenNames = m.ListenFDs, m.ListenNames
	in := &stages.Inherited{PID: m.Parent, LockFD: m.Lock, Dropped: m.Dropped}
	for _, s := range m.Sockets {
		unix.CloseOnExec(s.FD)
		spec := stages.ListenerSpec{Name: s.Name, Network: s.Network, Address: s.Address}
		in.Sockets = append(in.Sockets, stages.Socket{ListenerSpec: spec, File: os.NewFile(uintptr(s.FD), s.Name)})
	}
	st.Inherited = in
	if p != nil {
		c.pos = resumeStep(p, cfg.Foreground)
	}
	return nil
}

// upgradeState is the Context's share of upgrades.
type upgradeState struct {
	mu        sync.Mutex
	running   bool
	successor int
	once      sync.Once
	replaced  chan struct{}
}

func (u *upgradeState) ch() chan struct{} {
	u.once.Do(func() { u.replaced = make(chan struct{}) })
	return u.replaced
}

// WithUpgradeSignal makes the daemon run Context.Upgrade whenever it
// receives sig (SIGUSR2 is customary). A failed upgrade is written to the
// daemon's stderr and the daemon goes on; a successful one closes
// Context.Replaced, on which the daemon should stop accepting, finish its
// requests and exit. The last one wins; nil turns it off.
func WithUpgradeSignal(sig os.Signal) Option {
	return option(func(c *config) { c.life.upgradeSig = sig }, "WithUpgradeSignal(%v)", sig)
}

// Replaced returns a channel that is closed once a successor started by
// Upgrade is ready: from then on the successor owns the pidfile, the lock
// and the listeners, and this process should stop accepting, finish the
// requests it has and exit (Close leaves the pidfile and the lock to the
// successor).
func (c *Context) Replaced() <-chan struct{} { return c.life.upgrade.ch() }

// Upgrade starts the program's executable again (the file now at the path
// it was started from, so a new build installed there is picked up) as the
// next generation of this daemon, and returns nil once that generation is
// ready (it called NotifyParent, or Daemonize with WithAutoNotify).
//
// The new generation runs main again, as every generation does; its
// Daemonize runs the daemon's part of the pipeline without forks or
// setsid (it is already detached), inherits the WithListener sockets and
// the socket-activation fds, adopts the lock (the same open file: the lock
// is never released), appends to the output files, and, when this
// generation dropped its privileges, starts as the target user and only
// verifies it. When it is ready, this generation writes its PID to the
// pidfile (through the locked descriptor when the pidfile is the lock),
// sends MAINPID= to the service manager when there is one, and closes
// Replaced: drain and exit. From then on Close leaves the pidfile, the
// lock and unix socket files alone.
//
// If the new generation fails before it is ready (an error, an exit, a
// panic, or no readiness within WithReadyTimeout), Upgrade returns its
// error with its exit code, the new process is gone (SIGKILL after 5
// seconds if it lingers, and reaped), and this one goes on serving with
// nothing changed. Only one upgrade runs at a time: a call while one runs,
// after a successful one, or before this daemon is ready returns an error
// (70). A start failure is 71.
func (c *Context) Upgrade() error {
	if err := c.daemonOnly("upgrade"); err != nil {
		return err
	}
	u := &c.life.upgrade
	u.mu.Lock()
	switch {
	case u.successor != 0:
		u.mu.Unlock()
		return stages.Errorf("upgrade", ExitSoftware, "already replaced by PID %d", u.successor)
	case u.running:
		u.mu.Unlock()
		return stages.Errorf("upgrade", ExitSoftware, "an upgrade is already running")
	}
	u.running = true
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.running = false
		u.mu.Unlock()
	}()

	pid, r, err := c.startSuccessor()
	if err != nil {
		return err
	}
	out := notify.Await(r, c.state.Config.ReadyTimeout, pid)
	if out.Err != nil {
		reapGone(pid)
		r.Close()
		return &Error{Stage: "upgrade", Code: out.ExitCode,
			Err: fmt.Errorf("the new generation (PID %d) failed before it was ready: %w", pid, out.Err)}
	}
	r.Close()
	err = c.handOver(pid)
	u.mu.Lock()
	u.successor = pid
	u.mu.Unlock()
	close(u.ch())
	go reap(pid)
	return err
}

// startSuccessor starts the next generation and returns its PID and the
// read end of its readiness pipe.
func (c *Context) startSuccessor() (int, *os.File, error) {
	c.mu.Lock()
	st := c.state
	if c.pos < len(c.p.steps) {
		c.mu.Unlock()
		return 0, nil, stages.Errorf("upgrade", ExitSoftware, "the daemon is not ready yet (call NotifyParent first)")
	}
	m := upgradeMarker{Parent: os.Getpid(), Lock: -1, Dropped: st.Dropped, Notify: c.notifySocket(),
		ListenFDs: st.ListenFDs, ListenNames: st.ListenNames}
	files := []int{0, 1, 2}
	for i := 0; i < st.ListenFDs; i++ {
		files = append(files, systemd.ListenFDsStart+i)
	}
	var lockFD int = -1
	if st.LockFile != nil {
		lockFD = rawFD(st.LockFile)
	}
	var socks []wire.UpgradeSocket
	for _, s := range st.Sockets {
		socks = append(socks, wire.UpgradeSocket{Name: s.Name, Network: s.Network, Address: s.Address, FD: rawFD(s.File)})
	}
	c.mu.Unlock()

	resolveLaunchExe() // normally done by Daemonize already
	if launchExeErr != nil {
		return 0, nil, stages.Wrap("upgrade", ExitOSErr, launchExeErr)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, stages.Wrap("upgrade", ExitOSErr, err)
	}
	m.FD = len(files)
	files = append(files, rawFD(w))
	if lockFD >= 0 {
		m.Lock = len(files)
		files = append(files, lockFD)
	}
	for _, s := range socks {
		fd := s.FD
		s.FD = len(files) // its number in the new generation
		m.Sockets = append(m.Sockets, s)
		files = append(files, fd)
	}
	env := append(successorEnv(os.Environ()), envUpgrade+"="+m.Encode())
	pid, err := handover.Spawn(launchExe, os.Args, env, files, true)
	w.Close()
	if err != nil {
		r.Close()
		return 0, nil, stages.Wrap("upgrade", ExitOSErr, err)
	}
	return pid, r, nil
}

// handOver makes the ready successor pid the daemon: the pidfile names it
// and the service manager is told.
func (c *Context) handOver(pid int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state
	cfg := &st.Config
	st.Successor = pid
	var errs []error
	switch {
	case cfg.Pidfile == "":
	case st.LockFile != nil && cfg.LockPath() == cfg.Pidfile:
		errs = append(errs, pidfile.Rewrite(st.LockFile, pid))
	default:
		_, err := pidfile.Write(cfg.Pidfile, pid)
		errs = append(errs, err)
	}
	if socket := c.notifySocket(); socket != "" {
		errs = append(errs, stages.Wrap("upgrade", ExitOSErr, systemd.Send(socket, systemd.MainPID(pid))))
	}
	if err := errors.Join(errs...); err != nil {
		return stages.Errorf("upgrade", ExitCodeOf(err),
			"the new generation (PID %d) is ready and serving, but handing over did not complete: %w", pid, err)
	}
	return nil
}

// successorEnv is this process's environment for the next generation:
// without what belonged to this process only.
func successorEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case envUpgrade, wire.EnvKey, systemd.EnvNotifySocket, systemd.EnvWatchdogPID,
			"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// rawFD returns f's descriptor without File.Fd's switch to blocking mode
// (which would change the open file shared with net listeners).
func rawFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// reapGone makes sure a failed successor is gone: it waits for it to
// exit, kills it after 5 seconds, and reaps it (a reaped process has no
// task left).
func reapGone(pid int) {
	done := make(chan struct{})
	go func() {
		reap(pid)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}

func reap(pid int) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}
