package privdrop

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"

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

	desc string
}

// String describes the target for messages, e.g. "user nobody (uid
// 65534), group nogroup (gid 65534)".
func (t Target) String() string { return t.desc }

// Resolve turns the configured user and group (names, or strings of digits
// for ids) into a Target, following the rules in the package
// documentation. Names are looked up in the user and group databases: with
// cgo through the C library (the system's NSS), without cgo (or with the
// osusergo build tag) in /etc/passwd and /etc/group only. An unknown user
// or group, or a uid without a passwd entry and no group given, is an
// error with exit code 67; an id out of range is 64.
func Resolve(userSpec, groupSpec string) (Target, error) {
	t := Target{UID: -1, GID: -1}
	if userSpec == "" && groupSpec == "" {
		return t, stages.Errorf(stageName, stages.ExitUsage, "no user or group to drop to")
	}
	var descs []string
	if groupSpec != "" {
		gid, name, err := lookupGroup(groupSpec)
		if err != nil {
			return t, err
		}
		t.GID = gid
		descs = append(descs, "group "+name)
	}
	if userSpec != "" {
		u, uid, err := lookupUser(userSpec, groupSpec != "")
		if err != nil {
			return t, err
		}
		t.UID = uid
		if u == nil {
			// A bare uid, allowed with a group: no supplementary groups.
			t.Name, t.Home = strconv.Itoa(uid), "/"
			descs = append([]string{fmt.Sprintf("uid %d (no passwd entry)", uid)}, descs...)
		} else {
			t.Name, t.Home = u.Username, u.HomeDir
			if t.Home == "" {
				t.Home = "/"
			}
			primary, err := strconv.Atoi(u.Gid)
			if err != nil {
				return t, stages.Errorf(stageName, stages.ExitNoUser, "user %s: primary group %q is not a number", u.Username, u.Gid)
			}
			if t.GID < 0 {
				t.GID = primary
				descs = append(descs, fmt.Sprintf("primary gid %d", primary))
			}
			ids, err := u.GroupIds()
			if err != nil {
				return t, stages.Errorf(stageName, stages.ExitNoUser, "listing the groups of user %s in %s: %w", u.Username, groupSource, err)
			}
			t.Groups = append(t.Groups, primary)
			for _, s := range ids {
				g, err := strconv.Atoi(s)
				if err != nil {
					return t, stages.Errorf(stageName, stages.ExitNoUser, "user %s: group id %q is not a number", u.Username, s)
				}
				t.Groups = append(t.Groups, g)
			}
			slices.Sort(t.Groups)
			t.Groups = slices.Compact(t.Groups)
			descs = append([]string{fmt.Sprintf("user %s (uid %d)", u.Username, uid)}, descs...)
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

// lookupUser resolves spec. It returns a nil *user.User for a numeric uid
// without a passwd entry, which is allowed only when withGroup.
func lookupUser(spec string, withGroup bool) (*user.User, int, error) {
	uid, numeric, err := parseID("user", spec)
	if err != nil {
		return nil, 0, err
	}
	var u *user.User
	if numeric {
		u, err = user.LookupId(spec)
	} else {
		u, err = user.Lookup(spec)
	}
	var unknownID user.UnknownUserIdError
	switch {
	case numeric && errors.As(err, &unknownID):
		if !withGroup {
			return nil, 0, stages.Errorf(stageName, stages.ExitNoUser,
				"uid %d has no entry in %s: give a group too (WithGroup) to run as a bare uid", uid, userSource)
		}
		return nil, uid, nil
	case err != nil:
		return nil, 0, stages.Errorf(stageName, stages.ExitNoUser, "user %q not found in %s: %w", spec, userSource, err)
	}
	if !numeric {
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return nil, 0, stages.Errorf(stageName, stages.ExitNoUser, "user %s: uid %q is not a number", spec, u.Uid)
		}
	}
	return u, uid, nil
}

// lookupGroup resolves spec to a gid and a description. A numeric gid is
// used as is (it needs no group entry); its name is looked up only for
// messages.
func lookupGroup(spec string) (int, string, error) {
	gid, numeric, err := parseID("group", spec)
	if err != nil {
		return 0, "", err
	}
	if numeric {
		if g, err := user.LookupGroupId(spec); err == nil {
			return gid, fmt.Sprintf("%s (gid %d)", g.Name, gid), nil
		}
		return gid, fmt.Sprintf("gid %d", gid), nil
	}
	g, err := user.LookupGroup(spec)
	if err != nil {
		return 0, "", stages.Errorf(stageName, stages.ExitNoUser, "group %q not found in %s: %w", spec, groupSource, err)
	}
	if gid, err = strconv.Atoi(g.Gid); err != nil {
		return 0, "", stages.Errorf(stageName, stages.ExitNoUser, "group %s: gid %q is not a number", spec, g.Gid)
	}
	return gid, fmt.Sprintf("%s (gid %d)", g.Name, gid), nil
}
