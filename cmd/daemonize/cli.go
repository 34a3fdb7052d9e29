package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/internal/sys"
	"golang.org/x/sys/unix"
)

// usageLine is the short usage printed with every usage error.
const usageLine = "usage: daemonize [options] [--] program [args...]\n" +
	"       daemonize --status | --stop | --signal SIG  -p PIDFILE | -l LOCKFILE"

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
	timeoutSet        bool // --timeout was given (0 included)
	help, version     bool

	// Readiness: at most one of them. Parsed and validated here; the
	// launch pipeline acts on them (options does not).
	notify     bool          // --notify: wait for READY=1 on a socket made for this launch
	readyFD    int           // --ready-fd N: wait for a newline on fd N (0: unset)
	readyAfter time.Duration // --ready-after D: ready once still running after D (0: unset)

	caps []string // --cap NAME: capabilities kept in the ambient set after -u

	// Control actions (control.go): no program is started.
	status, stop bool
	signal       syscall.Signal // --signal SIG; 0: unset
	signalName   string         // as given, for messages

	prog *blivet.Program
}

// flagValues holds the flags whose text is checked after parsing.
type flagValues struct {
	umask   string
	signal  string
	readyFD int
}

// newFlagSet declares every option into c and v. Keep it in step with
// the man page (docs/daemonize.1) and helpText.
func newFlagSet(c *cli, v *flagValues) *flagSet {
	c.dir = "/"
	v.umask = "022"
	return &flagSet{options: []option{
		{long: "pidfile", short: 'p', str: &c.pidfile},
		{long: "lock", short: 'l', str: &c.lockfile},
		{long: "no-lock", boolean: &c.noLock},
		{long: "chdir", short: 'c', str: &c.dir},
		{long: "umask", short: 'm', str: &v.umask},
		{long: "stdout", short: 'o', str: &c.stdout},
		{long: "stderr", short: 'e', str: &c.stderr},
		{long: "append", short: 'a', boolean: &c.appendOut},
		{long: "env", short: 'E', list: &c.env}, // values kept whole: commas are not separators
		{long: "user", short: 'u', str: &c.user},
		{long: "group", short: 'g', str: &c.group},
		{long: "cap", list: &c.caps, split: true}, // repeatable, or comma-separated
		{long: "foreground", short: 'f', boolean: &c.foreground},
		{long: "verbose", short: 'v', boolean: &c.verbose},
		{long: "timeout", duration: &c.timeout},
		{long: "notify", boolean: &c.notify},
		{long: "ready-fd", decimal: &v.readyFD},
		{long: "ready-after", duration: &c.readyAfter},
		{long: "status", boolean: &c.status},
		{long: "stop", boolean: &c.stop},
		{long: "signal", str: &v.signal},
		{long: "help", short: 'h', boolean: &c.help},
		{long: "version", boolean: &c.version},
	}}
}

// parseArgs parses the command line (without argv[0]). Every error it
// returns is a *usageError. With --help or --version it returns early with
// c.help or c.version set and no program; with --status, --stop or
// --signal it returns a control request (see control.go) and no program.
func parseArgs(args []string) (*cli, error) {
	c := &cli{umask: -1}
	var v flagValues
	fs := newFlagSet(c, &v)
	if err := fs.parse(args); err != nil {
		return nil, err
	}
	if c.help || c.version {
		return c, nil
	}
	rest := fs.Args()
	c.timeoutSet = fs.changed("timeout")
	if fs.changed("umask") {
		m, err := strconv.ParseUint(v.umask, 8, 32)
		if err != nil || m > 0o777 {
			return nil, usagef("-m/--umask: %q is not an octal mode in 0..0777", v.umask)
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
	if c.pidfile != "" && c.pidfile == c.lockfile {
		// "-p FILE -l FILE" (Debian's idiom): the pidfile locks itself,
		// which is what -p alone does.
		c.lockfile = ""
	}
	if fs.changed("signal") {
		sig, err := parseSignal(v.signal)
		if err != nil {
			return nil, err
		}
		c.signal, c.signalName = sig, v.signal
	}
	if c.status || c.stop || c.signal != 0 {
		if err := c.checkControl(fs, rest); err != nil {
			return nil, err
		}
		return c, nil
	}
	if len(rest) == 0 {
		return nil, usagef("no program given")
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
		if dir, _ := sys.IsDir(out.path); dir {
			return nil, usagef("%s: %s is a directory, not an output file", what, out.path)
		}
		for _, f := range []struct{ flag, path string }{{"the pidfile", c.pidfile}, {"the lockfile", c.lockfile}} {
			if f.path != "" && f.path == out.path {
				return nil, usagef("%s (%s) is also %s", what, out.path, f.flag)
			}
		}
	}
	if dir, err := sys.IsDir(c.dir); err != nil {
		return nil, usagef("-c/--chdir: %v", err)
	} else if !dir {
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
	if err := c.checkReadiness(fs, v.readyFD); err != nil {
		return nil, err
	}
	if fs.changed("cap") {
		if err := c.checkCaps(); err != nil {
			return nil, err
		}
	}
	prog, err := newProgram(rest)
	if err != nil {
		return nil, err
	}
	c.prog = prog
	return c, nil
}

// checkReadiness validates --notify, --ready-fd and --ready-after: at most
// one, not with -f (nobody waits: the program replaces daemonize), a
// --ready-fd of 3 or more that no kept descriptor uses, a positive
// --ready-after shorter than --timeout.
func (c *cli) checkReadiness(fs *flagSet, fd int) error {
	var given []string
	if c.notify {
		given = append(given, "--notify")
	}
	for _, name := range []string{"ready-fd", "ready-after"} {
		if fs.changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) == 0 {
		return nil
	}
	if len(given) > 1 {
		return usagef("%s are mutually exclusive: choose one way to tell readiness", strings.Join(given, " and "))
	}
	if c.foreground {
		return usagef("%s does not apply to -f/--foreground: the program replaces daemonize, so nothing waits for it", given[0])
	}
	if fs.changed("ready-fd") {
		switch {
		case fd < 3:
			return usagef("--ready-fd: %d is not 3 or more (0, 1 and 2 are the program's stdin, stdout and stderr)", fd)
		case fd >= maxFD():
			return usagef("--ready-fd: %d is not below the open-file limit (%d)", fd, maxFD())
		}
		if first, n := activationFDs(); n > 0 && fd >= first && fd < first+n {
			return usagef("--ready-fd: %d is a socket-activation descriptor kept for the program (LISTEN_FDS: %d..%d)", fd, first, first+n-1)
		}
		c.readyFD = fd
	}
	if fs.changed("ready-after") {
		switch {
		case c.readyAfter <= 0:
			return usagef("--ready-after: %v is not a positive duration", c.readyAfter)
		case c.timeout > 0 && c.readyAfter >= c.timeout:
			return usagef("--ready-after %v is not shorter than --timeout %v: the launch could never succeed", c.readyAfter, c.timeout)
		}
	}
	return nil
}

// checkCaps validates the --cap names and builds their library option.
func (c *cli) checkCaps() error {
	for _, name := range c.caps {
		if name == "" || strings.IndexByte(name, 0) >= 0 || strings.ContainsAny(name, " \t") {
			return usagef("--cap: %q is not a capability name (such as net_bind_service)", name)
		}
	}
	if len(c.caps) == 0 {
		return usagef("--cap: no capability named")
	}
	return nil
}

// activationFDs returns the socket-activation descriptors daemonize keeps
// for the program (first fd and count), from LISTEN_PID and LISTEN_FDS as
// sd_listen_fds(3) reads them; 0, 0 when there are none.
func activationFDs() (first, n int) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return 0, 0
	}
	n, err = strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return 0, 0
	}
	return 3, n
}

