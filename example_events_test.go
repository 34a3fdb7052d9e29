package blivet_test

import (
	"fmt"

	"github.com/blivet-go/blivet"
)

// A step that a process without a Go runtime ran (a planned step, see
// stages.Plan) is reported by the launcher once the outcome is known,
// with Planned set and no duration; Launched tells the daemon's PID.
// daemonize -v prints these lines.
func ExampleEvent_String_planned() {
	fmt.Println(blivet.Event{Kind: blivet.StageRan, Name: "setsid", Stage: "setsid", Role: blivet.RoleIntermediate, Planned: true})
	fmt.Println(blivet.Event{Kind: blivet.StageRan, Name: "umask", Stage: "umask", Role: blivet.RoleDaemon, Planned: true})
	fmt.Println(blivet.Event{Kind: blivet.Launched, Name: "launched", Role: blivet.RoleLauncher, PID: 4242})
	fmt.Println(blivet.Launched)
	// Output:
	// [intermediate] setsid (planned)
	// [daemon] umask (planned)
	// [launcher] launched PID 4242
	// launched
}
