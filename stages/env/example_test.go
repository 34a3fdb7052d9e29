package env_test

import (
	"fmt"
	"os"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/env"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the output stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("env"), blivet.WithStageAfter("output", env.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(env.New().Name())
	// Output: env
}

// Run sets Config.Env in the calling process, in order.
func ExampleStage_Run() {
	st := env.New()
	s := &stages.State{Config: stages.Config{Env: []stages.EnvVar{{Key: "TZ", Value: "UTC"}, {Key: "LANG", Value: "C.UTF-8"}}}}
	if err := st.Run(s); err != nil {
		fmt.Println(err)
	}
	fmt.Println(os.Getenv("TZ"))
}
