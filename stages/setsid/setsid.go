// Package setsid provides the stage that starts a new session, detaching
// the intermediate from the launcher's controlling terminal.
package setsid

import (
	"os"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// Stage calls setsid(2). It is a no-op in foreground mode.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the setsid stage.
func New() *Stage { return &Stage{} }

// Name returns "setsid".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "setsid"

var _ stages.Planner = (*Stage)(nil)

// Plan adds setsid to a launch plan: the raw intermediate calls it.
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	if s.Config.Foreground {
		return stages.ErrNoRawForm
	}
	p.Add(stages.Op{Kind: stages.OpSetsid})
	return nil
}

// Run starts a new session.
func (*Stage) Run(s *stages.State) error {
	if s.Config.Foreground {
		return nil
	}
	if _, err := unix.Setsid(); err != nil {
		return stages.Wrap("setsid", stages.ExitOSErr, os.NewSyscallError("setsid", err))
	}
	return nil
}
