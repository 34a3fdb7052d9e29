package blivet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

// Names of the pipeline vocabulary, re-exported from package stages.
type (
	// Stage is one step of the pipeline; see stages.Stage.
	Stage = stages.Stage
	// State is what stages and hooks run against; see stages.State.
	State = stages.State
	// Error is the error type of every failure; see stages.Error.
	Error = stages.Error
	// Role tells which process generation is running; see stages.Role.
	Role = stages.Role
	// Outcome is what the launcher learned; see stages.Outcome.
	Outcome = stages.Outcome
)

// Exit codes (sysexits.h), re-exported from package stages.
const (
	ExitOK          = stages.ExitOK
	ExitUsage       = stages.ExitUsage
	ExitNoInput     = stages.ExitNoInput
	ExitNoUser      = stages.ExitNoUser
	ExitUnavailable = stages.ExitUnavailable
	ExitSoftware    = stages.ExitSoftware
	ExitOSErr       = stages.ExitOSErr
	ExitCantCreate  = stages.ExitCantCreate
	ExitTempFail    = stages.ExitTempFail
	ExitNoPerm      = stages.ExitNoPerm
)

// Sentinel errors, one per exit code, for errors.Is.
var (
	ErrUsage      = stages.ErrUsage
	ErrNoInput    = stages.ErrNoInput
	ErrNoUser     = stages.ErrNoUser
	ErrLocked     = stages.ErrLocked
	ErrSoftware   = stages.ErrSoftware
	ErrOS         = stages.ErrOS
	ErrCantCreate = stages.ErrCantCreate
	ErrTimeout    = stages.ErrTimeout
	ErrNoPerm     = stages.ErrNoPerm
)

// The generations, re-exported from package stages.
const (
	RoleLauncher     = stages.RoleLauncher
	RoleIntermediate = stages.RoleIntermediate
	RoleDaemon       = stages.RoleDaemon
	RoleForeground   = stages.RoleForeground
)

// WrapError returns an *Error for stage with exit code code around err, or
// err itself when it already is an *Error (nil for nil).
func WrapError(stage string, code int, err error) error { return stages.Wrap(stage, code, err) }

// ExitCodeOf returns the exit code for err: 0 for nil, the code carried by
// an ExitCode() method in 1..255, 70 otherwise.
func ExitCodeOf(err error) int { return stages.ExitCodeOf(err) }

// Context is the daemon's handle on the pipeline after Daemonize returns.
// In the launcher (with WithLauncherReturn) it only reports the Outcome.
type Context struct {
	mu       sync.Mutex
	p        *pipeline
	state    *State
	observer func(Event)
	exitFunc func(code int)
	pos      int       // next step to run
	closed   bool      // Close ran
	sd       sdState   // service manager protocols (systemd.go)
	life     lifeState // upgrade and reopen (upgrade.go, reopen.go)
}

// Daemonize turns the calling program into a daemon and returns, in the
// daemon, its *Context. See the package documentation for what happens in
// each process generation. Code before Daemonize runs in every generation
// and must be free of side effects.
//
// In the launcher, Daemonize does not return: it exits 0 once the daemon is
// ready, or prints the daemon's error and exits with its code. Validation
// errors (64, 77) are returned before any fork. With WithLauncherReturn it
// returns the launcher's Context and the daemon's error instead.
//
// In foreground mode every failure is returned, never an exit.
func Daemonize(opts ...Option) (*Context, error) {
	marker, handed, markerErr := wire.Take()
	c, p, err := configure(opts)
	if c == nil {
		return nil, err
	}
	st := &State{Config: c.Config, Role: RoleLauncher}
	if c.Foreground {
		st.Role = RoleForeground
	}
	ctx := &Context{p: p, state: st, observer: c.observer, exitFunc: c.exitFunc}
	if err := ctx.resumeUpgrade(c, p); err != nil { // upgrade.go
		return nil, err
	}
	if handed {
		if line := adoptPipe(marker, markerErr); line != nil {
			st.Line = line
		}
		if markerErr == nil && p != nil {
			markerErr = marker.Verify(p.fingerprint)
		}
		if markerErr == nil && (marker.Role == "foreground") != c.Foreground {
			markerErr = fmt.Errorf("%w: role %s does not match the options", wire.ErrForged, marker.Role)
		}
		if markerErr != nil {
			return nil, ctx.fail(asError("handover", ExitUsage, markerErr), true)
		}
		switch marker.Role {
		case "intermediate":
			st.Role = RoleIntermediate
		case "daemon":
			st.Role = RoleDaemon
			// The launcher learns the daemon's PID from the daemon itself
			// (there may have been no Go intermediate to tell it).
			_ = st.Line.ReportPID(os.Getpid())
		}
		ctx.pos = marker.Next
		st.HandedFDs = marker.Keep
		st.KeepFDs = append(st.KeepFDs, marker.Keep...)
		if marker.Name != "" {
			// Started through /proc/self/exe: keep the program's name
			// in ps, pgrep and the journal.
			_ = sys.SetProcessName(marker.Name)
		}
	}
	if err != nil {
		return nil, ctx.fail(asError("config", ExitUsage, err), true)
	}
	st.Fingerprint = p.fingerprint
	st.KeepFDs = append(st.KeepFDs, c.KeepFDs...)
	if err := inheritActivation(st, marker, handed); err != nil {
		return nil, ctx.fail(asError("systemd", ExitUsage, err), true)
	}

	stop := len(p.steps)
	if !c.AutoNotify {
		stop = p.split
	}
	ctx.watchSignals(c) // reopen.go: in the daemon or the foreground process
	if err := ctx.run(stop, true); err != nil {
		return nil, err
	}
	if st.Outcome != nil {
		return ctx.launcherDone()
	}
	if st.Role == RoleLauncher || st.Role == RoleIntermediate {
		// A pipeline without fork stages ran to its end here: this
		// process is the daemon.
		st.Role = RoleDaemon
	}
	resolveLaunchExe() // this process is the daemon: for Upgrade (upgrade.go)
	ctx.watchSignals(c)
	return ctx, nil
}

