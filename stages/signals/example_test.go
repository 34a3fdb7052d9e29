package signals_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/signals"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here before the fork stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("signals"), blivet.WithStageBefore("fork", signals.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(signals.New().Name())
	// Output: signals
}

// Run asks every later re-execution for a clean signal state. (In
// foreground mode, if this process inherited ignored or blocked signals,
// it also re-executes the program in place, the same PID, to clear them.)
func ExampleStage_Run() {
	s := &stages.State{Config: stages.Config{}}
	if err := signals.New().Run(s); err != nil {
		fmt.Println(err)
	}
	fmt.Println(s.ResetSignals)
	// Output: true
}
