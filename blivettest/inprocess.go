package blivettest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

// Recorder runs a program's blivet pipeline inside the test process: the
// program's own options, hooks and custom stages run for real, while every
// default stage that changes process-wide state (signals, fork, setsid,
// fork2, umask, chdir, stdio, pidfile, env, output, closefds, privdrop,
// notify) is replaced by a recording fake. The test process's cwd, umask,
// environment, signals and fds stay untouched, so tests using a Recorder
// may call t.Parallel.
//
// The fakes play their part faithfully where it is only pipeline state:
// the fork fakes move the State through the launcher, intermediate and
// daemon roles and give it a recording line to the launcher, so hooks see
// the Role and Detached() they would see for real, and a failure after the
// fork is reported to the (recorded) launcher with its exit code; the
// privdrop fake marks the drop done, so NotifyParent's refusal before the
// drop behaves as in a daemon.
//
// Where blivet would end the process (ReportError, a failure in a detached
// generation, a fatal drop error), the Recorder turns the exit into an
// *ExitError returned by Daemonize or Call.
//
// A Recorder is for one run of the pipeline. Its methods are safe for
// concurrent use.
type Recorder struct {
	t    TB
	real map[string]bool

	mu      sync.Mutex
	steps   []Step
	actions []string
	env     []string
	report  Report
	drop    *Drop
	chown   []string // what the drop would hand to the target user
	exit    *ExitError

	// The fork fakes switch the State to the next generation once their
	// own step is over (and observed), as a re-execution would.
	nextState *stages.State
	nextRole  stages.Role
}

// RecorderOption configures NewRecorder.
type RecorderOption func(*Recorder)

// Real keeps the named default stages in their real form instead of a
// fake. The test then changes the process state those stages change
// (umask, cwd, environment, fds 0-2, output files, fd flags, a real
// pidfile lock), so it must not run in parallel with others that depend
// on it. fork, setsid, fork2 and privdrop cannot run in the test process:
// use the real-process mode (Register, Launch) for them.
func Real(names ...string) RecorderOption {
	return func(r *Recorder) {
		for _, n := range names {
			r.real[n] = true
		}
	}
}

// notInProcess are the stages that would detach or irreversibly change the
// test process.
var notInProcess = []string{"fork", "setsid", "fork2", "privdrop"}

// TB is the part of testing.TB a Recorder uses; *testing.T and
// *testing.B satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// NewRecorder returns a Recorder for one in-process run of a pipeline.
// Misuse (an unknown stage given to Real, a stage that cannot run in the
// test process) fails the test through t. t may be nil where there is no
// test, as in Example functions: misuse then panics.
func NewRecorder(t TB, opts ...RecorderOption) *Recorder {
	if t == nil {
		t = panicTB{}
	}
	t.Helper()
	r := &Recorder{t: t, real: map[string]bool{}, report: Report{ExitCode: -1}}
	for _, o := range opts {
		o(r)
	}
	known := map[string]bool{}
	for _, st := range blivet.DefaultStages() {
		known[st.Name()] = true
	}
	for n := range r.real {
		switch {
		case !known[n]:
			t.Fatalf("blivettest.Real(%q): no default stage has that name", n)
		case slices.Contains(notInProcess, n):
			t.Fatalf("blivettest.Real(%q): %s cannot run inside the test process; use Register and Launch (real-process mode)", n, n)
		}
	}
	return r
}

type panicTB struct{}

func (panicTB) Helper() {}
func (panicTB) Fatalf(format string, args ...any) {
	panic("blivettest: " + fmt.Sprintf(format, args...))
}

// Options returns the options that put the Recorder in charge: the fakes,
// the observer that records each step, and the exit function. Pass them
// FIRST, before the program's own options, so a stage the program
// replaces under a default name keeps the program's version:
//
//	blivet.Daemonize(append(rec.Options(), app.Options()...)...)
//
// Daemonize does this for you; Options is for code under test that calls
// blivet.Daemonize itself and accepts extra options. Run such code with
// Call, so an exit becomes an error.
func (r *Recorder) Options() []blivet.Option {
	var opts []blivet.Option
	for _, st := range blivet.DefaultStages() {
		if !r.real[st.Name()] {
			opts = append(opts, blivet.WithStageReplaced(st.Name(), fakeFor(st, r)))
		}
	}
	return append(opts, blivet.WithObserver(r.observe), blivet.WithExitFunc(r.exitFunc))
}

