// Package userdb resolves users and groups without cgo: it reads
// /etc/passwd and /etc/group itself and, for a name or id not found there,
// asks the system's NSS configuration through getent(1), which follows
// nsswitch.conf (LDAP, sssd, systemd's userdb, ...).
//
// Where a lookup goes:
//
//  1. The files, read in full on every lookup (no cache): the first entry
//     with the name or id wins. Comment lines, blank lines, malformed
//     lines and NIS compat lines (starting with '+' or '-') are skipped,
//     as the C library's files backend does.
//  2. Only on a miss, `getent passwd|group NAME|ID`, when a getent
//     program is found (PATH, then /usr/bin and /bin). getent exiting 2
//     means "not found"; any other failure is an error, never a silent
//     "not found", so a broken directory service cannot turn a known user
//     into an unknown one. Without getent the files are the whole
//     database.
//
// A user's supplementary groups are the groups in /etc/group that list
// its name, plus its primary group. For a user that came from getent, or
// when nsswitch.conf names a group source other than files, compat and
// systemd (sss, ldap, winbind, extrausers, ...), `getent initgroups NAME`
// is asked too and its groups are added.
//
// Reading the files costs tens of microseconds, mostly system calls; a
// getent run costs a fork and exec, 1 to 3 ms, plus whatever the
// directory service takes.
package userdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotFound is returned (wrapped) when neither the files nor getent
// know a name or id.
var ErrNotFound = errors.New("not found")

// User is one passwd entry.
type User struct {
	Name string
	UID  int
	GID  int // primary group
	Home string
	// Source is where the entry came from: the passwd file's path, or
	// "getent passwd".
	Source string
}

// Group is one group entry.
type Group struct {
	Name    string
	GID     int
	Members []string
	// Source is the group file's path, or "getent group".
	Source string
}

// DB says where lookups go. The zero value is not usable; System returns
// the system's.
type DB struct {
	// Passwd and Group are the files read first.
	Passwd, Group string
	// NSSwitch is the nsswitch.conf read to decide whether a files user's
	// groups need `getent initgroups`; "" or a missing file means they do
	// not.
	NSSwitch string
	// Getent is the getent program. "" searches PATH, then /usr/bin and
	// /bin; "-" disables the fallback (the files are the whole database).
	Getent string
	// Timeout bounds one getent run; 0 means 30 seconds.
	Timeout time.Duration
}

// System returns the system's database: /etc/passwd, /etc/group,
// /etc/nsswitch.conf and getent from PATH.
func System() *DB {
	return &DB{Passwd: "/etc/passwd", Group: "/etc/group", NSSwitch: "/etc/nsswitch.conf"}
}

// Describe says where a lookup of kind ("passwd" or "group") goes, for
// messages: "/etc/passwd or getent passwd (NSS)".
func (db *DB) Describe(kind string) string {
	file := db.Passwd
	if kind == "group" {
		file = db.Group
	}
	if _, err := db.getent(); err != nil {
		return file + " (no getent for NSS)"
	}
	return file + " or getent " + kind + " (NSS)"
}

// LookupUser finds a user by name. In the files the name must match
// exactly; from getent the entry NSS returns is taken as it is, as
// getpwnam(3) would (a directory may match names without regard to case).
func (db *DB) LookupUser(name string) (User, error) {
	if name == "" {
		return User{}, fmt.Errorf("empty user name: %w", ErrNotFound)
	}
	return db.lookupUser(name, -1)
}

// LookupUserID finds a user by uid.
func (db *DB) LookupUserID(uid int) (User, error) {
	if uid < 0 {
		return User{}, fmt.Errorf("uid %d: %w", uid, ErrNotFound)
	}
	return db.lookupUser("", uid)
}

// LookupGroup finds a group by name, matched as LookupUser matches users.
func (db *DB) LookupGroup(name string) (Group, error) {
	if name == "" {
		return Group{}, fmt.Errorf("empty group name: %w", ErrNotFound)
	}
	return db.lookupGroup(name, -1)
}

// LookupGroupID finds a group by gid.
func (db *DB) LookupGroupID(gid int) (Group, error) {
	if gid < 0 {
		return Group{}, fmt.Errorf("gid %d: %w", gid, ErrNotFound)
	}
	return db.lookupGroup("", gid)
}

