package blivet_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
)

// WithProgram makes the daemon become another program: what the daemonize
// command is. A real launch would end this process, so the example checks
// the configuration (as Daemonize does before any fork) and shows the
// option; in a main function the call is
//
//	_, err := blivet.Daemonize(blivet.WithProgram(p), blivet.WithAutoNotify(), blivet.WithPidfile("/run/sleeper.pid"))
//
// and the launcher exits 0 once /bin/sleep runs, as the daemon: the PID in
// the pidfile is the program's, and it holds the lock.
func ExampleWithProgram() {
	p, err := blivet.NewProgram([]string{"/bin/sleep", "60"})
	if err != nil {
		fmt.Println(err)
		return
	}
	opt := blivet.WithProgram(p)
	_, err = blivet.Validate(opt, blivet.WithAutoNotify(), blivet.WithPidfile("/run/sleeper.pid"))
	fmt.Println(opt, err)
	// Output: WithProgram(...) <nil>
}

// The program's check stage runs in the launcher before the first fork and
// its exec stage takes notify's place, so the daemon execs the program
// after the privilege drop. Here in-process, with recording fakes (see
// package blivettest): without WithAutoNotify, Daemonize returns before
// the drop and nothing is executed.
func ExampleWithProgram_stages() {
	p, _ := blivet.NewProgram([]string{"/bin/true"})
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(blivet.WithProgram(p))
	fmt.Println(err)
	fmt.Println(rec.Stages())
	// Output:
	// <nil>
	// [signals program fork setsid fork2 umask chdir stdio pidfile env output closefds]
}

// A program named with a slash is a path, made absolute at once; a bare
// name is searched in PATH when it is executed. Arguments must not
// contain NUL bytes (64).
func ExampleNewProgram() {
	p, _ := blivet.NewProgram([]string{"/usr/bin/env", "-i"})
	fmt.Printf("%q %q\n", p.Path, p.Argv)
	p, _ = blivet.NewProgram([]string{"sleep", "60"})
	fmt.Printf("%q %q\n", p.Path, p.Argv)
	_, err := blivet.NewProgram([]string{"echo", "a\x00b"})
	fmt.Println(blivet.ExitCodeOf(err), err)
	// Output:
	// "/usr/bin/env" ["/usr/bin/env" "-i"]
	// "" ["sleep" "60"]
	// 64 program: program arguments must not contain NUL bytes
}

// Readiness for a program the daemon becomes: here the s6 convention, the
// program writes a newline on fd 3 once it serves (daemonize --ready-fd 3).
func ExampleReadiness() {
	p, _ := blivet.NewProgram([]string{"/usr/local/bin/server"})
	p.Ready = blivet.Readiness{FD: 3}
	_, err := blivet.Validate(blivet.WithProgram(p), blivet.WithAutoNotify(), blivet.WithReadyTimeout(0))
	fmt.Println(err)
	// Output: <nil>
}
