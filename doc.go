// Package blivet turns a Go program into a correctly detached Unix daemon
// and tells the process that launched it the truth about whether the
// daemon came up.
//
// # Why re-execution
//
// A Go program is multithreaded from its first instruction, so fork(2)
// without exec is unsound: the child would have one thread and a runtime
// that believes it has many. blivet "forks" by re-executing the running
// binary (/proc/self/exe on Linux, os.Executable elsewhere) with the
// readiness pipe as an inherited fd and a handover marker in the
// environment (see execve(2)). Each new process generation runs main up to
// Daemonize again, rebuilds the same pipeline from the same options, checks
// that the marker matches (same executable, same pipeline, a real pipe)
// and resumes right after the stage its parent handed over at.
//
// So code before Daemonize runs in every generation and must be free of
// side effects: parse flags and build options, but open no files, bind no
// sockets and start no goroutines that matter before Daemonize returns.
//
//	func main() {
//		flag.Parse() // fine: the same in every generation
//		ctx, err := blivet.Daemonize(blivet.WithPidfile("/run/app.pid"))
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(blivet.ExitCodeOf(err))
//		}
//		defer ctx.Close()
//		// ... privileged init, then:
//		ctx.DropPrivileges()
//		ctx.NotifyParent()
//		serve()
//	}
//
// # Generations
//
// The launcher (the process the user started) validates the options, runs
// the stages up to the first fork and waits on the readiness pipe. The
// intermediate calls setsid and starts the daemon, then exits, so the
// daemon is in a new session, is not its leader and is adopted by init.
// The daemon runs every remaining stage; Daemonize returns its *Context.
// On Linux the launcher performs setsid and the second fork itself in a
// raw child when the pipeline allows it, saving a Go start.
//
// The launcher exits 0 when the daemon calls NotifyParent, or prints the
// daemon's error and exits with its code (sysexits.h: 64 usage, 66 no
// input, 67 no user, 69 lock conflict, 70 software, 71 OS error, 73
// cannot create, 75 ready timeout, 77 no permission). A daemon that
// returns, exits, panics or is killed before it is ready makes the
// launcher exit 70, never 0.
//
// # Programs started with signals ignored or blocked
//
// exec(2) resets caught signals to their default but keeps ignored ones
// (nohup's SIGHUP) and the blocked-signal mask, and Go itself keeps an
// inherited SIG_IGN for SIGHUP and SIGINT. blivet clears both on the
// thread that re-executes, so the daemon starts with no signal ignored and
// an empty mask. In foreground mode it re-executes in place (same PID) when
// the process was started with such state.
//
// # Files opened as root
//
// Output files, the pidfile, the lockfile and the working directory are
// opened as root before a privilege drop, often in directories the target
// user controls. None of them is reached through a symbolic link as its
// last component (nor through a link above it that root does not own), a
// file with other hard links or a device is refused (exit code 73) before
// anything is truncated, and the drop changes owners only through the
// descriptors that were checked. The rules and why: docs/security.md.
//
// # Foreground mode
//
// WithForeground(true) runs every stage except the forks and setsid in the
// calling process, for systemd, containers and debugging; every failure
// is returned as an error.
package blivet
