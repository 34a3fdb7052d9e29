package blivet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/program"
)

// An Option configures Daemonize. Options are applied in order on top of
// the defaults, then validated once; a validation error names the option
// that fixes it and has exit code 64 (77 for privileges).
type Option interface {
	apply(*config)
	String() string
}

// config is everything the options build: the stage configuration and the
// edits to the pipeline.
type config struct {
	stages.Config
	edits    []edit
	hooks    []hookSpec
	observer func(Event)
	exitFunc func(code int)
	life     lifeConfig // listen.go, upgrade.go, reopen.go
}

func defaultConfig() *config {
	return &config{Config: stages.Config{Dir: "/", Umask: 0o022, CloseFDs: true, ChownPaths: true}}
}

// optionFunc is an Option: what it does, and how it was written, which is
// formatted only when asked for (String, a message naming the option):
// formatting every option in every launch would run fmt for nothing.
type optionFunc struct {
	fn     func(*config)
	format string
	args   []any
}

func (o optionFunc) apply(c *config) { o.fn(c) }
func (o optionFunc) String() string  { return fmt.Sprintf(o.format, o.args...) }

// option returns the Option doing fn, written as fmt.Sprintf(format,
// args...) says.
func option(fn func(*config), format string, args ...any) Option {
	return optionFunc{fn, format, args}
}

// WithChdir sets the daemon's working directory (default "/"). The path
// must be absolute and an existing directory. Repeating it overrides.
func WithChdir(dir string) Option {
	return option(func(c *config) { c.Dir = dir }, "WithChdir(%q)", dir)
}

// WithUmask sets the file mode creation mask (default 022, at most 0777).
// WithUmask(0) gives the classic daemon(7) behaviour, but then Go's
// os.Create makes world-writable files. Repeating it overrides.
func WithUmask(mode os.FileMode) Option {
	return option(func(c *config) { c.Umask = int(mode) }, "WithUmask(%#o)", uint32(mode))
}

// WithStdout sends the daemon's stdout to path (absolute), created 0644
// subject to the umask. Default: /dev/null (inherited in foreground mode).
// Repeating it overrides.
func WithStdout(path string) Option {
	return option(func(c *config) { c.Stdout = path }, "WithStdout(%q)", path)
}

// WithStderr sends the daemon's stderr to path (absolute). The same path as
// WithStdout shares one open file. Repeating it overrides.
func WithStderr(path string) Option {
	return option(func(c *config) { c.Stderr = path }, "WithStderr(%q)", path)
}

// WithAppend makes output files append instead of truncating (default false).
func WithAppend(appendTo bool) Option {
	return option(func(c *config) { c.Append = appendTo }, "WithAppend(%v)", appendTo)
}

// WithEnv sets an environment variable in the daemon. Repeated use
// accumulates; later duplicates of a key win. The key must be non-empty
// and contain no '=' or NUL. After a privilege drop USER, HOME and LOGNAME
// are set from the target user, whatever WithEnv said.
func WithEnv(key, value string) Option {
	return option(func(c *config) {
		c.Env = append(c.Env, stages.EnvVar{Key: key, Value: value})
	}, "WithEnv(%q, %q)", key, value)
}

// WithForeground runs every stage except the forks and setsid in the
// calling process: for systemd (Type=simple or notify), containers and
// debugging. Errors are returned, never exits.
func WithForeground(foreground bool) Option {
	return option(func(c *config) { c.Foreground = foreground }, "WithForeground(%v)", foreground)
}

// WithCloseFDs controls whether inherited fds beyond 0-2 are kept from the
// daemon (default true). With false, nothing is closed or marked.
func WithCloseFDs(closeFDs bool) Option {
	return option(func(c *config) { c.CloseFDs = closeFDs }, "WithCloseFDs(%v)", closeFDs)
}

// WithKeepFDs names inherited fds that survive closing, at the same
// numbers in the daemon. Repeated use accumulates.
func WithKeepFDs(fds ...int) Option {
	fds = slices.Clone(fds) // the caller's slice may change after the call
	return option(func(c *config) { c.KeepFDs = append(c.KeepFDs, fds...) }, "WithKeepFDs(%v)", fds)
}

// WithAutoNotify makes Daemonize run the privdrop and notify stages itself:
// the launcher is released when Daemonize returns in the daemon. Put
// privileged initialisation in a WithHookBefore("privdrop", ...) hook.
// Without it, Daemonize returns before privdrop and the app calls
// DropPrivileges and NotifyParent.
func WithAutoNotify() Option {
	return option(func(c *config) { c.AutoNotify = true }, "WithAutoNotify()")
}

