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
//  2. Chown: hand the output files and a standalone lockfile to the target
//     user and group, unless Config.ChownPaths is false or Chown already
//     ran. The owner changes through the descriptors the output and pidfile
//     stages opened and checked (State.ChownFiles, fchown(2)), never by
//     path; a path recorded without a descriptor (State.ChownPaths) is
//     opened again under the same rules (package internal/safefile,
//     docs/security.md: no symbolic link as the last component, no file
//     with other hard links). The pidfile is never handed over: a pidfile
//     owned by the daemon would let a compromised daemon aim root's kill(1)
//     at any process. Only regular files are changed; a device such as
//     /dev/null or a named pipe given as an output file keeps its owner. A
//     failed or refused chown is exit code 73 and happens before any id
//     changes, so the process is still fully root and may report it.
//  3. setgroups, setgid, setuid (real, effective and saved ids), through
//     package syscall, whose set*id calls act on every thread of the
//     process on Linux. (golang.org/x/sys/unix.Setgroups is a raw system
//     call that changes the calling thread only: never use it for this.)
//     With Config.AmbientCaps (blivet.WithAmbientCaps), on Linux, those
//     capabilities are kept across the setuid: see "Keeping capabilities".
//  4. Check: every thread's real, effective, saved and filesystem uid and
//     gid and its supplementary groups are the target's (Linux reads
//     /proc/self/task/*/status), no capabilities are left but the ones
//     asked for, and an attempt to regain uid 0 and gid 0 fails.
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
// looked up when the drop runs, not when options are validated.
//
// # Where a lookup goes, and what it costs
//
// Lookups are pure Go (the package does not use os/user, so importing it
// never forces cgo: a program built with plain go build stays statically
// linked):
//
//  1. /etc/passwd and /etc/group are read on every lookup (no cache). The
//     first entry with the name or id wins; comments, blank and malformed
//     lines and NIS compat lines ('+' or '-') are skipped. The user's
//     supplementary groups are the groups that list its name, plus its
//     primary group. Cost: tens of microseconds, mostly the system calls
//     reading three small files (passwd, group, nsswitch.conf); about the
//     same as the C library's lookup (BenchmarkResolve).
//  2. A name or id not found there is asked of the system's NSS
//     configuration by running getent(1) (`getent passwd NAME|ID`,
//     `getent group NAME|ID`), found in PATH, then /usr/bin and /bin. This
//     honours nsswitch.conf: LDAP, sssd, winbind, systemd's userdb (for
//     example DynamicUser= users). For such a user the supplementary
//     groups also come from `getent initgroups NAME`. Cost: a fork and
//     exec per getent run, 1 to 3 ms, plus what the directory service
//     takes (BenchmarkResolveGetent, BenchmarkResolveRealGetent); a
//     getent that does not answer within 30 seconds is an error (67).
//  3. `getent initgroups` is also asked for a user found in /etc/passwd
//     when nsswitch.conf's initgroups (or group) line names a source other
//     than files, compat and systemd (sss, ldap, winbind, extrausers, ...),
//     so such a user keeps its directory groups. With only files, compat
//     and systemd there, nothing is run for a local user.
//
// getent exiting 2 means "not found" (exit code 67); any other failure of
// getent is reported as such (also 67, with the cause), never taken for
// "not found". Without a getent program the files are the whole database.
// A name that the files and NSS both define resolves to the files' entry.
//
// Resolve before anything that could make the databases unreadable (a
// chroot, a mount namespace): Drop takes a resolved Target for that
// reason.
//
// # Keeping capabilities
//
// Config.AmbientCaps (blivet.WithAmbientCaps, the CLI's --cap) names Linux
// capabilities the daemon keeps after the switch to Config.User, for
// example net_bind_service to bind port 80 as nobody. On every thread:
// PR_SET_KEEPCAPS before setresuid; after it, the permitted, effective and
// inheritable sets are set to exactly those capabilities (capset) and each
// is raised in the ambient set (PR_CAP_AMBIENT_RAISE), so a program the
// daemon executes keeps them too; the bounding set is left alone. Check
// then requires the permitted, effective, inheritable and ambient sets of
// every thread to be exactly those capabilities, and still that uid 0 and
// gid 0 cannot be regained; setuid and setgid are therefore refused.
//
// Capabilities belong to threads, and Go can change every thread only
// through syscall.AllThreadsSyscall, which a program linked with cgo (a
// -race build, or package net with cgo available) cannot use. There, and
// on systems other than Linux, ParseCapabilities and option validation
// return a usage error (64) saying so; a drop to root or without a user
// keeping capabilities is 64 too. Build with CGO_ENABLED=0, or with
// -tags netgo when net is what brings cgo in.
//
// # Exit codes
//
// An unknown user or group is 67. A failed chown is 73. An unusable
// capability request is 64. A failed setgroups, setgid or setuid, a failed
// capability change, or a failed check, is 77. Once any id has changed, a
// failure is marked Fatal: the pipeline reports it and ends the process
// rather than run half-dropped, even when the drop was started by
// Context.DropPrivileges.
package privdrop

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/safefile"
	"github.com/blivet-go/blivet/stages"
)

