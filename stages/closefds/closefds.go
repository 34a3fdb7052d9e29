// Package closefds provides the stage that keeps inherited fds from
// reaching anything the daemon executes.
//
// It never closes an fd under the running Go runtime (the runtime owns
// some, like its epoll fd). It marks every fd from 3 up close-on-exec,
// except Config.KeepFDs, socket-activation fds and the library's own (the
// lock), with close_range(2) where available, so the cost does not grow
// with RLIMIT_NOFILE. In daemon mode the second fork already applies the
// same rule before re-executing, so no inherited fd reaches the daemon at
// all; this stage then covers fds opened since, and foreground mode.
package closefds

import (
	"slices"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/stages"
)

// Stage marks inherited fds close-on-exec. It does nothing when
// Config.CloseFDs is false.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the closefds stage.
func New() *Stage { return &Stage{} }

// Name returns "closefds".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "closefds"

var _ stages.Planner = (*Stage)(nil)

// Plan marks every fd close-on-exec in the daemon, except the kept ones
// and those earlier steps keep open (the lock).
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	if !s.Config.CloseFDs {
		return nil
	}
	keep := slices.Concat(s.KeepFDs, s.OwnFDs, p.KeepFDs)
	for _, op := range p.Ops {
		if op.Kind == stages.OpKeepOpen && op.File != nil {
			keep = append(keep, int(op.File.Fd()))
		}
	}
	p.Add(stages.Op{Kind: stages.OpCloexec, Keep: keep})
	return nil
}

// Run marks the fds.
func (*Stage) Run(s *stages.State) error {
	if !s.Config.CloseFDs {
		return nil
	}
	keep := slices.Concat(s.KeepFDs, s.OwnFDs)
	return stages.Wrap("closefds", stages.ExitOSErr, sys.CloexecExcept(keep))
}
