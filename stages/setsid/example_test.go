package setsid_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/setsid"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the fork stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("setsid"), blivet.WithStageAfter("fork", setsid.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(setsid.New().Name())
	// Output: setsid
}

// Run calls setsid(2); in foreground mode it does nothing.
func ExampleStage_Run() {
	st := setsid.New()
	fmt.Println(st.Run(&stages.State{Config: stages.Config{Foreground: true}}))
	// Output: <nil>
}