// errIsPidfile refuses to hand the pidfile over (see the pidfile package).
var errIsPidfile = errors.New("it is the pidfile, which stays with the user that created it")

const stageName = "privdrop"

// Stage is the privilege-drop stage. It reads Config.User, Config.Group,
// Config.ChownPaths and Config.AmbientCaps, and does nothing when neither
// a user nor a group is configured.
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
	caps, err := ParseCapabilities(c.AmbientCaps...)
	if err != nil {
		return err
	}
	t, err := Resolve(c.User, c.Group)
	if err != nil {
		return err
	}
	t.Caps = caps
	if c.ChownPaths && !s.Chowned {
		if err := chownAll(s, t); err != nil {
			return err
		}
	}
	// Whatever was handed over (or not), the descriptors kept for it are
	// not needed any more.
	s.CloseChownFiles()
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
// a path that names the same file as the pidfile is refused. The files are
// changed through the descriptors in s.ChownFiles (closed afterwards), and
// a path in s.ChownPaths without one is reopened under the rules of
// docs/security.md: a symbolic link as its last component or a file with
// several hard links is refused (73), nothing is created or truncated.
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

// notPidfile returns the check both forms of the hand-over make on each
// descriptor before it changes owner: it must not be the pidfile (73).
func notPidfile(s *stages.State, t Target) func(fd int, path string) error {
	var pid unix.Stat_t
	havePid := s.Config.Pidfile != "" && unix.Stat(s.Config.Pidfile, &pid) == nil
	return func(fd int, path string) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return stages.Errorf(stageName, stages.ExitCantCreate, "handing %s to %s: %w", path, t, &os.PathError{Op: "fstat", Path: path, Err: err})
		}
		if havePid && st.Dev == pid.Dev && st.Ino == pid.Ino {
			return stages.Errorf(stageName, stages.ExitCantCreate, "handing %s to %s: %w", path, t, errIsPidfile)
		}
		return nil
	}
}

func chownAll(s *stages.State, t Target) error {
	defer s.CloseChownFiles()
	check := notPidfile(s, t)
	done := map[string]bool{}
	hand := func(fd int, p string) error {
		if err := check(fd, p); err != nil {
			return err
		}
		_, err := safefile.Chown(fd, p, t.UID, t.GID, stageName)
		return err
	}
	// The descriptors the stages opened and checked are the files changed.
	for _, f := range s.ChownFiles {
		p := filepath.Clean(f.Name())
		if done[p] {
			continue
		}
		done[p] = true
		if err := hand(int(f.Fd()), p); err != nil {
			return err
		}
	}
	// A path recorded without its descriptor is opened again under the
	// same rules (never following its last component, refusing other
	// names), read-only and without creating or truncating anything.
	for _, p := range s.ChownPaths {
		p = filepath.Clean(p)
		if done[p] {
			continue
		}
		done[p] = true
		f, err := safefile.Open(p, safefile.Spec{
			Stage:  stageName,
			What:   "file to hand over",
			Access: unix.O_RDONLY,
			Allow:  safefile.Regular | safefile.FIFO | safefile.DevNull,
		})
		if err != nil {
			return err
		}
		err = hand(f.FD, p)
		f.Close()
		if err != nil {
			return err
		}
	}
	s.Chowned = true
	return nil
}

// Drop switches the process to t: supplementary groups, gid, then uid
// (when t has one), all through package syscall so every thread changes.
// It then checks the result with Check and, after a user switch, sets
// USER, LOGNAME and HOME. With t.Caps (Linux, no cgo) those capabilities
// are kept, as the package documentation describes; a t.Caps that cannot
// be kept (a root target, another system) is 64 before anything changes.
// A failure before any id changed is an error with exit code 77; a failure
// after is the same, marked Fatal.
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