// Daemonize runs blivet.Daemonize with the Recorder's options followed by
// opts, in the test process. It returns what blivet.Daemonize returns in
// the daemon (or in the foreground process): the *Context after the split
// point (or after notify with WithAutoNotify), or the error Daemonize
// returns. When the pipeline would have ended the process, it returns a
// nil Context and an *ExitError.
func (r *Recorder) Daemonize(opts ...blivet.Option) (*blivet.Context, error) {
	r.t.Helper()
	var (
		ctx *blivet.Context
		err error
	)
	if exit := r.Call(func() { ctx, err = blivet.Daemonize(append(r.Options(), opts...)...) }); exit != nil {
		return nil, exit
	}
	return ctx, err
}

// Call runs fn and returns nil, or an *ExitError if fn ended the
// (simulated) process through blivet: ctx.ReportError, a failure reported
// to the launcher, a fatal error in DropPrivileges. Wrap code under test
// that may call ReportError:
//
//	err := rec.Call(func() { ctx.ReportError(errors.New("no config")) })
//	// blivet.ExitCodeOf(err) == 70
//
// A panic that is not blivet's exit is passed on.
func (r *Recorder) Call(fn func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			x, ok := v.(exitPanic)
			if !ok || x.r != r {
				panic(v)
			}
			r.mu.Lock()
			err = r.exit
			r.mu.Unlock()
		}
	}()
	fn()
	return nil
}

// exitPanic unwinds from blivet's exit function to Call.
type exitPanic struct {
	r    *Recorder
	code int
}

func (x exitPanic) String() string {
	return fmt.Sprintf("blivettest: the program ended the process with exit code %d (run it through Recorder.Call or Recorder.Daemonize)", x.code)
}

func (r *Recorder) exitFunc(code int) {
	r.mu.Lock()
	e := &ExitError{Code: code}
	if r.report.Err != nil {
		e.Err = r.report.Err
	}
	r.exit = e
	r.mu.Unlock()
	panic(exitPanic{r, code})
}

// ExitError is returned by Recorder.Daemonize and Recorder.Call when blivet
// would have ended the process. It unwraps to the error reported to the
// launcher, if any, so errors.Is(err, blivet.ErrLocked) and
// blivet.ExitCodeOf work on it.
type ExitError struct {
	// Code is the exit status the process would have ended with.
	Code int
	// Err is what the launcher was told (an *blivet.Error), or nil when
	// nothing was reported (foreground mode: blivet printed it to stderr).
	Err error
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("process exited with code %d: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("process exited with code %d", e.Code)
}

// Unwrap returns the reported error.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns Code.
func (e *ExitError) ExitCode() int { return e.Code }

// Exited returns the exit code the process would have ended with, and
// whether it would have ended.
func (r *Recorder) Exited() (code int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exit == nil {
		return 0, false
	}
	return r.exit.Code, true
}

// Step is one stage or hook the pipeline ran, as the observer saw it.
type Step struct {
	Kind  blivet.EventKind // blivet.StageRan or blivet.HookRan
	Name  string           // the stage's name, or the hook's description
	Stage string           // the stage the step belongs to
	Role  blivet.Role      // the generation it ran in
	Err   error            // nil on success
}

func (s Step) String() string {
	out := fmt.Sprintf("%s %s [%v]", s.Kind, s.Name, s.Role)
	if s.Err != nil {
		out += fmt.Sprintf(": exit %d: %v", blivet.ExitCodeOf(s.Err), s.Err)
	}
	return out
}

func (r *Recorder) observe(e blivet.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, Step{Kind: e.Kind, Name: e.Name, Stage: e.Stage, Role: e.Role, Err: e.Err})
	if r.nextState != nil {
		r.nextState.Role = r.nextRole
		r.nextState = nil
	}
}

// handOver makes s the next generation's once the running step is over.
func (r *Recorder) handOver(s *stages.State, role stages.Role) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextState, r.nextRole = s, role
}

// Steps returns every stage and hook that ran, in order, with its outcome.
func (r *Recorder) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// Stages returns the names of the stages that ran (failed ones included),
// in order.
func (r *Recorder) Stages() []string {
	var out []string
	for _, s := range r.Steps() {
		if s.Kind == blivet.StageRan {
			out = append(out, s.Name)
		}
	}
	return out
}

// Hooks returns the descriptions of the hooks that ran, in order, such as
// "hook before privdrop (main.go:42)".
func (r *Recorder) Hooks() []string {
	var out []string
	for _, s := range r.Steps() {
		if s.Kind == blivet.HookRan {
			out = append(out, s.Name)
		}
	}
	return out
}

// Ran reports whether the stage called name ran.
func (r *Recorder) Ran(name string) bool { return slices.Contains(r.Stages(), name) }