// WithLauncherReturn makes Daemonize return in the launcher, once the
// outcome is known, instead of exiting: the returned *Context has
// IsDaemon() false and Outcome() set, and the error is the daemon's
// reported failure. For frameworks and tests.
func WithLauncherReturn() Option {
	return option(func(c *config) { c.LauncherReturn = true }, "WithLauncherReturn()")
}

// WithReadyTimeout makes the launcher give up after d: it sends SIGTERM to
// the daemon and exits 75. Zero (the default) waits for ever.
func WithReadyTimeout(d time.Duration) Option {
	return option(func(c *config) { c.ReadyTimeout = d }, "WithReadyTimeout(%v)", d)
}

// WithPidfile writes the daemon's PID to path (absolute), locked: by
// default the pidfile is also the single-instance lockfile. See package
// pidfile for what happens to it on each kind of exit.
func WithPidfile(path string) Option {
	return option(func(c *config) { c.Pidfile = path }, "WithPidfile(%q)", path)
}

// WithLockfile takes the single-instance lock on a separate file (never
// removed). The last of WithLockfile and WithoutLockfile wins.
func WithLockfile(path string) Option {
	return option(func(c *config) { c.Lockfile, c.NoLock = path, false }, "WithLockfile(%q)", path)
}

// WithoutLockfile writes the pidfile without any lock: several instances
// may run. The last of WithLockfile and WithoutLockfile wins.
func WithoutLockfile() Option {
	return option(func(c *config) { c.Lockfile, c.NoLock = "", true }, "WithoutLockfile()")
}

// WithCleanupOnSignal removes the pidfile when the daemon gets SIGTERM or
// SIGINT; the process then ends by that signal.
func WithCleanupOnSignal() Option {
	return option(func(c *config) { c.CleanupOnSignal = true }, "WithCleanupOnSignal()")
}

// WithUser drops privileges to the user (a name, or a string of digits for
// a uid), looked up when the drop runs. Requires root.
func WithUser(nameOrUID string) Option {
	return option(func(c *config) { c.User = nameOrUID }, "WithUser(%q)", nameOrUID)
}

// WithGroup drops privileges to the group (a name or a gid). Requires root.
func WithGroup(nameOrGID string) Option {
	return option(func(c *config) { c.Group = nameOrGID }, "WithGroup(%q)", nameOrGID)
}

// WithChownPaths controls whether the privilege drop first hands the output
// files and a standalone lockfile to the target user (default true). The
// pidfile is never handed over.
func WithChownPaths(chown bool) Option {
	return option(func(c *config) { c.ChownPaths = chown }, "WithChownPaths(%v)", chown)
}

// WithAmbientCaps keeps the named Linux capabilities across the privilege
// drop to WithUser: the daemon runs as that user with exactly these
// capabilities permitted, effective, inheritable and ambient (so a program
// it executes keeps them too), and no other; root still cannot be regained,
// and the drop's check verifies both on every thread. For example
// WithAmbientCaps("net_bind_service") lets a daemon running as nobody bind
// port 80 after the drop. Names are those of capabilities(7), with or
// without the "cap_" prefix, in any case. Repeated use accumulates.
//
// It is a usage error (64) when a name is unknown or is setuid or setgid,
// without WithUser, on a system other than Linux, and in a program linked
// with cgo (build it with CGO_ENABLED=0, or -tags netgo when package net
// brings cgo in): see privdrop.ParseCapabilities.
func WithAmbientCaps(names ...string) Option {
	names = slices.Clone(names) // the caller's slice may change after the call
	return option(func(c *config) {
		c.AmbientCaps = append(c.AmbientCaps, names...)
	}, "WithAmbientCaps(%q)", names)
}

// WithObserver calls fn for every stage and hook the pipeline runs, in
// every process generation: for logging, -v output and tests. Repeated
// use is additive: observers are called in registration order.
func WithObserver(fn func(Event)) Option {
	return option(func(c *config) {
		prev := c.observer
		switch {
		case fn == nil:
		case prev == nil:
			c.observer = fn
		default:
			c.observer = func(e Event) { prev(e); fn(e) }
		}
	}, "WithObserver(...)")
}

// WithExitFunc makes blivet call fn with the exit code wherever it would
// end the process (ReportError, a failure reported to the launcher, the
// launcher and intermediate exiting), for tests and frameworks. fn must
// not return to keep the process alive: it may panic or call
// runtime.Goexit to unwind (package blivettest does), or do last work and
// return, after which os.Exit(code) still runs. The last one wins.
func WithExitFunc(fn func(code int)) Option {
	return option(func(c *config) { c.exitFunc = fn }, "WithExitFunc(...)")
}