// maxFD returns the soft open-file limit: descriptors must be below it.
func maxFD() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
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
	if len(c.caps) > 0 {
		// Kept in the ambient set across the drop to -u; the library
		// validates the names.
		opts = append(opts, blivet.WithAmbientCaps(c.caps...))
	}
	c.prog.Ready = blivet.Readiness{Notify: c.notify, FD: c.readyFD, After: c.readyAfter}
	if c.verbose {
		c.prog.Ready.Status = os.Stderr
	}
	opts = append(opts, blivet.WithProgram(c.prog))
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
	if c.prog.Path != "" {
		p("program: %s (argv %q)", c.prog.Path, c.prog.Argv)
	} else {
		p("program: %s, searched in PATH at exec time (argv %q)", c.prog.Argv[0], c.prog.Argv)
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
	if len(c.caps) > 0 {
		p("ambient capabilities: %s", strings.Join(c.caps, ", "))
	}
	switch {
	case c.notify:
		p("ready: on READY=1 (--notify)")
	case c.readyFD > 0:
		p("ready: on a newline written to fd %d (--ready-fd)", c.readyFD)
	case c.readyAfter > 0:
		p("ready: still running after %v (--ready-after)", c.readyAfter)
	}
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

const helpText = `Run a program as a Unix daemon, or check or stop one by its lock.

Usage: daemonize [options] [--] program [args...]
       daemonize --status -p PIDFILE | -l LOCKFILE
       daemonize --stop [--signal SIG] [--timeout DUR] -p PIDFILE | -l LOCKFILE
       daemonize --signal SIG -p PIDFILE | -l LOCKFILE

Options stop at the first non-option or "--"; everything after belongs to
the program. Short options combine (-av, -p/run/x.pid).

  -p, --pidfile PATH   write the daemon's PID to PATH, locked (one instance)
  -l, --lock PATH      take the single-instance lock on PATH instead
                       (the pidfile's own path: the same as -p alone)
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
      --cap NAME       keep capability NAME (net_bind_service, ...) in the
                       ambient set after the drop to -u (repeatable, or
                       comma-separated)
  -f, --foreground     no fork, no setsid: exec the program in place
  -v, --verbose        print the configuration and progress on stderr
      --timeout DUR    exit 75 if the program is not exec'd within DUR (e.g.
                       10s) or, with a readiness option, not ready within
                       DUR of its exec (it gets SIGTERM); with --stop, send
                       SIGKILL after DUR (default 10s; 0 never)
      --notify         ready when the program sends READY=1 (sd_notify) on
                       a socket made for this launch (NOTIFY_SOCKET)
      --ready-fd N     ready when the program writes a newline to fd N (3+)
      --ready-after DUR  ready when the program still runs after DUR
                       (one of the three; not with -f; the program
                       ending or failing first gives 70)
      --status         exit 0 and print the PID if a process holds the lock;
                       1 stale pidfile, 3 not running, 4 cannot tell
      --stop           SIGTERM to the lock holder, wait until the lock is
                       released; exit 0 once nothing holds it
      --signal SIG     send SIG (HUP, SIGUSR1, 10) to the lock holder; with
                       --stop, instead of SIGTERM
  -h, --help           print this help and exit
      --version        print the version and exit

Paths given to -p, -l, -o, -e and -c must be absolute. daemonize exits 0
once the program has been exec'd (with a readiness option, once it is
ready), else with a sysexits code: 64 usage,
66 program missing or not executable, 67 unknown user or group, 69 lock
held by another instance, 70 internal error, 71 OS error, 73 cannot create
a file, 75 timeout, 77 permission. --status, --stop and --signal act on
the process the kernel names as holding the lock, never on a number read
alone from the pidfile. See daemonize(1).
`
