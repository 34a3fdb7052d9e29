package privdrop

import (
	"os"

	"github.com/blivet-go/blivet/stages"
)

// verifyInherited is Run in a generation started by an upgrade whose
// previous generation had dropped its privileges: the process already runs
// as the target (it was started by the dropped process), so it resolves
// the target, checks with Check that the ids are the target's and cannot
// be regained, and sets the environment as Drop does. The files were
// handed over by the first generation: nothing is chowned.
func verifyInherited(s *stages.State) error {
	t, err := Resolve(s.Config.User, s.Config.Group)
	if err != nil {
		return err
	}
	if err := Check(t); err != nil {
		return stages.Errorf(stageName, stages.ExitNoPerm,
			"the previous generation dropped privileges, but this one does not run as %s: %w", t, err)
	}
	if t.UID >= 0 {
		for _, kv := range [][2]string{{"USER", t.Name}, {"LOGNAME", t.Name}, {"HOME", t.Home}} {
			if err := os.Setenv(kv[0], kv[1]); err != nil {
				return stages.Errorf(stageName, stages.ExitOSErr, "setting %s: %w", kv[0], err)
			}
		}
	}
	s.Chowned, s.Dropped = true, true
	return nil
}