// WithProgram makes the daemon become another program instead of saying
// ready: the daemonize command is this option. The program's check stage
// ("program") runs before the first fork (66 for a missing or
// non-executable program), and its exec stage ("exec") takes the place of
// notify, after the privilege drop: the program keeps the daemon's PID
// and its lock. Daemonize then never returns in the daemon, and the
// launcher exits 0 once the program runs, or once it is ready when
// p.Ready asks for it (see program.Readiness). Where the platform allows,
// no Go runtime starts between the launcher and the program.
func WithProgram(p *program.Program) Option {
	return option(func(c *config) {
		if p == nil {
			c.edits = append(c.edits, edit{"replace", "notify", nil, "WithProgram(nil)"})
			return
		}
		c.edits = append(c.edits, edit{"before", "fork", program.NewCheck(p), "WithProgram"},
			edit{"replace", "notify", program.NewExec(p), "WithProgram"})
	}, "WithProgram(...)")
}

// edit is one change to the default pipeline.
type edit struct {
	op     string // "replace", "before", "after", "remove"
	target string
	stage  Stage
	desc   string
}

// WithStageReplaced replaces the stage called name by st (which may have
// another name).
func WithStageReplaced(name string, st Stage) Option {
	return stageEdit("replace", name, st)
}

// WithStageBefore inserts st before the stage called name.
func WithStageBefore(name string, st Stage) Option { return stageEdit("before", name, st) }

// WithStageAfter inserts st after the stage called name.
func WithStageAfter(name string, st Stage) Option { return stageEdit("after", name, st) }

// WithoutStage removes the stage called name.
func WithoutStage(name string) Option { return stageEdit("remove", name, nil) }

func stageEdit(op, name string, st Stage) Option {
	desc := fmt.Sprintf("WithStage(%s %q)", op, name)
	return option(func(c *config) { c.edits = append(c.edits, edit{op, name, st, desc}) }, "%s", desc)
}

func usageErr(format string, args ...any) error {
	return stages.Errorf("config", stages.ExitUsage, format, args...)
}

func checkPath(opt, path string) error {
	if strings.IndexByte(path, 0) >= 0 {
		return usageErr("%s: path %q contains a NUL byte", opt, path)
	}
	if !filepath.IsAbs(path) {
		return usageErr("%s: path %q must be absolute", opt, path)
	}
	return nil
}

// validate checks the configuration once, after every option.
func (c *config) validate() error {
	paths := []struct{ opt, path string }{
		{"WithChdir", c.Dir}, {"WithStdout", c.Stdout}, {"WithStderr", c.Stderr},
		{"WithPidfile", c.Pidfile}, {"WithLockfile", c.Lockfile},
	}
	for _, p := range paths {
		if p.path == "" && p.opt != "WithChdir" {
			continue
		}
		if err := checkPath(p.opt, p.path); err != nil {
			return err
		}
	}
	if dir, err := sys.IsDir(c.Dir); err != nil {
		return usageErr("WithChdir: %v", err)
	} else if !dir {
		return usageErr("WithChdir: %q is not a directory", c.Dir)
	}
	for _, out := range []struct{ opt, path string }{{"WithStdout", c.Stdout}, {"WithStderr", c.Stderr}} {
		if out.path == "" {
			continue
		}
		if dir, _ := sys.IsDir(out.path); dir {
			return usageErr("%s: %q is a directory, not an output file", out.opt, out.path)
		}
	}
	if c.Umask < 0 || c.Umask > 0o777 {
		return usageErr("WithUmask: %#o is not a mode in 0..0777", c.Umask)
	}
	for _, kv := range c.Env {
		switch {
		case kv.Key == "":
			return usageErr("WithEnv: empty variable name")
		case strings.ContainsAny(kv.Key, "=\x00"):
			return usageErr("WithEnv: variable name %q contains '=' or NUL", kv.Key)
		case strings.IndexByte(kv.Value, 0) >= 0:
			return usageErr("WithEnv: value of %s contains a NUL byte", kv.Key)
		}
	}
	for _, fd := range c.KeepFDs {
		if fd < 0 {
			return usageErr("WithKeepFDs: %d is not a file descriptor", fd)
		}
	}
	if err := validateListeners(c.Listeners); err != nil {
		return err
	}
	if c.ReadyTimeout < 0 {
		return usageErr("WithReadyTimeout: negative duration %v", c.ReadyTimeout)
	}
	if c.NoLock && c.Pidfile == "" {
		return usageErr("WithoutLockfile: there is no pidfile (use WithPidfile)")
	}
	for _, p := range []string{c.Pidfile, c.Lockfile} {
		if p == "" {
			continue
		}
		if dir, _ := sys.IsDir(p); dir {
			return usageErr("%q is a directory, not a pidfile or lockfile path", p)
		}
		for _, out := range []struct{ opt, path string }{{"WithStdout", c.Stdout}, {"WithStderr", c.Stderr}} {
			if out.path != "" && filepath.Clean(out.path) == filepath.Clean(p) {
				return usageErr("%s: %q is also the pidfile or lockfile", out.opt, out.path)
			}
		}
	}
	if c.Pidfile != "" && c.Lockfile != "" && filepath.Clean(c.Pidfile) == filepath.Clean(c.Lockfile) {
		return usageErr("WithLockfile: %q is the pidfile itself (omit WithLockfile to lock the pidfile)", c.Lockfile)
	}
	for _, id := range []struct{ opt, v string }{{"WithUser", c.User}, {"WithGroup", c.Group}} {
		if strings.IndexByte(id.v, 0) >= 0 {
			return usageErr("%s: %q contains a NUL byte", id.opt, id.v)
		}
	}
	if len(c.AmbientCaps) > 0 {
		if c.User == "" {
			return usageErr("WithAmbientCaps(%q): capabilities are kept across a drop to a user: add WithUser", c.AmbientCaps)
		}
		if _, err := privdrop.ParseCapabilities(c.AmbientCaps...); err != nil {
			var e *stages.Error
			if errors.As(err, &e) && e.Err != nil {
				err = e.Err
			}
			return usageErr("WithAmbientCaps: %v", err)
		}
	}
	if c.DropConfigured() && os.Geteuid() != 0 && !upgradeDropped() {
		var set []string
		for _, id := range []struct{ opt, v string }{{"WithUser", c.User}, {"WithGroup", c.Group}} {
			if id.v != "" {
				set = append(set, fmt.Sprintf("%s(%q)", id.opt, id.v))
			}
		}
		return stages.Errorf("config", stages.ExitNoPerm,
			"%s: dropping privileges needs root, but this process runs as uid %d (start it as root, or leave the option out)",
			strings.Join(set, " and "), os.Geteuid())
	}
	return nil
}

