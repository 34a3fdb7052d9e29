// Package privdrop provides blivet's privilege-drop stage: a daemon started
// as root does its privileged initialisation (binding ports below 1024,
// opening protected files), hands the files it writes to an unprivileged
// user, and becomes that user, irreversibly.
//
// # Order
//
// The stage runs, in the daemon:
//
//  1. Resolve the configured user and group (see Resolve).
//  2. Chown: hand the output files and a standalone lockfile
//     (State.ChownPaths) to the target user and group, unless
//     Config.ChownPaths is false or Chown already ran. The pidfile is never
//     handed over: a pidfile owned by the daemon would let a compromised
//     daemon aim root's kill(1) at any process. Only regular files are
//     changed; a device such as /dev/null given as an output file keeps its
//     owner. A failed chown is exit code 73 and happens before any id
//     changes, so the process is still fully root and may report it.
//  3. setgroups, setgid, setuid (real, effective and saved ids), through
//     package syscall, whose set*id calls act on every thread of the
//     process on Linux. (golang.org/x/sys/unix.Setgroups is a raw system
//     call that changes the calling thread only: never use it for this.)
//  4. Check: every thread's real, effective, saved and filesystem uid and
//     gid and its supplementary groups are the target's (Linux reads
//     /proc/self/task/*/status), no capabilities are left, and an attempt
//     to regain uid 0 and gid 0 fails.
//  5. After a user switch, USER, LOGNAME and HOME are set from the passwd
//     entry, overriding any blivet.WithEnv values for them.
//
// # Which ids
//
//   - User only: the gid is the user's primary group; the supplementary
//     groups are the user's groups in the group database plus the primary
//     group, as initgroups(3) sets them.
//   - User and group: the gid is the given group; the supplementary groups
//     are the user's, as above.
//   - Group only: the supplementary groups are cleared and the gid set; the
//     uid stays (the process remains root).
//   - A numeric uid without a passwd entry: allowed only together with a
//     group; the supplementary groups are cleared, USER and LOGNAME are the
//     number and HOME is "/".
//
// A string of digits is always an id, never looked up as a name. Names are
// looked up when the drop runs, not when options are validated: with cgo
// (the default when a C compiler is present) through the C library, so
// through the system's NSS configuration (LDAP, systemd-userdb, ...);
// built without cgo, or with the osusergo tag, only /etc/passwd and
// /etc/group are read.
//
// # Exit codes
//
// An unknown user or group is 67. A failed chown is 73. A failed setgroups,
// setgid or setuid, or a failed check, is 77. Once any id has changed, a
// failure is marked Fatal: the pipeline reports it and ends the process
// rather than run half-dropped, even when the drop was started by
// Context.DropPrivileges.
package privdrop

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet/stages"
)

const stageName = "privdrop"

// Stage is the privilege-drop stage. It reads Config.User, Config.Group and
// Config.ChownPaths, and does nothing when neither a user nor a group is
// configured.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the privdrop stage.
func New() *Stage { return &Stage{} }

// Name returns "privdrop".
func (*Stage) Name() string { return stageName }

// Run resolves the target, chowns State.ChownPaths (unless disabled or
// already done), drops to the target and checks the drop is irreversible.
// It sets State.Dropped on success. See the package documentation for the
// order and exit codes.
func (*Stage) Run(s *stages.State) error {
	c := &s.Config
	if !c.DropConfigured() || s.Dropped {
		return nil
	}
	if s.Inherited != nil && s.Inherited.Dropped { // upgrade: verify (inherited.go)
		return verifyInherited(s)
	}
	t, err := Resolve(c.User, c.Group)
	if err != nil {
		return err
	}
	if c.ChownPaths && !s.Chowned {
		if err := chownAll(s, t); err != nil {
			return err
		}
	}
	if err := Drop(t); err != nil {
		return err
	}
	s.Dropped = true
	return nil
}

// Chown hands s.ChownPaths (the output files and a standalone lockfile,
// never the pidfile) to the configured user and group, and sets s.Chowned.
// It does nothing when no drop is configured or it already ran, and it
// ignores Config.ChownPaths: calling it is the explicit request. Only
// regular files are changed (a device like /dev/null keeps its owner), and
// a path that names the same file as the pidfile is refused. Paths are
// followed through symbolic links, as the output stage opened them.
//
// Any failure is exit code 73 (67 for an unknown user or group); the ids
// of the process are not touched, whatever happens.
func Chown(s *stages.State) error {
	if s.Chowned || !s.Config.DropConfigured() {
		return nil
	}
	t, err := Resolve(s.Config.User, s.Config.Group)
	if err != nil {
		return err
	}
	return chownAll(s, t)
}

func chownAll(s *stages.State, t Target) error {
	var pidfile os.FileInfo
	if s.Config.Pidfile != "" {
		pidfile, _ = os.Stat(s.Config.Pidfile)
	}
	done := map[string]bool{}
	for _, p := range s.ChownPaths {
		p = filepath.Clean(p)
		if done[p] {
			continue
		}
		done[p] = true
		if err := chownRegular(p, t.UID, t.GID, pidfile); err != nil {
			var e *stages.Error
			if errors.As(err, &e) {
				return err
			}
			return stages.Errorf(stageName, stages.ExitCantCreate, "handing %s to %s: %w", p, t, err)
		}
	}
	s.Chowned = true
	return nil
}

// Drop switches the process to t: supplementary groups, gid, then uid
// (when t has one), all through package syscall so every thread changes.
// It then checks the result with Check and, after a user switch, sets
// USER, LOGNAME and HOME. A failure before any id changed is an error with
// exit code 77; a failure after is the same, marked Fatal.
func Drop(t Target) error {
	if err := setIDs(t); err != nil {
		return err
	}
	if err := Check(t); err != nil {
		return err
	}
	if t.UID >= 0 {
		for _, kv := range [][2]string{{"USER", t.Name}, {"LOGNAME", t.Name}, {"HOME", t.Home}} {
			if err := os.Setenv(kv[0], kv[1]); err != nil {
				return fatal("setting %s after the drop: %w", kv[0], err)
			}
		}
	}
	return nil
}

// fatal returns a Fatal 77 for a failure after an id changed.
func fatal(format string, args ...any) error {
	e := stages.Errorf(stageName, stages.ExitNoPerm, format, args...)
	e.Fatal = true
	return e
}
