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
func (*Stage) Name() string { return "chdir" }

// Run changes the working directory.
func (*Stage) Run(s *stages.State) error {
	return stages.Wrap("chdir", stages.ExitOSErr, os.Chdir(s.Config.Dir))
}
