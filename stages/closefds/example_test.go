package closefds_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/closefds"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the output stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("closefds"), blivet.WithStageAfter("output", closefds.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(closefds.New().Name())
	// Output: closefds
}

// Run marks every fd from 3 up close-on-exec, except State.KeepFDs and
// State.OwnFDs; with Config.CloseFDs false it does nothing.
func ExampleStage_Run() {
	st := closefds.New()
	s := &stages.State{Config: stages.Config{CloseFDs: false}}
	fmt.Println(st.Run(s)) // disabled: nothing marked
	// Output: <nil>
}
