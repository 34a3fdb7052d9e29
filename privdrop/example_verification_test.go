package privdrop_test

import (
	"fmt"

	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

// Verification is what must hold after a switch: Check makes these checks
// in a Go process, and a raw child makes the same ones after a planned
// drop. Want is the id the check wants (groups: Cred.Groups).
func ExampleVerification() {
	names := map[stages.CheckKind]string{
		stages.CheckUIDs: "uids", stages.CheckGIDs: "gids", stages.CheckGroups: "groups",
		stages.CheckNoCaps: "no capabilities", stages.CheckNoSetuid0: "setuid(0) fails",
		stages.CheckNoSeteuid0: "seteuid(0) fails", stages.CheckNoSetgid0: "setgid(0) fails",
	}
	t := privdrop.Target{UID: 1000, GID: 1000, Groups: []int{1000}}
	for _, c := range privdrop.Verification(t) {
		fmt.Println(names[c.Kind], c.Want)
	}
	// Output:
	// gids 1000
	// groups 0
	// uids 1000
	// no capabilities 0
	// setuid(0) fails 0
	// seteuid(0) fails 0
	// setgid(0) fails 0
}