// configure applies and validates the options and builds the pipeline. It
// returns a nil config only for a nil Option.
func configure(opts []Option) (*config, *pipeline, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, nil, usageErr("nil Option")
		}
		o.apply(c)
	}
	p, err := build(c)
	if err == nil {
		err = c.validate()
	}
	return c, p, err
}

// Validate checks options as Daemonize would before any fork (exit codes
// 64 and 77), without daemonizing, and returns the resolved configuration.
// Tools and tests that want the library's rules without launching
// anything (a configuration check, a framework's own validation) use it.
func Validate(opts ...Option) (stages.Config, error) {
	c, _, err := configure(opts)
	if c == nil {
		return stages.Config{}, err
	}
	return c.Config, err
}

// adoptPipe wraps the marker's pipe when it really is the write end of a
// pipe, so even a bad handover can be reported to the launcher.
func adoptPipe(m wire.Marker, decodeErr error) stages.Line {
	if decodeErr != nil || m.FD < 3 || !handover.IsPipeWriter(m.FD) {
		return nil
	}
	return notify.NewPipe(os.NewFile(uintptr(m.FD), "blivet-ready"))
}

func (c *Context) runStep(s step, plan *stages.Plan) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Stage: s.name(), Code: ExitSoftware, Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
		if err != nil {
			err = stages.Wrap(s.name(), ExitCodeOf(err), err)
			var e *Error
			if errors.As(err, &e) && e.Stage == "" {
				err = &Error{Stage: s.name(), Code: e.Code, Err: e.Err, Fatal: e.Fatal}
			}
		}
		if c.observer != nil {
			kind := StageRan
			if s.hook != nil {
				kind = HookRan
			}
			c.observer(Event{Kind: kind, Name: s.name(), Stage: s.owner, Role: c.state.Role, Err: err, Duration: time.Since(start)})
		}
	}()
	switch {
	case s.hook != nil:
		return s.hook.fn(c.state)
	case plan != nil:
		return s.stage.(stages.Launcher).Launch(c.state, plan)
	}
	if s.final {
		if err := stages.RefuseBeforeDrop(c.state, s.name()); err != nil {
			return err
		}
	}
	return s.stage.Run(c.state)
}

// fail ends the pipeline with e: it runs the cleanups, and when exit is set
// in a generation with a line to the launcher, reports e there and exits
// with its code. Otherwise it returns e.
//
// A fatal error (a half-done privilege drop) ends the process in every
// mode, foreground included: it must not run on half-dropped.
func (c *Context) fail(e *Error, exit bool) error {
	if exit || e.Fatal {
		_ = c.state.RunCleanups()
	}
	switch {
	case c.state.Line != nil && (exit || e.Fatal):
		_ = c.state.Line.Fail(e)
		c.exit(e.Code)
	case e.Fatal:
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), e)
		c.exit(e.Code)
	}
	return e
}

// launcherDone ends the launcher's part with the daemon's outcome.
func (c *Context) launcherDone() (*Context, error) {
	out := c.state.Outcome
	if cfg := &c.state.Config; out.Err != nil && out.PID > 0 && cfg.Pidfile != "" {
		// The daemon failed and is gone (the launch waits for that,
		// bounded), but its pidfile may still name it: a program that
		// ended or was stopped before it was ready, or a Go generation
		// stopped at the ready timeout before it could clean up. Remove
		// it unless someone holds the lock (a child of the program that
		// inherited it may, a moment longer: awaited, bounded). A pidfile
		// that names another process (the instance a conflict lost to) is
		// left at once. This is the one place for it, whichever
		// generation wrote the file.
		_ = pidfile.RemoveEnded(cfg.Pidfile, cfg.LockPath(), out.PID, 2*time.Second)
	}
	if c.observer != nil {
		c.observer(Event{Kind: Launched, Name: "launched", Role: c.state.Role, PID: out.PID, Err: out.Err})
	}
	if c.state.Config.LauncherReturn {
		return c, out.Err
	}
	if out.Err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), out.Err)
	}
	c.exit(out.ExitCode)
	return nil, nil
}

