package chdir_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/chdir"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the output stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("chdir"), blivet.WithStageAfter("output", chdir.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(chdir.New().Name())
	// Output: chdir
}

// Run changes the calling process's working directory to Config.Dir (71
// on failure).
func ExampleStage_Run() {
	st := chdir.New()
	err := st.Run(&stages.State{Config: stages.Config{Dir: "/srv/app"}})
	if err != nil {
		fmt.Println(err, stages.ExitCodeOf(err)) // chdir: chdir /srv/app: no such file or directory 71
	}
}
