// Package chdir provides the stage that changes the working directory, so
// the daemon does not keep a mount point busy ("/" by default).
package chdir

import (
	"os"

	"github.com/blivet-go/blivet/stages"
)

// Stage changes to Config.Dir.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the chdir stage.
func New() *Stage { return &Stage{} }

// Name returns "chdir".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "chdir"

var _ stages.Planner = (*Stage)(nil)

// Plan adds the chdir to a launch plan (a failure is exit code 71).
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	p.Add(stages.Op{Kind: stages.OpChdir, Path: s.Config.Dir})
	return nil
}

// Run changes the working directory.
func (*Stage) Run(s *stages.State) error {
	return stages.Wrap(Name, stages.ExitOSErr, os.Chdir(s.Config.Dir))
}