func (db *DB) lookupUser(name string, uid int) (User, error) {
	key := keyOf(name, uid)
	var found User
	ok := false
	err := scanFile(db.Passwd, func(line []byte) bool {
		if name != "" && !hasName(line, name) {
			return true
		}
		u, valid := parsePasswd(line)
		if valid && (name != "" && u.Name == name || name == "" && u.UID == uid) {
			found, ok = u, true
			return false
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return User{}, err
	}
	if ok {
		found.Source = db.Passwd
		return found, nil
	}
	if !validKey(name) {
		return User{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	out, err := db.run("passwd", key)
	if err != nil {
		return User{}, err
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		u, valid := parsePasswd(line)
		if valid && (name != "" || u.UID == uid) {
			u.Source = "getent passwd"
			return u, nil
		}
	}
	return User{}, fmt.Errorf("getent passwd %s: no matching entry in its output %q", key, firstLine(out))
}

func (db *DB) lookupGroup(name string, gid int) (Group, error) {
	key := keyOf(name, gid)
	var found Group
	ok := false
	err := scanFile(db.Group, func(line []byte) bool {
		if name != "" && !hasName(line, name) {
			return true
		}
		g, valid := parseGroup(line)
		if valid && (name != "" && g.Name == name || name == "" && g.GID == gid) {
			found, ok = g, true
			return false
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Group{}, err
	}
	if ok {
		found.Source = db.Group
		return found, nil
	}
	if !validKey(name) {
		return Group{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	out, err := db.run("group", key)
	if err != nil {
		return Group{}, err
	}
	for _, line := range bytes.Split(out, []byte("\n")) {
		g, valid := parseGroup(line)
		if valid && (name != "" || g.GID == gid) {
			g.Source = "getent group"
			return g, nil
		}
	}
	return Group{}, fmt.Errorf("getent group %s: no matching entry in its output %q", key, firstLine(out))
}

// GroupIDs returns u's supplementary groups as initgroups(3) would set
// them: the groups of the group file listing u.Name, u.GID, and the groups
// `getent initgroups` gives when u came from getent or nsswitch.conf names
// a non-local group source. Sorted, without duplicates.
func (db *DB) GroupIDs(u User) ([]int, error) {
	ids := []int{u.GID}
	err := scanFile(db.Group, func(line []byte) bool {
		if gid, ok := memberOf(line, u.Name); ok {
			ids = append(ids, gid)
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if u.Source != db.Passwd || db.remoteGroups() {
		more, err := db.initgroups(u.Name)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// initgroups runs `getent initgroups NAME`, which prints the name and then
// the gids NSS gives (the primary group is not asked for, so not always
// among them). Without getent it returns nothing.
func (db *DB) initgroups(name string) ([]int, error) {
	if !validKey(name) {
		return nil, nil
	}
	if _, err := db.getent(); err != nil {
		return nil, nil
	}
	out, err := db.run("initgroups", name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(out))
	if len(f) == 0 || f[0] != name {
		return nil, fmt.Errorf("getent initgroups %s: unexpected output %q", name, firstLine(out))
	}
	var ids []int
	for _, s := range f[1:] {
		id, ok := parseID([]byte(s))
		if !ok {
			return nil, fmt.Errorf("getent initgroups %s: %q is not a group id", name, s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// remoteGroups reports whether nsswitch.conf's initgroups line (or, when
// there is none, its group line) names a source other than files, compat
// and systemd.
func (db *DB) remoteGroups() bool {
	if db.NSSwitch == "" {
		return false
	}
	var group, initgroups []string
	haveInit := false
	_ = scanFile(db.NSSwitch, func(line []byte) bool {
		line = bytes.TrimLeft(line, " \t")
		if !bytes.HasPrefix(line, []byte("group")) && !bytes.HasPrefix(line, []byte("initgroups")) {
			return true
		}
		s, _, _ := strings.Cut(string(line), "#")
		key, val, ok := strings.Cut(s, ":")
		if !ok {
			return true
		}
		var srcs []string
		for _, w := range strings.Fields(val) {
			if !strings.HasPrefix(w, "[") && !strings.HasSuffix(w, "]") && !strings.Contains(w, "=") {
				srcs = append(srcs, w)
			}
		}
		switch strings.TrimSpace(key) {
		case "group":
			group = srcs
		case "initgroups":
			initgroups, haveInit = srcs, true
		}
		return true
	})
	if haveInit {
		group = initgroups
	}
	for _, s := range group {
		switch s {
		case "files", "compat", "systemd":
		default:
			return true
		}
	}
	return false
}

func keyOf(name string, id int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(id)
}

// validKey reports whether name may be handed to getent: not empty, no
// leading '-' (an option), no ':' or whitespace (never in an entry).
func validKey(name string) bool {
	if name == "" {
		return true // an id
	}
	return name[0] != '-' && !strings.ContainsAny(name, ": \t\n\r\x00")
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

var errNoGetent = errors.New("no getent program")

// getent returns the getent program to run.
func (db *DB) getent() (string, error) {
	switch db.Getent {
	case "-":
		return "", errNoGetent
	case "":
	default:
		return db.Getent, nil
	}
	if p, err := exec.LookPath("getent"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/getent", "/bin/getent"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errNoGetent
}

// run runs `getent DB KEY` and returns its output. Exit status 2 (key not
// found) and the absence of getent are ErrNotFound; anything else is an
// error saying what went wrong.
func (db *DB) run(database, key string) ([]byte, error) {
	prog, err := db.getent()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	timeout := db.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, database, key)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second // a child of getent keeping the pipes open
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s %s %s: no answer within %v", prog, database, key, timeout)
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return nil, fmt.Errorf("%s %s %s: %w (%s)", prog, database, key, err, firstLine([]byte(msg)))
		}
		return nil, fmt.Errorf("%s %s %s: %w", prog, database, key, err)
	}
	return out, nil
}

// scanFile calls fn with each line of path (without its newline, of any
// length) until fn returns false. The files are small and read whole.
func scanFile(path string, fn func(line []byte) bool) error {
	data, err := readFile(path)
	if err != nil {
		return err
	}
	scanLines(data, fn)
	return nil
}

// readFile is os.ReadFile in fewer system calls (no fstat, no poller
// registration): open, read until end of file, close. Syscalls dominate
// the cost of a lookup.
func readFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func scanLines(data []byte, fn func(line []byte) bool) {
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		if !fn(line) {
			return
		}
		data = rest
	}
}

// skipLine reports whether a line is blank, a comment or an NIS compat
// line (+name, -name, +@netgroup, a lone +).
func skipLine(line []byte) bool {
	return len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-'
}

// parseID parses a decimal id in 0..2^32-2.
func parseID(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return int(n), true
}

// hasName reports whether line's first field (after leading blanks) is
// name: a cheap filter before parsing.
func hasName(line []byte, name string) bool {
	line = bytes.TrimLeft(line, " \t")
	return len(line) > len(name) && line[len(name)] == ':' && string(line[:len(name)]) == name
}

// memberOf returns the gid of a group line that lists name as a member,
// without allocating.
func memberOf(line []byte, name string) (int, bool) {
	line = bytes.TrimLeft(line, " \t")
	if skipLine(line) || bytes.Count(line, []byte(":")) != 3 {
		return 0, false
	}
	i := bytes.LastIndexByte(line, ':')
	members := line[i+1:]
	found := false
	for len(members) > 0 && !found {
		m, rest, _ := bytes.Cut(members, []byte(","))
		found = string(bytes.TrimSpace(m)) == name
		members = rest
	}
	if !found {
		return 0, false
	}
	f := bytes.SplitN(line, []byte(":"), 4)
	if len(f[0]) == 0 {
		return 0, false
	}
	return parseID(f[2])
}

// parsePasswd parses name:password:uid:gid:gecos:home:shell.
func parsePasswd(line []byte) (User, bool) {
	line = bytes.TrimLeft(line, " \t")
	if skipLine(line) {
		return User{}, false
	}
	f := bytes.Split(line, []byte(":"))
	if len(f) != 7 || len(f[0]) == 0 {
		return User{}, false
	}
	uid, ok1 := parseID(f[2])
	gid, ok2 := parseID(f[3])
	if !ok1 || !ok2 {
		return User{}, false
	}
	return User{Name: string(f[0]), UID: uid, GID: gid, Home: string(f[5])}, true
}

// parseGroup parses name:password:gid:member,member.
func parseGroup(line []byte) (Group, bool) {
	line = bytes.TrimLeft(line, " \t")
	if skipLine(line) {
		return Group{}, false
	}
	f := bytes.Split(line, []byte(":"))
	if len(f) != 4 || len(f[0]) == 0 {
		return Group{}, false
	}
	gid, ok := parseID(f[2])
	if !ok {
		return Group{}, false
	}
	g := Group{Name: string(f[0]), GID: gid}
	for _, m := range bytes.Split(f[3], []byte(",")) {
		if m = bytes.TrimSpace(m); len(m) > 0 {
			g.Members = append(g.Members, string(m))
		}
	}
	return g, true
}
