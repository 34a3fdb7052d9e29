package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blivet-go/blivet"
)

// usageLine is the short usage printed with every usage error.
const usageLine = "usage: daemonize [options] [--] program [args...]"

// usageError is a command-line mistake: the launcher prints it with the
// usage line and exits 64 before anything runs.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// ExitCode returns 64 (EX_USAGE).
func (e *usageError) ExitCode() int { return blivet.ExitUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// cli is the parsed command line.
type cli struct {
	pidfile, lockfile string
	noLock            bool
	dir               string
	umask             int // -1: the library's default (022)
	stdout, stderr    string
	stderrDerived     bool // stderr was derived from -o
	appendOut         bool
	env               []string
	user, group       string
	foreground        bool
	verbose           bool
	timeout           time.Duration
	help, version     bool

	prog program
}

// newOptionSet declares every option into c. Keep it in step with the man
// page (docs/daemonize.1) and helpText.
func newOptionSet(c *cli, umask *string) *optionSet {
	*umask = "022"
	c.dir = "/"
	fs := &optionSet{}
	fs.stringVar(&c.pidfile, "pidfile", 'p')
	fs.stringVar(&c.dir, "chdir", 'c')
	fs.stringVar(umask, "umask", 'm')
	fs.stringVar(&c.stdout, "stdout", 'o')
	fs.stringVar(&c.stderr, "stderr", 'e')
	fs.boolVar(&c.appendOut, "append", 'a')
	fs.stringVar(&c.lockfile, "lock", 'l')
	fs.boolVar(&c.noLock, "no-lock", 0)
	fs.stringsVar(&c.env, "env", 'E')
	fs.stringVar(&c.user, "user", 'u')
	fs.stringVar(&c.group, "group", 'g')
	fs.boolVar(&c.foreground, "foreground", 'f')
	fs.boolVar(&c.verbose, "verbose", 'v')
	fs.durationVar(&c.timeout, "timeout", 0)
	fs.boolVar(&c.help, "help", 'h')
	fs.boolVar(&c.version, "version", 0)
	return fs
}

// parseArgs parses the command line (without argv[0]). Every error it
// returns is a *usageError. With --help or --version it returns early with
// c.help or c.version set and no program.
func parseArgs(args []string) (*cli, error) {
	c := &cli{umask: -1}
	var umask string
	fs := newOptionSet(c, &umask)
	rest, err := fs.parse(args)
	if err != nil {
		return nil, err
	}
	if c.help || c.version {
		return c, nil
	}
	if len(rest) == 0 {
		return nil, usagef("no program given")
	}
	if fs.changed("umask") {
		m, err := strconv.ParseUint(umask, 8, 32)
		if err != nil || m > 0o777 {
			return nil, usagef("-m/--umask: %q is not an octal mode in 0..0777", umask)
		}
		c.umask = int(m)
	}
	for _, p := range []struct {
		name, flag string
		path       *string
	}{
		{"pidfile", "-p/--pidfile", &c.pidfile}, {"lock", "-l/--lock", &c.lockfile},
		{"stdout", "-o/--stdout", &c.stdout}, {"stderr", "-e/--stderr", &c.stderr},
		{"chdir", "-c/--chdir", &c.dir},
	} {
		if !fs.changed(p.name) {
			continue
		}
		if err := checkAbs(p.flag, *p.path); err != nil {
			return nil, err
		}
		*p.path = filepath.Clean(*p.path)
	}
	if c.noLock && c.lockfile != "" {
		return nil, usagef("--no-lock conflicts with -l/--lock")
	}
	if c.noLock && c.pidfile == "" {
		return nil, usagef("--no-lock needs a pidfile (-p)")
	}
	if c.stdout != "" && c.stderr == "" {
		c.stderr, c.stderrDerived = deriveStderr(c.stdout), true
	}
	for _, out := range []struct{ flag, path string }{{"-o/--stdout", c.stdout}, {"-e/--stderr", c.stderr}} {
		if out.path == "" {
			continue
		}
		what := out.flag
		if out.flag == "-e/--stderr" && c.stderrDerived {
			what = "the stderr path derived from -o"
		}
		if st, err := os.Stat(out.path); err == nil && st.IsDir() {
			return nil, usagef("%s: %s is a directory, not an output file", what, out.path)
		}
		for _, f := range []struct{ flag, path string }{{"the pidfile", c.pidfile}, {"the lockfile", c.lockfile}} {
			if f.path != "" && f.path == out.path {
				return nil, usagef("%s (%s) is also %s", what, out.path, f.flag)
			}
		}
	}
	if c.pidfile != "" && c.pidfile == c.lockfile {
		return nil, usagef("-l/--lock %s is the pidfile itself (omit -l: -p locks the pidfile)", c.lockfile)
	}
	if st, err := os.Stat(c.dir); err != nil {
		return nil, usagef("-c/--chdir: %v", err)
	} else if !st.IsDir() {
		return nil, usagef("-c/--chdir: %s is not a directory", c.dir)
	}
	for _, kv := range c.env {
		name, _, _ := strings.Cut(kv, "=")
		if name == "" || strings.IndexByte(kv, 0) >= 0 {
			return nil, usagef("-E/--env: %q is not NAME=VALUE or NAME", kv)
		}
	}
	for _, id := range []struct{ name, flag, v string }{{"user", "-u/--user", c.user}, {"group", "-g/--group", c.group}} {
		if fs.changed(id.name) && (id.v == "" || strings.IndexByte(id.v, 0) >= 0) {
			return nil, usagef("%s: %q is not a name or id", id.flag, id.v)
		}
	}
	if c.timeout < 0 {
		return nil, usagef("--timeout: negative duration %v", c.timeout)
	}
	prog, err := newProgram(rest)
	if err != nil {
		return nil, err
	}
	c.prog = prog
	return c, nil
}

func checkAbs(flag, path string) error {
	switch {
	case path == "":
		return usagef("%s: empty path", flag)
	case strings.IndexByte(path, 0) >= 0:
		return usagef("%s: path contains a NUL byte", flag)
	case !filepath.IsAbs(path):
		return usagef("%s: %q is not an absolute path", flag, path)
	}
	return nil
}

// deriveStderr returns the stderr path for -o path without -e: ".stdout"
// becomes ".stderr", ".out" becomes ".err", anything else is shared.
func deriveStderr(stdout string) string {
	if base, ok := strings.CutSuffix(stdout, ".stdout"); ok {
		return base + ".stderr"
	}
	if base, ok := strings.CutSuffix(stdout, ".out"); ok {
		return base + ".err"
	}
	return stdout
}

// options translates the command line into blivet options. extra come
// last (the program stages, the observer).
func (c *cli) options(extra ...blivet.Option) []blivet.Option {
	opts := []blivet.Option{
		blivet.WithLauncherReturn(),
		blivet.WithAutoNotify(),
		blivet.WithChdir(c.dir),
		blivet.WithForeground(c.foreground),
	}
	if c.umask >= 0 {
		opts = append(opts, blivet.WithUmask(os.FileMode(c.umask)))
	}
	if c.stdout != "" {
		opts = append(opts, blivet.WithStdout(c.stdout))
	}
	if c.stderr != "" {
		opts = append(opts, blivet.WithStderr(c.stderr))
	}
	if c.appendOut {
		opts = append(opts, blivet.WithAppend(true))
	}
	if c.pidfile != "" {
		opts = append(opts, blivet.WithPidfile(c.pidfile))
	}
	if c.lockfile != "" {
		opts = append(opts, blivet.WithLockfile(c.lockfile))
	}
	if c.noLock {
		opts = append(opts, blivet.WithoutLockfile())
	}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		opts = append(opts, blivet.WithEnv(k, v))
	}
	if c.user != "" {
		opts = append(opts, blivet.WithUser(c.user))
	}
	if c.group != "" {
		opts = append(opts, blivet.WithGroup(c.group))
	}
	if c.timeout > 0 {
		opts = append(opts, blivet.WithReadyTimeout(c.timeout))
	}
	return append(opts, extra...)
}

