package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/rawfork"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/fork"
	"github.com/blivet-go/blivet/stages/output"
	"github.com/blivet-go/blivet/systemd"
	"golang.org/x/sys/unix"
)

// reexecEnv, when set to 1, makes daemonize take the portable path (re-
// executing itself as the daemon) even where the fast path is available:
// for tests and debugging.
const reexecEnv = "BLIVET_DAEMONIZE_REEXEC"

// fastPathUsable reports whether the launch can skip the daemon's Go
// start: on Linux with close_range(2), in daemon mode, in the launcher.
// It removes reexecEnv from the environment: the program never sees it.
func fastPathUsable(c *cli) bool {
	forced := os.Getenv(reexecEnv) == "1"
	os.Unsetenv(reexecEnv)
	if c.foreground || forced || !rawfork.Supported() {
		return false
	}
	if _, handed := os.LookupEnv(handover.EnvKey); handed {
		return false
	}
	// Opening a named pipe blocks until a reader comes: that must happen
	// in the daemon, where the launcher's timeout and crash detection
	// cover it, not in the launcher.
	for _, path := range []string{c.stdout, c.stderr} {
		if st, err := os.Stat(path); path != "" && err == nil && st.Mode()&os.ModeNamedPipe != 0 {
			return false
		}
	}
	return true
}

// runFast launches the program with the same guarantees as the library
// pipeline, but with one Go process instead of two: everything that needs
// Go (validation, lookups, opening and locking the pidfile, output files,
// chown) happens here in the launcher, in the pipeline's order; setsid,
// the second fork, umask, chdir, the fd table, the privilege drop and its
// verification, the signal reset and the exec happen in raw children
// (internal/rawfork). The daemon child takes over the lock the launcher
// took (so the kernel names the program as its holder) and writes its PID
// through it; the program inherits the lock. The launcher exits 0 once the
// exec happened.
func runFast(c *cli, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "daemonize: %v\n", err)
		return blivet.ExitCodeOf(err)
	}
	cfg, err := blivet.Validate(c.options()...)
	if err != nil {
		return fail(err)
	}
	if c.verbose {
		c.describe(stderr)
	}
	if err := c.prog.check(); err != nil {
		return fail(err)
	}
	act, activated, err := systemd.TakeActivation()
	if err != nil {
		return fail(err)
	}

	// Files are created with the daemon's umask.
	syscall.Umask(cfg.Umask)

	// pidfile stage: the lock first, so a second instance touches nothing.
	var lock *pidfile.Lock
	if lp := cfg.LockPath(); lp != "" {
		if lock, err = pidfile.Acquire(lp); err != nil {
			return fail(stages.Wrap("pidfile", stages.ExitCantCreate, err))
		}
	}
	removePidfile := func() {
		// The daemon child shares the lock's open file description: if it
		// failed after taking the lock over, the lock is still held through
		// this process's descriptor. If another instance won it meanwhile,
		// the file is theirs.
		if lock != nil && cfg.Lockfile == "" && unix.Flock(int(lock.File().Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			_ = lock.Remove()
		}
	}
	abort := func(err error) int {
		removePidfile()
		return fail(err)
	}

	// output stage.
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return abort(stages.Wrap("stdio", stages.ExitOSErr, err))
	}
	defer null.Close()
	std := [3]int{int(null.Fd()), int(null.Fd()), int(null.Fd())}
	var chown []string
	opened := map[string]*os.File{}
	for i, path := range []string{cfg.Stdout, cfg.Stderr} {
		if path == "" {
			continue
		}
		f, ok := opened[path]
		if !ok {
			if f, err = output.Open(path, cfg.Append); err != nil {
				return abort(stages.Wrap("output", stages.ExitCantCreate, err))
			}
			defer f.Close()
			opened[path] = f
			chown = append(chown, path)
		}
		std[i+1] = int(f.Fd())
	}
	if cfg.Lockfile != "" {
		chown = append(chown, cfg.Lockfile)
	}

	// env and privdrop stages: resolve, hand the files over, and compute
	// the program's environment.
	prog := &rawfork.Program{Umask: cfg.Umask, Dir: cfg.Dir, UID: -1, Argv: c.prog.argv, Shell: "/bin/sh", Name: c.prog.argv[0], LockFD: -1}
	env := envList(handover.Environ(os.Environ(), nil))
	for _, kv := range cfg.Env {
		env.set(kv.Key, kv.Value)
	}
	if cfg.DropConfigured() {
		t, err := privdrop.Resolve(cfg.User, cfg.Group)
		if err != nil {
			return abort(err)
		}
		st := &stages.State{Config: cfg, ChownPaths: chown}
		if cfg.ChownPaths {
			if err := privdrop.Chown(st); err != nil {
				return abort(err)
			}
		}
		prog.Drop, prog.UID, prog.GID, prog.Groups = true, t.UID, t.GID, t.Groups
		if t.UID >= 0 {
			env.set("USER", t.Name)
			env.set("LOGNAME", t.Name)
			env.set("HOME", t.Home)
		}
	}
	keep := []int{}
	if activated {
		keep = append(keep, act.FDs()...)
		env.set("LISTEN_FDS", strconv.Itoa(act.N))
		if len(act.Names) > 0 {
			env.set("LISTEN_FDNAMES", strings.Join(act.Names, ":"))
		} else {
			env.unset("LISTEN_FDNAMES")
		}
		prog.ListenPID = true
	}
	prog.Env = env
	prog.Vfork = cfg.ReadyTimeout <= 0
	prog.Candidates = c.prog.candidates(env)
	c.prog.describeFailures(prog, env)
	if lock != nil {
		fd := int(lock.File().Fd())
		keep = append(keep, fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return abort(stages.Wrap("pidfile", stages.ExitCantCreate, os.NewSyscallError("fstat", err)))
		}
		prog.LockFD, prog.LockPath = fd, lock.Path()
		prog.LockDev, prog.LockIno = uint64(st.Dev), uint64(st.Ino)
		prog.Regular = st.Mode&unix.S_IFMT == unix.S_IFREG
		prog.WritePID = cfg.Lockfile == ""
	}

	r, w, err := os.Pipe()
	if err != nil {
		return abort(stages.Wrap("fork", stages.ExitOSErr, err))
	}
	defer r.Close()
	files, at := fork.Layout(std, keep, int(w.Fd()))
	pid, err := rawfork.DoubleForkExec(prog, files, int(w.Fd()), at)
	w.Close()
	for _, f := range opened {
		f.Close()
	}
	if err != nil {
		return abort(stages.Wrap("fork", stages.ExitOSErr, err))
	}
	out := notify.Await(r, cfg.ReadyTimeout, pid)
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	if out.Err != nil {
		var se *stages.Error
		if errors.As(out.Err, &se) && se.Stage == "pidfile" && se.Code == stages.ExitUnavailable && lock != nil {
			// Another instance won the lock while the daemon child took it
			// over: name it, as a conflict found here would be.
			st, _ := pidfile.Probe(lock.Path())
			out.Err = &stages.Error{Stage: "pidfile", Code: stages.ExitUnavailable, Err: &pidfile.ConflictError{Path: lock.Path(), PID: st.PID}}
		}
		return abort(out.Err)
	}
	// With a separate lockfile (or none), the pidfile is written here; the
	// program runs with the daemon's PID.
	if err := writePidfile(cfg, out.PID); err != nil {
		_ = syscall.Kill(out.PID, syscall.SIGKILL)
		return abort(err)
	}
	if c.verbose {
		fmt.Fprintf(stderr, "daemonize: %s running as PID %d\n", c.prog.argv[0], out.PID)
	}
	// The lock stays held by the program's copy of the descriptor; this
	// process ends without unlocking it.
	return 0
}

