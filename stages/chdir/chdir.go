// Package chdir provides the stage that changes the working directory, so
// the daemon does not keep a mount point busy ("/" by default).
//
// The directory is opened one component at a time (package
// internal/safefile, docs/security.md): a symbolic link on the way is
// followed only when root (or the effective user) owns it, so a link
// planted by another user cannot move root's working directory somewhere
// else; the process then changes to the descriptor it opened (fchdir).
// Such a refusal is exit code 73; any other failure is 71.
package chdir

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/safefile"
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
	fd, err := safefile.OpenDir(s.Config.Dir, "chdir", "working directory")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return &stages.Error{Stage: Name, Code: stages.ExitOSErr, Err: pe}
		}
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return &stages.Error{Stage: Name, Code: stages.ExitOSErr, Err: &os.PathError{Op: "chdir", Path: s.Config.Dir, Err: err}}
	}
	return nil
}
