package program_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/program"
)

// New takes the program's command line. A name with a slash is a path;
// without one, Path stays empty and PATH is searched at exec time.
func ExampleNew() {
	p, err := program.New([]string{"/bin/sh", "-c", "exec sleep 60"})
	fmt.Println(p.Path, err)
	_, err = program.New(nil)
	fmt.Println(stages.ExitCodeOf(err), err)
	// Output:
	// /bin/sh <nil>
	// 64 program: no program given
}

// Check is what the "program" stage does before the first fork: a program
// given by path that is missing is 66, before anything is forked.
func ExampleProgram_Check() {
	p, _ := program.New([]string{"/nonexistent/blivet-example"})
	err := p.Check()
	fmt.Println(stages.ExitCodeOf(err), errors.Is(err, stages.ErrNoInput))
	fmt.Println(err)
	// Output:
	// 66 true
	// program: stat /nonexistent/blivet-example: no such file or directory
}

// Candidates are the paths the exec tries in order, as execvp(3) would.
func ExampleProgram_Candidates() {
	p, _ := program.New([]string{"myserver", "--serve"})
	fmt.Println(p.Candidates([]string{"PATH=/usr/local/bin:/usr/bin"}))
	fmt.Println(p.Candidates(nil)) // PATH unset: DefaultPath
	p, _ = program.New([]string{"/opt/app/bin/server"})
	fmt.Println(p.Candidates([]string{"PATH=/usr/bin"}))
	// Output:
	// [/usr/local/bin/myserver /usr/bin/myserver]
	// [/bin/myserver /usr/bin/myserver]
	// [/opt/app/bin/server]
}

// The two stages share one *Program; blivet.WithProgram inserts them.
func ExampleNewCheck() {
	p, _ := program.New([]string{"/bin/true"})
	fmt.Println(program.NewCheck(p).Name(), program.NewExec(p).Name())
	// Output: program exec
}

// The exec stage plans the exec of the program only in a plan that ends
// with it (Plan.Final); in a plan a Go daemon follows, it declines.
func ExampleExecStage_Plan() {
	p, _ := program.New([]string{"/bin/sleep", "60"})
	st := program.NewExec(p)
	s := &stages.State{}

	plan := &stages.Plan{Final: true, Env: []string{"PATH=/usr/bin:/bin"}}
	fmt.Println(st.Plan(s, plan))
	op := plan.Ops[0]
	fmt.Println(op.Kind == stages.OpExec, op.Exec.Candidates, op.Exec.Argv, op.Exec.Announce)

	fmt.Println(st.Plan(s, &stages.Plan{}) == stages.ErrNoRawForm)
	// Output:
	// <nil>
	// true [/bin/sleep] [/bin/sleep 60] true
	// true
}

// Readiness says when the launcher considers the program ready; the zero
// value means once it has been executed.
func ExampleReadiness() {
	p, _ := program.New([]string{"/usr/sbin/redis-server", "--supervised", "systemd"})
	p.Ready = program.Readiness{Notify: true, Status: os.Stderr} // READY=1 over NOTIFY_SOCKET
	fmt.Println(p.Ready.Notify, p.Ready.FD, p.Ready.After)
	// Output: true 0 0s
}