// site returns "file.go:42" for the caller skip frames up.
func site(skip int) string {
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}

// slot is a stage in the pipeline with the roles it plays there: a
// replacement takes the role of the stage it replaces (the split before a
// privilege drop, the rule for Final stages) as well as its own.
type slot struct {
	stage       Stage
	drop, final bool
}

func newSlot(st Stage) slot {
	_, drop := st.(stages.Dropper)
	_, final := st.(stages.Final)
	return slot{st, drop, final}
}

// applyEdits applies the stage edits to the default stages in order and
// checks the result: unique stage names.
func applyEdits(defaults []Stage, edits []edit) ([]slot, error) {
	var list []slot
	for _, st := range defaults {
		list = append(list, newSlot(st))
	}
	for _, e := range edits {
		i := slices.IndexFunc(list, func(s slot) bool { return s.stage.Name() == e.target })
		if i < 0 {
			return nil, usageErr("%s: no stage named %q in the pipeline", e.desc, e.target)
		}
		if e.op != "remove" && e.stage == nil {
			return nil, usageErr("%s: nil stage", e.desc)
		}
		switch e.op {
		case "replace":
			s := newSlot(e.stage)
			s.drop, s.final = s.drop || list[i].drop, s.final || list[i].final
			list[i] = s
		case "before":
			list = slices.Insert(list, i, newSlot(e.stage))
		case "after":
			list = slices.Insert(list, i+1, newSlot(e.stage))
		case "remove":
			list = slices.Delete(list, i, i+1)
		}
	}
	for i, s := range list {
		for _, earlier := range list[:i] {
			if earlier.stage.Name() == s.stage.Name() {
				return nil, usageErr("two stages are named %q", s.stage.Name())
			}
		}
	}
	return list, nil
}

// checkHooks reports a hook attached to no stage of list, or without a
// function.
func checkHooks(list []slot, hooks []hookSpec) error {
	for _, h := range hooks {
		if !slices.ContainsFunc(list, func(s slot) bool { return s.stage.Name() == h.stage }) {
			return usageErr("%s: no stage named %q in the pipeline", h.name(), h.stage)
		}
		if h.fn == nil {
			return usageErr("%s: nil hook", h.name())
		}
	}
	return nil
}

// Program is a program the daemon becomes (WithProgram): see package
// stages/program.
type Program = program.Program

// Readiness says how the launcher learns that a Program is ready: see
// program.Readiness.
type Readiness = program.Readiness

// NewProgram returns the Program for argv: a name with a slash is made
// absolute now, a bare name is searched in PATH when it is executed. argv
// must not be empty nor contain NUL bytes (64).
func NewProgram(argv []string) (*Program, error) { return program.New(argv) }