// describe writes the resolved configuration, for -v.
func (c *cli) describe(w io.Writer) {
	or := func(s, dflt string) string {
		if s == "" {
			return dflt
		}
		return s
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, "daemonize: "+format+"\n", args...) }
	if c.prog.path != "" {
		p("program: %s (argv %q)", c.prog.path, c.prog.argv)
	} else {
		p("program: %s, searched in PATH at exec time (argv %q)", c.prog.argv[0], c.prog.argv)
	}
	mode := "daemon (double fork, new session)"
	if c.foreground {
		mode = "foreground (no fork, exec in place)"
	}
	p("mode: %s", mode)
	lock := "none"
	switch {
	case c.lockfile != "":
		lock = c.lockfile
	case c.pidfile != "" && !c.noLock:
		lock = c.pidfile + " (the pidfile)"
	}
	p("pidfile: %s", or(c.pidfile, "none"))
	p("lockfile: %s", lock)
	null := "/dev/null"
	if c.foreground {
		null = "inherited"
	}
	stderr := or(c.stderr, null)
	if c.stderrDerived {
		stderr += " (from -o)"
	}
	how := "truncate"
	if c.appendOut {
		how = "append"
	}
	p("stdout: %s, stderr: %s (%s)", or(c.stdout, null), stderr, how)
	umask := "022"
	if c.umask >= 0 {
		umask = fmt.Sprintf("%03o", c.umask)
	}
	p("chdir: %s, umask: %s", c.dir, umask)
	p("user: %s, group: %s", or(c.user, "unchanged"), or(c.group, "unchanged"))
	for _, kv := range c.env {
		if !strings.Contains(kv, "=") {
			kv += "="
		}
		p("env: %s", kv)
	}
}