// Actions returns what the fakes would have done to the process, in order,
// one line each: "umask 022", "chdir /", "lock /run/d.pid", "setenv K=V",
// "stdout > /var/log/d.log (truncate)", "setuid 65534", "ready", and the
// pidfile's removal ("remove /run/d.pid") when the daemon closes or fails.
//
// With prefixes, only the actions starting with one of them are returned.
func (r *Recorder) Actions(prefixes ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, a := range r.actions {
		if len(prefixes) == 0 || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(a, p) }) {
			out = append(out, a)
		}
	}
	return out
}

// Env returns the variables the env stage would have set, "KEY=VALUE" in
// order.
func (r *Recorder) Env() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.env)
}

func (r *Recorder) act(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.actions = append(r.actions, fmt.Sprintf(format, args...))
}

// Report is what the launcher was told over the readiness line.
type Report struct {
	// PID is the daemon's PID as reported (the test process's own).
	PID int
	// Ready is true once the daemon said ready. In foreground mode, where
	// there is no launcher, it is true once the notify stage succeeded.
	Ready bool
	// Err is the failure reported, nil if none.
	Err *blivet.Error
	// ExitCode is the code the launcher would exit with: 0 once ready,
	// Err's code after a failure, -1 while nothing was reported (the
	// launcher is still waiting; if the daemon ended now, it would exit 70).
	ExitCode int
	// ExecPending is true once the daemon said the next EOF means exec (CLI).
	ExecPending bool
}

// Launcher returns what the launcher was told so far.
func (r *Recorder) Launcher() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report
}

// Drop is what the privilege drop would have done.
type Drop struct {
	// User and Group are the configured target, as given to WithUser and
	// WithGroup.
	User, Group string
	// Target is what privdrop.Resolve made of them: the uid, gid and
	// supplementary groups the process would switch to, and USER/HOME.
	Target privdrop.Target
	// Chown lists the paths that would be handed to the target user first
	// (output files, a standalone lockfile; never the pidfile). Empty with
	// WithChownPaths(false).
	Chown []string
}

// Drop returns what the privilege drop would have done, and whether it ran.
func (r *Recorder) Drop() (Drop, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drop == nil {
		return Drop{}, false
	}
	d := *r.drop
	d.Chown = slices.Clone(d.Chown)
	return d, true
}

// line records what the daemon tells the launcher. It implements
// stages.Line.
type line struct {
	r    *Recorder
	done bool
	null *os.File // stand-in for the pipe's write end
}

var _ stages.Line = (*line)(nil)

var errTold = errors.New("the launcher was already told the outcome")

func (l *line) finish() error {
	if l.done {
		return stages.Wrap("notify", stages.ExitSoftware, errTold)
	}
	l.close()
	return nil
}

// close marks the line done and closes the stand-in fd; r.mu is held.
func (l *line) close() {
	l.done = true
	if l.null != nil {
		l.null.Close()
		l.null = nil
	}
}

func (l *line) Ready() error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if err := l.finish(); err != nil {
		return err
	}
	l.r.report.Ready, l.r.report.ExitCode = true, 0
	return nil
}

func (l *line) Fail(e *stages.Error) error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if err := l.finish(); err != nil {
		return err
	}
	l.r.report.Err, l.r.report.ExitCode = e, e.Code
	return nil
}

func (l *line) ExecPending() error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.r.report.ExecPending = true
	return nil
}

func (l *line) ReportPID(pid int) error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.r.report.PID = pid
	return nil
}

// File returns a stand-in for the pipe's write end (an fd on /dev/null)
// until the line is closed: blivet only checks that the line is open.
func (l *line) File() *os.File {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.done {
		return nil
	}
	if l.null == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		l.null = f
	}
	return l.null
}

func (l *line) Close() error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.close()
	return nil
}

// fakeFor returns the fake for st, with the same role in the pipeline: a
// Dropper's fake is a Dropper, a Final stage's fake is Final.
func fakeFor(st blivet.Stage, r *Recorder) blivet.Stage {
	f := &fake{name: st.Name(), r: r}
	if _, ok := st.(stages.Dropper); ok {
		return fakeDropper{f}
	}
	if _, ok := st.(stages.Final); ok {
		return fakeFinal{f}
	}
	return f
}

type fakeDropper struct{ *fake }

func (fakeDropper) DropsPrivileges() {}

type fakeFinal struct{ *fake }

func (fakeFinal) Final() {}

// fake stands in for the default stage called name.
type fake struct {
	name string
	r    *Recorder
}

