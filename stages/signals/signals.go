// Package signals provides the stage that gives every later generation a
// clean signal state: no signal ignored, an empty signal mask.
//
// exec(2) resets caught signals to their default, but an ignored signal
// (nohup's SIGHUP) and the blocked mask survive it, and Go itself keeps an
// inherited SIG_IGN for SIGHUP and SIGINT. So the cleaning has to happen in
// the generation that re-executes, on the thread that does it, just before
// the exec: this stage asks for it (State.ResetSignals) and every
// re-execution honours it.
//
// In foreground mode there is no later generation. If the process was
// started with signals ignored or blocked, the stage re-executes the program
// in place (same PID, so supervisors are not confused) with the clean state,
// and the pipeline resumes after this stage. Otherwise it does nothing.
package signals

import (
	"os"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
)

// Stage resets signal dispositions and the signal mask.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the signals stage.
func New() *Stage { return &Stage{} }

// Name returns "signals".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "signals"

// Run requests a clean signal state for the next generation, or
// re-executes in place in foreground mode when the state is not clean.
func (*Stage) Run(s *stages.State) error {
	s.ResetSignals = true
	if !s.Config.Foreground {
		return nil
	}
	ign, err := sys.IgnoredSignals()
	if err != nil {
		return stages.Wrap("signals", stages.ExitOSErr, err)
	}
	if len(ign) == 0 && sys.ThreadSigmaskEmpty() {
		return nil
	}
	path, exe, err := sys.Executable()
	if err != nil {
		return stages.Wrap("signals", stages.ExitOSErr, err)
	}
	m := wire.NewMarker(s, "foreground", s.NextStep, -1, path, exe)
	m.PID = os.Getpid()
	err = handover.Exec(path, os.Args, wire.Environ(os.Environ(), &m), true)
	return stages.Errorf("signals", stages.ExitOSErr, "re-executing in place to clear inherited signal state: %w", err)
}
