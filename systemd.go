package blivet

import (
	"os"
	"strconv"
	"time"

	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/systemd"
)

// This file connects the Context to the service manager protocols of
// package systemd: readiness and status notification, the watchdog and
// socket activation.
//
// Readiness: when NOTIFY_SOCKET is set, the notify stage (NotifyParent,
// or Daemonize with WithAutoNotify) sends READY=1 with MAINPID set to the
// daemon's PID before it tells the launcher, keeps the address for the
// methods below and removes the variable from the environment. In daemon
// mode under Type=notify the daemon is not the process systemd started,
// so the unit needs NotifyAccess=all; Type=forking with PIDFile= needs
// nothing. See examples/systemd.
//
// Socket activation: the launcher (or the foreground process) takes
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES when LISTEN_PID is its own PID,
// removes them from the environment, and keeps fds 3..3+N-1 open at the
// same numbers through every stage and re-execution. The daemon gets them
// with Files; package sockets turns them into net.Listener and
// net.PacketConn values. Activation addressed to another PID is ignored.
//
// Watchdog: StartWatchdog, when WATCHDOG_USEC is set for this process. In
// daemon mode a WATCHDOG_PID naming the launcher is moved to the daemon.

// sdState is the Context's share of the service manager protocols.
type sdState struct {
	files    []*os.File // activation fds, wrapped on first use
	watchdog *systemd.Watchdog
}

// inheritActivation sets up socket activation and the watchdog's PID for
// this generation. The first generation takes LISTEN_* from the
// environment; re-executed ones get them from the marker m. Either way
// the activation fds join State.KeepFDs.
func inheritActivation(st *State, m wire.Marker, handed bool) error {
	if handed {
		st.ListenFDs, st.ListenNames = m.ListenFDs, m.ListenNames
	} else {
		a, ok, err := systemd.TakeActivation()
		if err != nil {
			return err
		}
		if ok {
			st.ListenFDs, st.ListenNames = a.N, a.Names
		}
	}
	for i := 0; i < st.ListenFDs; i++ {
		st.KeepFDs = append(st.KeepFDs, systemd.ListenFDsStart+i)
	}
	// The watchdog is addressed to the process the manager started; in
	// daemon mode that process hands its duty to the daemon: the launcher
	// drops WATCHDOG_PID (absent means "this process"), the daemon names
	// itself so its own children do not take it as theirs.
	self := strconv.Itoa(os.Getpid())
	switch {
	case st.Role == RoleLauncher && !handed && os.Getenv(systemd.EnvWatchdogPID) == self:
		os.Unsetenv(systemd.EnvWatchdogPID)
	case handed && m.Role == "daemon":
		if _, usec := os.LookupEnv(systemd.EnvWatchdogUSec); usec {
			if _, pid := os.LookupEnv(systemd.EnvWatchdogPID); !pid {
				os.Setenv(systemd.EnvWatchdogPID, self)
			}
		}
	}
	return nil
}

// notifySocket returns the service manager's socket, or "" when there is
// none. The caller holds c.mu.
func (c *Context) notifySocket() string {
	if c.state.NotifySocket != "" {
		return c.state.NotifySocket
	}
	return os.Getenv(systemd.EnvNotifySocket)
}

func (c *Context) sdNotify(op, state string) error {
	if err := c.daemonOnly(op); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	socket := c.notifySocket()
	if socket == "" {
		return nil
	}
	return systemd.Send(socket, state)
}

// Status sends STATUS=msg to the service manager (shown by systemctl
// status). Not running under a service manager is not an error; a failed
// send has exit code 71, a message with a newline 64.
func (c *Context) Status(msg string) error {
	state, err := systemd.Status(msg)
	if err != nil {
		return err
	}
	return c.sdNotify("status", state)
}

// Stopping tells the service manager the daemon is shutting down
// (STOPPING=1). Not running under a service manager is not an error.
func (c *Context) Stopping() error { return c.sdNotify("stopping", systemd.Stopping) }

// Reloading tells the service manager the daemon is reloading its
// configuration (RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload
// requires). Call Reloaded when done. Not running under a service manager
// is not an error.
func (c *Context) Reloading() error { return c.sdNotify("reloading", systemd.ReloadingNow()) }

// Reloaded tells the service manager a reload is finished (READY=1).
func (c *Context) Reloaded() error { return c.sdNotify("reloading", systemd.Ready) }

// StartWatchdog starts sending WATCHDOG=1 to the service manager at half
// the interval it asked for (WATCHDOG_USEC), from a goroutine, until the
// Context is closed. It returns the interval between pings, or 0 when no
// watchdog is set for this process (not under a service manager, no
// WatchdogSec=, or WATCHDOG_PID names another process). Calling it again
// returns the running watchdog's interval.
func (c *Context) StartWatchdog() (time.Duration, error) {
	if err := c.daemonOnly("watchdog"); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sd.watchdog != nil {
		return c.sd.watchdog.Interval(), nil
	}
	socket := c.notifySocket()
	if socket == "" {
		return 0, nil
	}
	timeout, err := systemd.WatchdogEnabled()
	if err != nil || timeout == 0 {
		return 0, err
	}
	w := systemd.StartWatchdog(socket, timeout)
	c.sd.watchdog = w
	c.state.OnCleanup(func() error {
		err := w.Stop()
		return stages.Wrap("watchdog", ExitOSErr, err)
	})
	return w.Interval(), nil
}

// ListenNames returns the names of the socket-activation fds, in fd order
// from 3 ("unknown" for each when the manager gave none), or nil when the
// process was not socket-activated.
func (c *Context) ListenNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.state.ListenNames...)
}

// Files returns the socket-activation fds named name (every one when name
// is ""), then the WithListener sockets of that name (bound by the daemon
// or inherited in an upgrade), as files that stay open for the life of the
// process, marked close-on-exec. It returns nil when there is none.
func (c *Context) Files(name string) []*os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sd.files == nil && c.state.ListenFDs > 0 {
		c.sd.files = systemd.Activation{N: c.state.ListenFDs, Names: c.state.ListenNames}.Files()
	}
	var out []*os.File
	for _, f := range c.sd.files {
		if name == "" || f.Name() == name {
			out = append(out, f)
		}
	}
	for _, so := range c.state.Sockets { // WithListener (listen.go)
		if name == "" || so.Name == name {
			out = append(out, so.File)
		}
	}
	return out
}
