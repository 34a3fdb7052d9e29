package fork_test

import (
	"fmt"
	"os"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/fork"
)

// Only the launcher's fork stage runs plans, and never in foreground mode.
// ReexecEnv=1 in the launcher's environment forces the re-executed form
// (and is removed from the environment, so no later generation sees it).
func ExampleStage_Plannable() {
	s := &stages.State{Role: stages.RoleLauncher}
	fmt.Println(fork.Second().Plannable(s))

	s.Config.Foreground = true
	fmt.Println(fork.First().Plannable(s))

	s.Config.Foreground = false
	os.Setenv(fork.ReexecEnv, "1")
	fmt.Println(fork.First().Plannable(s))
	_, set := os.LookupEnv(fork.ReexecEnv)
	fmt.Println(set)
	// Output:
	// false
	// false
	// false
	// false
}

// The second fork plans one step: the intermediate forks the daemon and
// exits. The first fork is the one that starts the plan: it has no step.
func ExampleStage_Plan() {
	s := &stages.State{}
	p := &stages.Plan{}
	fmt.Println(fork.Second().Plan(s, p), len(p.Ops), p.Ops[0].Kind == stages.OpFork)
	fmt.Println(fork.First().Plan(s, p) == stages.ErrNoRawForm)
	// Output:
	// <nil> 1 true
	// true
}
