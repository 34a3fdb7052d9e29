package umask_test

import (
	"fmt"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/umask"
)

// In a launch plan the umask is one step of the raw child. It also applies
// in the launcher until the plan is done, so the files the launcher
// creates for the daemon while planning get it too.
func ExampleStage_Plan() {
	s := &stages.State{Config: stages.Config{Umask: 0o027}}
	p := &stages.Plan{}
	err := umask.New().Plan(s, p)
	fmt.Printf("%v %v %#o\n", err, p.Ops[0].Kind == stages.OpUmask, p.Ops[0].Num)
	p.Done() // restores the launcher's umask
	// Output: <nil> true 027
}
