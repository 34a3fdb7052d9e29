package output_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/output"
)

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the env stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("output"), blivet.WithStageAfter("env", output.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what WithHookBefore, WithHookAfter, WithStageBefore,
// WithStageAfter, WithStageReplaced, WithoutStage and errors refer to.
func ExampleStage_Name() {
	fmt.Println(output.New().Name())
	// Output: output
}

// Run opens Config.Stdout and Config.Stderr and moves them onto fds 1 and
// 2 of the calling process, recording them in State.ChownPaths for the
// privilege drop.
func ExampleStage_Run() {
	st := output.New()
	s := &stages.State{Config: stages.Config{Stdout: "/var/log/app.log", Stderr: "/var/log/app.log", Append: true}}
	if err := st.Run(s); err != nil {
		fmt.Println(stages.ExitCodeOf(err), err) // 73: cannot create
		return
	}
	fmt.Println(s.ChownPaths) // [/var/log/app.log]: one shared file
}

// Open is how the stage opens a log: created 0644 (subject to the umask),
// truncated, or appended to.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.log")
	for _, appendTo := range []bool{false, true} {
		f, err := output.Open(path, appendTo)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Fprintf(f, "append=%v\n", appendTo)
		f.Close()
	}
	data, _ := os.ReadFile(path)
	fmt.Print(string(data))
	// Output:
	// append=false
	// append=true
}
