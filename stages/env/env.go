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
func (*Stage) Name() string { return "env" }

// Run sets the variables.
func (*Stage) Run(s *stages.State) error {
	for _, kv := range s.Config.Env {
		if err := os.Setenv(kv.Key, kv.Value); err != nil {
			return stages.Errorf("env", stages.ExitOSErr, "setting %s: %w", kv.Key, err)
		}
	}
	return nil
}
