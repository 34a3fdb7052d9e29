package umask_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/umask"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the chdir stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("umask"), blivet.WithStageAfter("chdir", umask.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(umask.New().Name())
	// Output: umask
}

// Run sets the calling process's umask to Config.Umask.
func ExampleStage_Run() {
	st := umask.New()
	_ = st.Run(&stages.State{Config: stages.Config{Umask: 0o027}})
	// Files created from here on get no permission for others.
}
