//go:build !linux

package privdrop

import (
	"os"
	"slices"
	"syscall"

	"github.com/blivet-go/blivet/stages"
)

// setIDs sets the supplementary groups, then the gid, then the uid. As
// root, setgid and setuid set the real, effective and saved ids.
func setIDs(t Target) error {
	if len(t.Caps) > 0 {
		return stages.Errorf(stageName, stages.ExitUsage, "keeping capabilities %s across the drop to %s: %v", capList(t.Caps), t, capsSupported())
	}
	if err := syscall.Setgroups(t.Groups); err != nil {
		return stages.Errorf(stageName, stages.ExitNoPerm, "setgroups(%v) for %s: %w", t.Groups, t, err)
	}
	if err := syscall.Setgid(t.GID); err != nil {
		return fatal("setgid(%d) for %s: %w", t.GID, t, err)
	}
	if t.UID >= 0 {
		if err := syscall.Setuid(t.UID); err != nil {
			return fatal("setuid(%d) for %s: %w", t.UID, t, err)
		}
	}
	return nil
}

// Check verifies the process runs as t: the real and effective ids and the
// supplementary groups of the calling thread (on these systems credentials
// belong to the process), and after a switch to a uid other than 0 that
// uid 0 and gid 0 cannot be regained. Any mismatch is a Fatal 77, and so
// is a target with Caps (capabilities are Linux's).
func Check(t Target) error {
	if len(t.Caps) > 0 {
		return fatal("checking capabilities %s after dropping to %s: %v", capList(t.Caps), t, capsSupported())
	}
	if t.UID >= 0 && (os.Getuid() != t.UID || os.Geteuid() != t.UID) {
		return fatal("uids are %d/%d after dropping to %s", os.Getuid(), os.Geteuid(), t)
	}
	if os.Getgid() != t.GID || os.Getegid() != t.GID {
		return fatal("gids are %d/%d after dropping to %s", os.Getgid(), os.Getegid(), t)
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fatal("getgroups after dropping to %s: %w", t, err)
	}
	slices.Sort(groups)
	groups = slices.Compact(groups)
	// BSDs report the egid as a group too.
	rest := slices.DeleteFunc(slices.Clone(groups), func(g int) bool { return g == t.GID && !slices.Contains(t.Groups, g) })
	if !slices.Equal(groups, t.Groups) && !slices.Equal(rest, t.Groups) && (len(rest) != 0 || len(t.Groups) != 0) {
		return fatal("supplementary groups are %v after dropping to %s, want %v", groups, t, t.Groups)
	}
	if t.UID > 0 {
		if err := syscall.Setuid(0); err == nil {
			return fatal("setuid(0) succeeded after dropping to %s: the drop is reversible", t)
		}
		if err := syscall.Seteuid(0); err == nil {
			return fatal("seteuid(0) succeeded after dropping to %s: the drop is reversible", t)
		}
		if t.GID != 0 {
			if err := syscall.Setgid(0); err == nil {
				return fatal("setgid(0) succeeded after dropping to %s: the drop is reversible", t)
			}
		}
	}
	return nil
}