func (f *fake) Name() string { return f.name }

func (f *fake) Run(s *stages.State) error {
	r, c := f.r, &s.Config
	switch f.name {
	case "signals":
		s.ResetSignals = true
		r.act("reset signal mask and dispositions")
	case "fork":
		if c.Foreground {
			return nil
		}
		s.Line = &line{r: r}
		r.handOver(s, stages.RoleIntermediate)
		r.act("re-exec as the intermediate")
	case "setsid":
		if !c.Foreground {
			r.act("setsid")
		}
	case "fork2":
		if c.Foreground {
			return nil
		}
		r.handOver(s, stages.RoleDaemon)
		if s.Line != nil {
			_ = s.Line.ReportPID(os.Getpid())
		}
		r.act("re-exec as the daemon")
	case "umask":
		r.act("umask %#o", c.Umask)
	case "chdir":
		r.act("chdir %s", c.Dir)
	case "stdio":
		if c.Foreground {
			r.act("stdin < /dev/null")
		} else {
			r.act("stdin, stdout, stderr <> /dev/null")
		}
	case "pidfile":
		f.pidfile(s)
	case "env":
		for _, kv := range c.Env {
			r.mu.Lock()
			r.env = append(r.env, kv.Key+"="+kv.Value)
			r.mu.Unlock()
			r.act("setenv %s=%s", kv.Key, kv.Value)
		}
	case "output":
		mode := "truncate"
		if c.Append {
			mode = "append"
		}
		for _, o := range []struct{ fd, path string }{{"stdout", c.Stdout}, {"stderr", c.Stderr}} {
			if o.path != "" {
				r.act("%s > %s (%s)", o.fd, o.path, mode)
				r.addChown(o.path)
			}
		}
	case "closefds":
		if c.CloseFDs {
			r.act("close-on-exec fds from 3 except %v", slices.Concat(s.KeepFDs, s.OwnFDs))
		}
	case "privdrop":
		return f.privdrop(s)
	case "notify":
		if err := stages.RefuseBeforeDrop(s, notify.New()); err != nil {
			return err
		}
		if s.Line != nil {
			if err := s.Line.Ready(); err != nil {
				return err
			}
		} else {
			r.mu.Lock()
			r.report.Ready, r.report.ExitCode = true, 0
			r.mu.Unlock()
		}
		r.act("ready")
	default:
		r.act("%s (not simulated by blivettest)", f.name)
	}
	return nil
}

func (r *Recorder) addChown(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.chown, path) {
		r.chown = append(r.chown, path)
	}
}

func (f *fake) pidfile(s *stages.State) {
	r, c := f.r, &s.Config
	if lock := c.LockPath(); lock != "" {
		r.act("lock %s", lock)
		if c.Lockfile != "" {
			r.addChown(c.Lockfile)
		}
	}
	if c.Pidfile == "" {
		return
	}
	r.act("write %d to %s", os.Getpid(), c.Pidfile)
	if c.CleanupOnSignal {
		r.act("remove %s on SIGTERM or SIGINT", c.Pidfile)
	}
	path := c.Pidfile
	s.OnCleanup(func() error {
		r.act("remove %s", path)
		return nil
	})
}

func (f *fake) privdrop(s *stages.State) error {
	r, c := f.r, &s.Config
	if !c.DropConfigured() || s.Dropped {
		return nil
	}
	tgt, err := privdrop.Resolve(c.User, c.Group)
	if err != nil {
		return err // unknown user or group: 67, as for real
	}
	d := &Drop{User: c.User, Group: c.Group, Target: tgt}
	if c.ChownPaths && !s.Chowned {
		r.mu.Lock()
		d.Chown = slices.Clone(r.chown)
		r.mu.Unlock()
		if len(d.Chown) > 0 {
			r.act("chown %s to %s", strings.Join(d.Chown, " "), target(c))
		}
	}
	r.act("setgroups %v", tgt.Groups)
	r.act("setgid %d", tgt.GID)
	if tgt.UID >= 0 {
		r.act("setuid %d", tgt.UID)
		r.act("setenv USER=%s HOME=%s LOGNAME=%s", tgt.Name, tgt.Home, tgt.Name)
	}
	s.Chowned, s.Dropped = s.Chowned || c.ChownPaths, true
	r.mu.Lock()
	r.drop = d
	r.mu.Unlock()
	return nil
}

func target(c *stages.Config) string {
	switch {
	case c.User != "" && c.Group != "":
		return "user " + c.User + " group " + c.Group
	case c.User != "":
		return "user " + c.User
	default:
		return "group " + c.Group
	}
}
