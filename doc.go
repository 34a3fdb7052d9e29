// Package blivet turns a Go program into a correctly detached Unix daemon
// and tells the process that launched it the truth about whether the
// daemon came up.
//
// # Why re-execution
//
// A Go program is multithreaded from its first instruction, so fork(2)
// without exec is unsound: the child would have one thread and a runtime
// that believes it has many. blivet never runs Go code in a forked child.
// A generation either is a child without a Go runtime that carries out a
// launch plan (see below) and ends with an exec, or is the running binary
// re-executed (see execve(2)) with the readiness pipe as an inherited fd
// and a handover marker in the environment. A re-executed generation runs
// main up to Daemonize again, rebuilds the same pipeline from the same
// options, checks that the marker matches (same executable, same
// pipeline, a real pipe) and resumes right after the step its parent
// handed over at. On Linux it is started through /proc/self/exe, which
// always runs the same file even if a package upgrade replaces it during
// the start, and it takes the program's name back from the marker first
// thing, so ps, pgrep and /proc/PID/comm show the program, not "exe".
//
// So code before Daemonize runs in every Go generation and must be free of
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
// The daemon runs every remaining stage; Daemonize returns its *Context
// there, before the privilege drop (the first stages.Dropper) unless
// WithAutoNotify. DefaultStages lists which stage runs in which
// generation.
//
// On Linux 5.11 or later (amd64, arm64) the stages after the first fork
// that can work without a Go runtime (stages.Planner) describe their work
// as a launch plan, and the fork stage has a raw child run it: setsid,
// the second fork, umask and directory for a Go daemon, which is then the
// program re-executed and resumes the pipeline at the first step that was
// not planned; the whole pipeline, up to the exec of the program, with
// WithProgram (the daemonize command). A hook, or a stage without a raw
// form, ends the plan there. Elsewhere, or with BLIVET_REEXEC=1 in the
// launcher's environment (fork.ReexecEnv), every generation after the
// launcher is re-executed. Both forms give the same daemon, the same
// outcome and an observer event (Event) for every step; the planned one
// saves one or two Go starts. docs/how-it-works.md has the details.
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
