package blivet

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/output"
)

// This file holds what a long-lived daemon does with its output files
// (ReopenOutputs, WithReopenSignal) and the signal watching shared with
// upgrades (WithUpgradeSignal, upgrade.go).

// lifeConfig is what the options of this file, listen.go and upgrade.go
// configure beyond stages.Config.
type lifeConfig struct {
	upgradeSig os.Signal
	reopenSig  os.Signal
}

// lifeState is the Context's share of upgrades and reopening.
type lifeState struct {
	reopenMu  sync.Mutex
	watchOnce sync.Once
	upgrade   upgradeState
}

// WithReopenSignal makes the daemon reopen its output files
// (Context.ReopenOutputs) whenever it receives sig, typically SIGHUP from
// logrotate's postrotate. A failure is written to the daemon's stderr (the
// file still open there) and the daemon goes on. The signal is caught from
// the moment the daemon's part of the pipeline starts, in the daemon (or
// the foreground process) only. The last one wins; nil turns it off.
func WithReopenSignal(sig os.Signal) Option {
	return option(func(c *config) { c.life.reopenSig = sig }, "WithReopenSignal(%v)", sig)
}

// ReopenOutputs opens the configured stdout and stderr paths again
// (WithStdout, WithStderr) and moves them onto fds 1 and 2, after a log
// rotation renamed the files the daemon was writing. The new files are
// opened by output.Open, under the same rules as the first open, always
// appending (a file logrotate created with "create" is empty, and nothing
// already there is lost); the same path for both shares one open file.
// dup2(2) replaces each fd atomically: every write goes to the old file or
// the new one, none is lost.
//
// Paths that are not configured are left alone (nothing to do returns
// nil). A failure leaves the fd it concerns as it was and is returned
// with exit code 73; it never ends the daemon.
func (c *Context) ReopenOutputs() error {
	if err := c.daemonOnly("reopen"); err != nil {
		return err
	}
	c.life.reopenMu.Lock()
	defer c.life.reopenMu.Unlock()
	cfg := c.state.Config // read-only after Daemonize
	targets := []struct {
		path string
		fd   int
	}{{cfg.Stdout, 1}, {cfg.Stderr, 2}}
	opened := map[string]*os.File{}
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	var errs []error
	for _, t := range targets {
		if t.path == "" {
			continue
		}
		f, ok := opened[t.path]
		if !ok {
			var err error
			if f, err = output.Open(t.path, true); err != nil {
				errs = append(errs, err)
				continue
			}
			opened[t.path] = f
		}
		if err := sys.Dup2(int(f.Fd()), t.fd); err != nil {
			errs = append(errs, fmt.Errorf("fd %d: %w", t.fd, os.NewSyscallError("dup2", err)))
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return stages.Wrap("reopen", ExitCantCreate, errs[0])
	}
	return stages.Errorf("reopen", ExitCantCreate, "%v; %v", errs[0], errs[1])
}

// watchSignals starts catching the reopen and upgrade signals, once, when
// this process is the daemon or the foreground process.
func (c *Context) watchSignals(cfg *config) {
	if cfg == nil || (cfg.life.reopenSig == nil && cfg.life.upgradeSig == nil) {
		return
	}
	if r := c.state.Role; r != RoleDaemon && r != RoleForeground {
		return
	}
	c.life.watchOnce.Do(func() {
		if sig := cfg.life.reopenSig; sig != nil {
			c.onSignal(sig, c.ReopenOutputs)
		}
		if sig := cfg.life.upgradeSig; sig != nil {
			c.onSignal(sig, c.Upgrade)
		}
	})
}

// onSignal runs fn, from a goroutine, each time sig arrives; an error is
// written to stderr.
func (c *Context) onSignal(sig os.Signal, fn func() error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		for range ch {
			if err := fn(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v (signal %v)\n", filepath.Base(os.Args[0]), err, sig)
			}
		}
	}()
}
