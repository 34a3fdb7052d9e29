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

// Plan opens the directory in the launcher under the same rules as Run
// and has the daemon child change to that descriptor (fchdir).
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	fd, err := open(s.Config.Dir)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), s.Config.Dir)
	p.OnDone(dir.Close)
	p.Add(stages.Op{Kind: stages.OpChdir, Path: s.Config.Dir, File: dir})
	return nil
}

// open opens dir under the rules in the package documentation.
func open(dir string) (int, error) {
	fd, err := safefile.OpenDir(dir, Name, "working directory")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return -1, &stages.Error{Stage: Name, Code: stages.ExitOSErr, Err: pe}
		}
		return -1, err
	}
	return fd, nil
}

// Run changes the working directory.
func (*Stage) Run(s *stages.State) error {
	fd, err := open(s.Config.Dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchdir(fd); err != nil {
		return &stages.Error{Stage: Name, Code: stages.ExitOSErr, Err: &os.PathError{Op: "chdir", Path: s.Config.Dir, Err: err}}
	}
	return nil
}
