package privdrop

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/blivet-go/blivet/internal/userdb"
	"github.com/blivet-go/blivet/stages"
)

// Target is a resolved privilege-drop target: the ids the process switches
// to and the environment it gets.
type Target struct {
	// UID is the user id to switch to, or -1 when only a group was given
	// (the uid stays).
	UID int
	// GID is the group id to switch to.
	GID int
	// Groups are the supplementary groups to set, sorted and without
	// duplicates; empty means cleared.
	Groups []int
	// Name is the value of USER and LOGNAME after a user switch: the
	// passwd name, or the uid in decimal when it has no passwd entry.
	Name string
	// Home is the value of HOME after a user switch: the passwd home
	// directory, or "/" when there is none.
	Home string
	// Caps are Linux capability numbers (see ParseCapabilities) kept
	// across a switch to a user other than root: afterwards the
	// permitted, effective, inheritable and ambient sets are exactly
	// these. Empty: no capability is left. Resolve leaves it empty; the
	// stage sets it from Config.AmbientCaps.
	Caps []int

	desc string
}

// String describes the target for messages, e.g. "user nobody (uid
// 65534), group nogroup (gid 65534)", followed by ", keeping
// cap_net_bind_service" when Caps are set.
func (t Target) String() string {
	if len(t.Caps) > 0 {
		return t.desc + ", keeping " + capList(t.Caps)
	}
	return t.desc
}

// Resolve turns the configured user and group (names, or strings of digits
// for ids) into a Target, following the rules in the package
// documentation. Names and ids are looked up in /etc/passwd and
// /etc/group, then, when not found there, through getent(1) (the system's
// NSS); see the package documentation for where a lookup goes and what it
// costs. An unknown user or group, or a uid without a passwd entry and no
// group given, is an error with exit code 67; an id out of range is 64.
func Resolve(userSpec, groupSpec string) (Target, error) {
	return resolve(userdb.System(), userSpec, groupSpec)
}

func resolve(db *userdb.DB, userSpec, groupSpec string) (Target, error) {
	t := Target{UID: -1, GID: -1}
	if userSpec == "" && groupSpec == "" {
		return t, stages.Errorf(stageName, stages.ExitUsage, "no user or group to drop to")
	}
	var descs []string
	if groupSpec != "" {
		gid, name, err := lookupGroup(db, groupSpec)
		if err != nil {
			return t, err
		}
		t.GID = gid
		descs = append(descs, "group "+name)
	}
	if userSpec != "" {
		u, uid, err := lookupUser(db, userSpec, groupSpec != "")
		if err != nil {
			return t, err
		}
		t.UID = uid
		if u == nil {
			// A bare uid, allowed with a group: no supplementary groups.
			t.Name, t.Home = strconv.Itoa(uid), "/"
			descs = append([]string{fmt.Sprintf("uid %d (no passwd entry)", uid)}, descs...)
		} else {
			t.Name, t.Home = u.Name, u.Home
			if t.Home == "" {
				t.Home = "/"
			}
			if t.GID < 0 {
				t.GID = u.GID
				descs = append(descs, fmt.Sprintf("primary gid %d", u.GID))
			}
			if t.Groups, err = db.GroupIDs(*u); err != nil {
				return t, stages.Errorf(stageName, stages.ExitNoUser, "listing the groups of user %s in %s: %w", u.Name, db.Describe("group"), err)
			}
			descs = append([]string{fmt.Sprintf("user %s (uid %d)", u.Name, uid)}, descs...)
		}
	}
	for i, d := range descs {
		if i > 0 {
			t.desc += ", "
		}
		t.desc += d
	}
	return t, nil
}

// parseID returns the id a string of digits names, and ok=false for
// anything else (a name).
func parseID(kind, s string) (id int, ok bool, err error) {
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 { // (uid_t)-1 means "unchanged" to the kernel
		return 0, true, stages.Errorf(stageName, stages.ExitUsage, "%s id %s is out of range", kind, s)
	}
	return int(n), true, nil
}

// lookupUser resolves spec. It returns a nil *userdb.User for a numeric
// uid without a passwd entry, which is allowed only when withGroup.
func lookupUser(db *userdb.DB, spec string, withGroup bool) (*userdb.User, int, error) {
	uid, numeric, err := parseID("user", spec)
	if err != nil {
		return nil, 0, err
	}
	var u userdb.User
	if numeric {
		u, err = db.LookupUserID(uid)
	} else {
		u, err = db.LookupUser(spec)
	}
	switch {
	case numeric && errors.Is(err, userdb.ErrNotFound):
		if !withGroup {
			return nil, 0, stages.Errorf(stageName, stages.ExitNoUser,
				"uid %d has no entry in %s: give a group too (WithGroup) to run as a bare uid", uid, db.Describe("passwd"))
		}
		return nil, uid, nil
	case errors.Is(err, userdb.ErrNotFound):
		return nil, 0, stages.Errorf(stageName, stages.ExitNoUser, "user %q not found in %s", spec, db.Describe("passwd"))
	case err != nil:
		return nil, 0, stages.Errorf(stageName, stages.ExitNoUser, "user %q: looking it up: %w", spec, err)
	}
	return &u, u.UID, nil
}

// lookupGroup resolves spec to a gid and a description. A numeric gid is
// used as is (it needs no group entry); its name is looked up only for
// messages.
func lookupGroup(db *userdb.DB, spec string) (int, string, error) {
	gid, numeric, err := parseID("group", spec)
	if err != nil {
		return 0, "", err
	}
	if numeric {
		if g, err := db.LookupGroupID(gid); err == nil {
			return gid, fmt.Sprintf("%s (gid %d)", g.Name, gid), nil
		}
		return gid, fmt.Sprintf("gid %d", gid), nil
	}
	g, err := db.LookupGroup(spec)
	switch {
	case errors.Is(err, userdb.ErrNotFound):
		return 0, "", stages.Errorf(stageName, stages.ExitNoUser, "group %q not found in %s", spec, db.Describe("group"))
	case err != nil:
		return 0, "", stages.Errorf(stageName, stages.ExitNoUser, "group %q: looking it up: %w", spec, err)
	}
	return g.GID, fmt.Sprintf("%s (gid %d)", g.Name, g.GID), nil
}
