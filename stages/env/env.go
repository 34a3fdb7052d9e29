// Package env provides the stage that applies the configured environment
// variables, in order (a later duplicate wins).
package env

import (
	"os"

	"github.com/blivet-go/blivet/stages"
)

// Stage sets Config.Env.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the env stage.
func New() *Stage { return &Stage{} }

// Name returns "env".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "env"

var _ stages.Planner = (*Stage)(nil)

// Plan applies the variables to the plan's environment.
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	for _, kv := range s.Config.Env {
		p.Setenv(kv.Key, kv.Value)
	}
	return nil
}

// Run sets the variables.
func (*Stage) Run(s *stages.State) error {
	for _, kv := range s.Config.Env {
		if err := os.Setenv(kv.Key, kv.Value); err != nil {
			return stages.Errorf("env", stages.ExitOSErr, "setting %s: %w", kv.Key, err)
		}
	}
	return nil
}
