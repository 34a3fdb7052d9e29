package env_test

import (
	"fmt"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/env"
)

// In a launch plan the configured variables edit the environment the
// plan's exec starts with; no step is added.
func ExampleStage_Plan() {
	s := &stages.State{Config: stages.Config{Env: []stages.EnvVar{{Key: "TZ", Value: "UTC"}, {Key: "LANG", Value: "C.UTF-8"}}}}
	p := &stages.Plan{Env: []string{"LANG=C", "PATH=/usr/bin"}}
	fmt.Println(env.New().Plan(s, p), p.Env, len(p.Ops))
	// Output: <nil> [LANG=C.UTF-8 PATH=/usr/bin TZ=UTC] 0
}
