package privdrop

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/blivet-go/blivet/stages"
)

// Name is the stage's name.
const Name = stageName

var (
	_ stages.Planner = (*Stage)(nil)
	_ stages.Dropper = (*Stage)(nil)
)

// DropsPrivileges marks the stage as the pipeline's privilege drop: without
// WithAutoNotify, Daemonize returns before it.
func (*Stage) DropsPrivileges() {}

// verifyErrno is how a raw child reports a failed check: this plus the
// check's index (internal/rawfork.VerifyErrno; real errnos are smaller).
const verifyErrno = 4096

// Verification lists what must hold after a switch to t: the checks Check
// makes (ids, groups and capabilities on every thread, read from /proc;
// the rest by trying) and a raw child makes after a planned drop. The ids
// and supplementary groups are t's; after a switch to a uid other than 0,
// no capability is left (but t.Caps, which Check verifies) and uid 0 (and
// gid 0, unless it is t's) cannot be regained.
func Verification(t Target) []stages.CredCheck {
	uid := t.UID
	checks := []stages.CredCheck{{Kind: stages.CheckGIDs, Want: t.GID}, {Kind: stages.CheckGroups}}
	if uid >= 0 {
		checks = append(checks, stages.CredCheck{Kind: stages.CheckUIDs, Want: uid})
	}
	if uid > 0 {
		if len(t.Caps) == 0 {
			checks = append(checks, stages.CredCheck{Kind: stages.CheckNoCaps})
		}
		checks = append(checks, stages.CredCheck{Kind: stages.CheckNoSetuid0}, stages.CredCheck{Kind: stages.CheckNoSeteuid0})
		if t.GID != 0 {
			checks = append(checks, stages.CredCheck{Kind: stages.CheckNoSetgid0})
		}
	}
	return checks
}

func describeCheck(c stages.CredCheck) string {
	switch c.Kind {
	case stages.CheckUIDs:
		return fmt.Sprintf("the real, effective, saved and filesystem uids are not all %d", c.Want)
	case stages.CheckGIDs:
		return fmt.Sprintf("the real, effective, saved and filesystem gids are not all %d", c.Want)
	case stages.CheckGroups:
		return "the supplementary groups are not the target's"
	case stages.CheckNoCaps:
		return "capabilities are left"
	case stages.CheckNoSetuid0:
		return "setuid(0) succeeded: the drop is reversible"
	case stages.CheckNoSeteuid0:
		return "seteuid(0) succeeded: the drop is reversible"
	case stages.CheckNoSetgid0:
		return "setgid(0) succeeded: the drop is reversible"
	}
	return fmt.Sprintf("check %d failed", c.Kind)
}

// Plan describes the drop for a launch plan that ends with another program
// (the daemonize command). Still root, in the launcher, it resolves the
// target and hands State.ChownPaths to it (as Run does); the daemon child
// then sets the groups, gid and uid with raw system calls (it is the only
// thread) and makes the Verification checks, failing with 77 if any does
// not hold. USER, LOGNAME and HOME are set in the program's environment.
// With ambient capabilities to keep, or in a plan followed by a Go daemon,
// the stage declines and runs in the daemon.
func (st *Stage) Plan(s *stages.State, p *stages.Plan) error {
	c := &s.Config
	if !c.DropConfigured() || s.Dropped {
		return nil
	}
	if !st.CanPlan(s, p.Final) {
		return stages.ErrNoRawForm
	}
	t, err := Resolve(c.User, c.Group)
	if err != nil {
		return err
	}
	// The files go to the target in the daemon child, after the lock,
	// through the descriptors the stages opened and checked (as chownAll
	// does, by the same rules: see the OpChown step).
	files := s.ChownFiles
	p.OnDone(func() error { s.CloseChownFiles(); return nil })
	if c.ChownPaths && !s.Chowned {
		if err := planChown(s, p, files, t); err != nil {
			return err
		}
	}
	checks := Verification(t)
	p.Add(stages.Op{Kind: stages.OpDrop, Cred: stages.Cred{UID: t.UID, GID: t.GID, Groups: t.Groups, Verify: checks},
		Explain: func(errno syscall.Errno) error {
			if i := int(errno) - verifyErrno; i >= 0 && i < len(checks) {
				return fatal("after dropping to %s: %s", t, describeCheck(checks[i]))
			}
			return fatal("switching to %s: %w", t, errno)
		}})
	if t.UID >= 0 {
		p.Setenv("USER", t.Name)
		p.Setenv("LOGNAME", t.Name)
		p.Setenv("HOME", t.Home)
	}
	return nil
}

// planChown adds a step handing each of files to t, refusing here (73)
// the pidfile, and a recorded path without a descriptor (declined: the Go
// stage reopens those).
func planChown(s *stages.State, p *stages.Plan, files []*os.File, t Target) error {
	check := notPidfile(s, t)
	have := map[string]bool{}
	for _, f := range files {
		have[filepath.Clean(f.Name())] = true
	}
	for _, path := range s.ChownPaths {
		if !have[filepath.Clean(path)] {
			return stages.ErrNoRawForm
		}
	}
	done := map[string]bool{}
	for _, f := range files {
		path := filepath.Clean(f.Name())
		if done[path] {
			continue
		}
		done[path] = true
		if err := check(int(f.Fd()), path); err != nil {
			return err
		}
		p.Add(stages.Op{Kind: stages.OpChown, File: f, Cred: stages.Cred{UID: t.UID, GID: t.GID},
			Explain: func(errno syscall.Errno) error {
				if errno == syscall.EMLINK {
					return stages.Errorf(stageName, stages.ExitCantCreate, "refusing %s: it has more than one hard link (its other names may be files root must not hand over)", path)
				}
				return stages.Errorf(stageName, stages.ExitCantCreate, "handing %s to %s: %w", path, t, &os.PathError{Op: "fchown", Path: path, Err: errno})
			}})
	}
	return nil
}

// CanPlan reports whether Plan would plan: in a Final plan, unless
// capabilities are to be kept.
func (st *Stage) CanPlan(s *stages.State, final bool) bool {
	return final && st.plannable(s)
}
