package stages_test

import (
	"fmt"
	"os"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
)

// timezone is a custom stage that can run in both forms: as Go code in a
// daemon (Run), or as a step of a launch plan that a process without a Go
// runtime carries out (Plan), here an edit of the environment the plan
// ends its exec with.
type timezone struct{ tz string }

func (*timezone) Name() string { return "timezone" }

func (t *timezone) Run(*stages.State) error { return os.Setenv("TZ", t.tz) }

func (t *timezone) Plan(_ *stages.State, p *stages.Plan) error {
	p.Setenv("TZ", t.tz)
	return nil
}

// A stage that implements Planner does not end a launch plan: the
// stages after it can still be planned.
func ExamplePlanner() {
	var st stages.Stage = &timezone{"UTC"}
	_, ok := st.(stages.Planner)
	_, err := blivet.Validate(blivet.WithStageAfter("env", st))
	fmt.Println(ok, err)

	p := &stages.Plan{Env: []string{"PATH=/usr/bin"}}
	_ = st.(stages.Planner).Plan(&stages.State{}, p)
	fmt.Println(p.Env)
	// Output:
	// true <nil>
	// [PATH=/usr/bin TZ=UTC]
}

// A stage that cannot work without a Go runtime in some configuration
// returns ErrNoRawForm: the plan ends before it, and it runs as Go code.
func ExampleErrNoRawForm() {
	plan := func(s *stages.State, p *stages.Plan) error {
		if !p.Final {
			return stages.ErrNoRawForm // a Go daemon follows: Run does it
		}
		p.Add(stages.Op{Kind: stages.OpUmask, Num: 0o027})
		return nil
	}
	fmt.Println(plan(&stages.State{}, &stages.Plan{}))
	fmt.Println(plan(&stages.State{}, &stages.Plan{Final: true}))
	// Output:
	// stage has no raw form in this plan
	// <nil>
}

// Setenv, Getenv and Unsetenv edit the environment the plan's exec
// starts with, in place.
func ExamplePlan_Setenv() {
	p := &stages.Plan{Env: []string{"HOME=/root", "LANG=C"}}
	p.Setenv("HOME", "/var/lib/app")
	p.Setenv("TZ", "UTC")
	p.Unsetenv("LANG")
	home, ok := p.Getenv("HOME")
	_, hasLang := p.Getenv("LANG")
	fmt.Println(p.Env, home, ok, hasLang)
	// Output: [HOME=/var/lib/app TZ=UTC] /var/lib/app true false
}

// Add appends a step; the runner sets its Stage and Step.
func ExamplePlan_Add() {
	p := &stages.Plan{}
	p.Add(stages.Op{Kind: stages.OpSetsid})
	p.Add(stages.Op{Kind: stages.OpChdir, Path: "/"})
	fmt.Println(len(p.Ops), p.Ops[1].Kind == stages.OpChdir, p.Ops[1].Path)
	// Output: 2 true /
}

// OnDone closes the launcher's copies of what the plan handed on, once,
// newest first; OnFailure undoes what a failed launch left behind.
func ExamplePlan_OnDone() {
	p := &stages.Plan{}
	p.OnDone(func() error { fmt.Println("close the directory"); return nil })
	p.OnDone(func() error { fmt.Println("close the output file"); return nil })
	p.OnFailure(func(pid int) { fmt.Println("remove the pidfile nobody holds") })
	p.Done()
	p.Done() // a no-op
	p.Failed(0)
	// Output:
	// close the output file
	// close the directory
	// remove the pidfile nobody holds
}

// Files lists the open files the plan's steps refer to: the launcher keeps
// them open until the child has them.
func ExamplePlan_Files() {
	null, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer null.Close()
	p := &stages.Plan{}
	p.Add(stages.Op{Kind: stages.OpUmask, Num: 0o022})
	p.Add(stages.Op{Kind: stages.OpDup, File: null, Num: 0})
	fmt.Println(len(p.Files()), p.Files()[0].Name())
	// Output: 1 /dev/null
}

// A privilege drop in a plan carries what must hold afterwards; package
// privdrop's Verification builds the list.
func ExampleCred() {
	c := stages.Cred{UID: 1000, GID: 1000, Groups: []int{1000},
		Verify: []stages.CredCheck{{Kind: stages.CheckUIDs, Want: 1000}, {Kind: stages.CheckNoSetuid0}}}
	fmt.Println(c.UID, c.GID, len(c.Verify))
	// Output: 1000 1000 2
}
