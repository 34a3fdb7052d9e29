package fork_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/fork"
)

// The launcher's fork stage. A hook after it runs in the intermediate, the
// first re-executed generation.
func ExampleFirst() {
	st := fork.First()
	_, err := blivet.Validate(blivet.WithHookAfter(st.Name(), func(s *blivet.State) error {
		return nil // runs in the intermediate, before setsid
	}))
	fmt.Println(st.Name(), err)
	// Output: fork <nil>
}

// The intermediate's fork stage. A hook after it runs in the daemon,
// before any other daemon stage.
func ExampleSecond() {
	st := fork.Second()
	_, err := blivet.Validate(blivet.WithHookAfter(st.Name(), func(s *blivet.State) error {
		return nil // runs in the daemon
	}))
	fmt.Println(st.Name(), err)
	// Output: fork2 <nil>
}

func ExampleStage_Name() {
	fmt.Println(fork.First().Name(), fork.Second().Name())
	// Output: fork fork2
}

// In foreground mode both fork stages do nothing. Otherwise Run
// re-executes the program as the next generation: only a pipeline should
// call it.
func ExampleStage_Run() {
	s := &stages.State{Config: stages.Config{Foreground: true}, Role: stages.RoleForeground}
	fmt.Println(fork.First().Run(s), fork.Second().Run(s), s.Outcome == nil)
	// Output: <nil> <nil> true
}

// The child's fd table: 0-2 as given, the kept fds 3 and 4 (socket
// activation) at their own numbers, and the readiness pipe (fd 7 here) at
// the lowest free number, 5.
func ExampleLayout() {
	files, pipe := fork.Layout([3]int{10, 10, 2}, []int{3, 4}, 7)
	fmt.Println(files, pipe)
	// Output: [10 10 2 3 4 7] 5
}
