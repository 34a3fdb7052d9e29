// Package stdio provides the stage that points the standard fds at
// /dev/null: stdin always, stdout and stderr in daemon mode (the output
// stage later replaces them with files when configured). In foreground
// mode stdout and stderr stay inherited.
package stdio

import (
	"os"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/stages"
)

// Stage redirects the standard fds to /dev/null.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the stdio stage.
func New() *Stage { return &Stage{} }

// Name returns "stdio".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "stdio"

var _ stages.Planner = (*Stage)(nil)

// CanPlan reports whether Plan would plan: only in a Final plan.
func (*Stage) CanPlan(s *stages.State, final bool) bool { return final && !s.Config.Foreground }

// Plan points the daemon's standard fds at /dev/null. Only in a plan that
// ends with another program: a Go daemon carries its crash output over the
// readiness pipe, which this stage sets up in Run.
func (st *Stage) Plan(s *stages.State, p *stages.Plan) error {
	if !st.CanPlan(s, p.Final) {
		return stages.ErrNoRawForm
	}
	null, err := sys.OpenNull()
	if err != nil {
		return stages.Wrap(Name, stages.ExitOSErr, err)
	}
	p.OnDone(null.Close)
	for fd := 0; fd < 3; fd++ {
		p.Add(stages.Op{Kind: stages.OpDup, File: null, Num: fd})
	}
	return nil
}

// Run redirects fds 0-2.
func (*Stage) Run(s *stages.State) error {
	null, err := sys.OpenNull()
	if err != nil {
		return stages.Wrap("stdio", stages.ExitOSErr, err)
	}
	defer null.Close()
	fds := []int{0}
	if !s.Config.Foreground {
		fds = append(fds, 1, 2)
	}
	for _, fd := range fds {
		if err := sys.Dup2(int(null.Fd()), fd); err != nil {
			return stages.Wrap("stdio", stages.ExitOSErr, os.NewSyscallError("dup2", err))
		}
	}
	// stderr no longer reaches the launcher: carry a fatal panic's report
	// over the readiness pipe instead.
	if c, ok := s.Line.(interface{ CarryCrashOutput() }); ok && !s.Config.Foreground {
		c.CarryCrashOutput()
	}
	return nil
}