// writePidfile writes pid to a pidfile that is not the lock (the daemon
// child wrote the one that is).
func writePidfile(cfg stages.Config, pid int) error {
	if cfg.Pidfile == "" || cfg.LockPath() == cfg.Pidfile {
		return nil
	}
	_, err := pidfile.Write(cfg.Pidfile, pid)
	return err
}

// describeFailures words the errors the daemon child reports when the
// exec fails, as the portable path words them.
func (p program) describeFailures(pr *rawfork.Program, env envList) {
	if p.path != "" {
		// The file existed a moment ago: ENOENT now means its interpreter.
		pr.NotFound, pr.Denied, pr.ExecFailed = p.path+": its #! interpreter", p.path, p.path
		return
	}
	name := p.argv[0]
	pr.NotFound = fmt.Sprintf("%s not found in PATH %q", name, env.searchPath())
	pr.Denied, pr.ExecFailed = name+" (in PATH)", name
}

// candidates lists the paths execvp(3) would try for the program, with the
// program's final environment.
func (p program) candidates(env envList) []string {
	if p.path != "" {
		return []string{p.path}
	}
	var out []string
	for _, dir := range filepath.SplitList(env.searchPath()) {
		if dir == "" {
			dir = "."
		}
		out = append(out, filepath.Join(dir, p.argv[0]))
	}
	return out
}

// envList is an environment in order, with set replacing in place.
type envList []string

func (e *envList) set(key, value string) {
	for i, kv := range *e {
		if strings.HasPrefix(kv, key+"=") {
			(*e)[i] = key + "=" + value
			return
		}
	}
	*e = append(*e, key+"="+value)
}

func (e *envList) unset(key string) {
	*e = slices.DeleteFunc(*e, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

func (e envList) get(key string) (string, bool) {
	for _, kv := range e {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// searchPath is the program search path: PATH, or defaultPath when unset
// (glibc's execvp(3)).
func (e envList) searchPath() string {
	if v, ok := e.get("PATH"); ok {
		return v
	}
	return defaultPath
}