// IsDaemon reports whether this Context belongs to the daemon (or the
// foreground process) rather than to a launcher returned by
// WithLauncherReturn.
func (c *Context) IsDaemon() bool { return c.state.Outcome == nil }

// Role returns the generation this Context belongs to.
func (c *Context) Role() Role { return c.state.Role }

// Outcome returns what the launcher learned about the daemon: its PID, the
// exit code and the reported error. It is the zero Outcome in the daemon.
func (c *Context) Outcome() Outcome {
	if c.state.Outcome == nil {
		return Outcome{}
	}
	return *c.state.Outcome
}

// State returns the pipeline state, for frameworks and tests.
func (c *Context) State() *State { return c.state }

func (c *Context) daemonOnly(op string) error {
	if !c.IsDaemon() {
		return stages.Errorf(op, ExitSoftware, "called in the launcher, not the daemon")
	}
	return nil
}

// ChownPaths hands the output files and a standalone lockfile (never the
// pidfile) to the configured user and group, still privileged. It is done
// once; DropPrivileges calls it unless WithChownPaths(false).
func (c *Context) ChownPaths() error {
	if err := c.daemonOnly("chown"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return privdrop.Chown(c.state)
}

// DropPrivileges runs the privdrop stage and its hooks (and any stage
// placed between it and notify): chown, supplementary groups, setgid,
// setuid, verified irreversible. A half-done drop ends the process with 77.
func (c *Context) DropPrivileges() error {
	if err := c.daemonOnly("privdrop"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run(c.p.finalAt, false)
}

// NotifyParent tells the launcher the daemon is ready: the launcher exits
// 0. It runs the rest of the pipeline (privdrop's steps if DropPrivileges
// was not called and no drop is configured, then notify). It refuses, with
// exit code 70 and without telling the launcher anything, while a
// configured privilege drop has not run. If the launcher is gone it
// returns an error with code 71. Calling it again is a no-op.
func (c *Context) NotifyParent() error {
	if err := c.daemonOnly("notify"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pos >= len(c.p.steps) {
		return nil
	}
	name := "notify"
	if c.p.finalAt < len(c.p.steps) {
		name = c.p.steps[c.p.finalAt].owner
	}
	if err := stages.RefuseBeforeDrop(c.state, name); err != nil {
		return err
	}
	return c.run(len(c.p.steps), false)
}

// ReportError reports err and ends the process with its exit code (see
// ExitCodeOf): to the launcher in daemon mode, which prints it and exits
// with that code; to stderr in foreground mode. The pidfile is removed
// first. It does not return.
func (c *Context) ReportError(err error) {
	e := toError("app", err)
	c.mu.Lock()
	defer c.mu.Unlock() // for an exit func that unwinds (WithExitFunc)
	_ = c.state.RunCleanups()
	if c.state.Line != nil && c.state.Line.File() != nil {
		_ = c.state.Line.Fail(e)
	} else {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), e)
	}
	c.exit(e.Code)
}

// exit ends the process with code: the WithExitFunc function first (which
// may unwind instead of returning), then os.Exit.
func (c *Context) exit(code int) {
	if c.exitFunc != nil {
		c.exitFunc(code)
	}
	os.Exit(code)
}

// asError returns err's own *Error, or a new one for stage and code.
func asError(stage string, code int, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Stage: stage, Code: code, Err: err}
}

func toError(stage string, err error) *Error {
	if err == nil {
		err = errors.New("ReportError(nil)")
	}
	var e *Error
	if errors.As(err, &e) && e.Code >= 1 && e.Code <= 255 {
		if e.Stage == "" {
			return &Error{Stage: stage, Code: e.Code, Err: e.Err}
		}
		return e
	}
	return &Error{Stage: stage, Code: ExitCodeOf(err), Err: err}
}

// Close releases what the library holds: it removes the pidfile (while
// still holding the lock), then unlocks. If the launcher was never told
// the daemon is ready, it learns the daemon ended before ready (70) when
// the process ends. Close is idempotent; apps defer it.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	// The line to the launcher is left open when the daemon never said
	// ready: it closes when the process ends, and the launcher then
	// reports a daemon that ended before ready, with any panic's report
	// (Close is often deferred, and deferred calls run before a panic is
	// printed).
	return c.state.RunCleanups()
}

// Cleanup is Close, under the name init-style code expects.
func (c *Context) Cleanup() error { return c.Close() }
