// Command daemonize runs a program as a Unix daemon, with the guarantees
// of the blivet library: a double fork so the daemon is not a session
// leader, a clean signal state, only fds 0-2 (plus the lock) inherited, a
// locked pidfile naming the program's own PID, and a launcher that exits 0
// only once the program has actually been exec'd.
//
//	daemonize [options] [--] program [args...]
//	daemonize --status | --stop | --signal SIG  -p PIDFILE | -l LOCKFILE
//
// The second form checks, stops or signals a running program by the
// process that holds its lock (control.go), never by the pidfile's number
// alone.
//
// It is a drop-in for Debian's daemonize(1) for its short options, with
// long options, sysexits exit codes and the differences listed in the man
// page (docs/daemonize.1). Install it with
//
//	go install github.com/blivet-go/blivet/cmd/daemonize@latest
//
// How it works: daemonize is itself a blivet program. It re-executes
// itself through blivet.Daemonize (the launcher, then the daemon), runs
// every stage (umask, chdir, stdio, pidfile and lock, env, output files,
// privilege drop) in the daemon, and replaces the library's final "notify"
// stage by an exec of the program: the program keeps the daemon's PID, the
// one written to the pidfile, and inherits the lock.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/blivet-go/blivet"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is main without the exit. In the daemon it does not return on
// success: the program replaces the process.
func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args)
	if err != nil {
		printUsageError(stderr, err)
		return blivet.ExitUsage
	}
	switch {
	case c.help:
		fmt.Fprint(stdout, helpText)
		return 0
	case c.version:
		fmt.Fprintf(stdout, "daemonize (blivet) %s\n", version())
		return 0
	}
	if os.Geteuid() != os.Getuid() {
		fmt.Fprintf(stderr, "daemonize: refusing to run set-user-ID (uid %d, euid %d)\n", os.Getuid(), os.Geteuid())
		return blivet.ExitNoPerm
	}
	if c.isControl() {
		return runControl(c, stdout, stderr)
	}
	var extra []blivet.Option
	if c.verbose {
		extra = append(extra,
			blivet.WithHookBefore("program", func(*blivet.State) error { c.describe(stderr); return nil }),
			blivet.WithObserver(observer(stderr, c.prog.Argv[0])))
	}
	// In the launcher, Daemonize exits: 0 once the program runs (or is
	// ready, with a readiness option), else with the outcome's code after
	// printing it. In the daemon, the program replaces the process.
	_, err = blivet.Daemonize(c.options(extra...)...)
	if err != nil {
		fmt.Fprintf(stderr, "daemonize: %v\n", err)
		return blivet.ExitCodeOf(err)
	}
	fmt.Fprintln(stderr, "daemonize: the pipeline ended without running the program")
	return blivet.ExitSoftware
}

// observer prints each pipeline step under -v, and the outcome. A
// re-executed daemon goes quiet once the output stage may have pointed
// stderr at the program's log file; planned steps are reported by the
// launcher.
func observer(w io.Writer, name string) func(blivet.Event) {
	quiet := false
	return func(e blivet.Event) {
		switch {
		case e.Kind == blivet.Launched && e.Err == nil:
			fmt.Fprintf(w, "daemonize: %s running as PID %d\n", name, e.PID)
			return
		case e.Kind == blivet.Launched:
			return // the launcher prints the error itself
		case !e.Planned && (e.Stage == "output" || e.Stage == "exec"):
			quiet = true
		}
		if !quiet || e.Planned {
			fmt.Fprintf(w, "daemonize: %v\n", e)
		}
	}
}
