// Package umask provides the stage that sets the file mode creation mask.
//
// The default is 022, not the 0 of daemon(7): Go's os.Create and
// os.MkdirAll pass 0666 and 0777 and rely on the umask, so 0 would make
// every file the daemon creates world-writable. blivet.WithUmask(0)
// restores the classic behaviour.
package umask

import (
	"syscall"

	"github.com/blivet-go/blivet/stages"
)

// Stage sets the umask from Config.Umask.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the umask stage.
func New() *Stage { return &Stage{} }

// Name returns "umask".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "umask"

var _ stages.Planner = (*Stage)(nil)

// Plan adds the umask to a launch plan. Files the launcher creates for
// the daemon while planning a Final plan (pidfile, output files) are
// created with it too: it applies in the launcher until the plan is done.
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	if p.Final {
		old := syscall.Umask(s.Config.Umask)
		p.OnDone(func() error { syscall.Umask(old); return nil })
	}
	p.Add(stages.Op{Kind: stages.OpUmask, Num: s.Config.Umask})
	return nil
}

// Run sets the umask.
func (*Stage) Run(s *stages.State) error {
	syscall.Umask(s.Config.Umask)
	return nil
}
