package stdio_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/stdio"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the umask stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("stdio"), blivet.WithStageAfter("umask", stdio.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(stdio.New().Name())
	// Output: stdio
}

// Run points stdin (and, outside foreground mode, stdout and stderr) of
// the calling process at /dev/null.
func ExampleStage_Run() {
	st := stdio.New()
	if err := st.Run(&stages.State{Config: stages.Config{Foreground: true}}); err != nil {
		fmt.Println(err)
	}
	// stdin reads /dev/null from here on; stdout and stderr are unchanged.
}