// printUsageError prints err with the short usage line.
func printUsageError(w io.Writer, err error) {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "daemonize: %s\n%s\nTry 'daemonize --help' for more information.\n", ue.msg, usageLine)
		return
	}
	fmt.Fprintf(w, "daemonize: %v\n", err)
}

const helpText = `Run a program as a Unix daemon.

Usage: daemonize [options] [--] program [args...]

Options stop at the first non-option or "--"; everything after belongs to
the program. Short options combine (-av, -p/run/x.pid).

  -p, --pidfile PATH   write the daemon's PID to PATH, locked (one instance)
  -l, --lock PATH      take the single-instance lock on PATH instead
      --no-lock        write the pidfile without any lock (needs -p)
  -c, --chdir PATH     working directory (default /)
  -m, --umask MODE     octal umask, at most 0777 (default 022)
  -o, --stdout PATH    stdout to PATH; also stderr unless -e (X.stdout gives
                       X.stderr, X.out gives X.err, any other path is shared)
  -e, --stderr PATH    stderr to PATH
  -a, --append         append to output files instead of truncating
  -E, --env NAME=VALUE set a variable (repeatable; a bare NAME sets "")
  -u, --user USER      run as USER, name or uid (root only)
  -g, --group GROUP    run as GROUP, name or gid (root only)
  -f, --foreground     no fork, no setsid: exec the program in place
  -v, --verbose        print the configuration and progress on stderr
      --timeout DUR    exit 75 if the program is not exec'd within DUR (e.g. 10s)
  -h, --help           print this help and exit
      --version        print the version and exit

Paths given to -p, -l, -o, -e and -c must be absolute. daemonize exits 0
once the program has been exec'd, else with a sysexits code: 64 usage,
66 program missing or not executable, 67 unknown user or group, 69 lock
held by another instance, 70 internal error, 71 OS error, 73 cannot create
a file, 75 timeout, 77 permission. See daemonize(1).
`
