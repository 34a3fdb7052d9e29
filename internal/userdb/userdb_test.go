package userdb

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blivet-go/blivet/internal/exefile"
)

func TestParsePasswd(t *testing.T) {
	for _, c := range []struct {
		line string
		want User
		ok   bool
	}{
		{"alice:x:1000:1001:Alice A,,,:/home/alice:/bin/sh", User{Name: "alice", UID: 1000, GID: 1001, Home: "/home/alice"}, true},
		{"  bob:x:0:0::/:", User{Name: "bob", Home: "/"}, true},
		{"nohome:x:5:6:::/bin/false", User{Name: "nohome", UID: 5, GID: 6}, true},
		{"", User{}, false},
		{"   ", User{}, false},
		{"# alice:x:1000:1000::/home/alice:/bin/sh", User{}, false},
		{"\t#comment", User{}, false},
		{"+alice:x:1000:1000::/home/alice:/bin/sh", User{}, false},
		{"-alice:x:1000:1000::/home/alice:/bin/sh", User{}, false},
		{"+@admins::::::", User{}, false},
		{"+", User{}, false},
		{"alice:x:1000:1000::/home/alice", User{}, false},               // 6 fields
		{"alice:x:1000:1000::/home/alice:/bin/sh:extra", User{}, false}, // 8 fields
		{":x:1000:1000::/:/bin/sh", User{}, false},                      // no name
		{"alice:x:10a0:1000::/:/bin/sh", User{}, false},
		{"alice:x:-1:1000::/:/bin/sh", User{}, false},
		{"alice:x::1000::/:/bin/sh", User{}, false},
		{"alice:x:4294967295:1000::/:/bin/sh", User{}, false}, // (uid_t)-1
		{"alice:x:99999999999:1000::/:/bin/sh", User{}, false},
		{"alice:x:1000:1000x::/:/bin/sh", User{}, false},
	} {
		got, ok := parsePasswd([]byte(c.line))
		if ok != c.ok || ok && got != c.want {
			t.Errorf("parsePasswd(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestParseGroup(t *testing.T) {
	for _, c := range []struct {
		line string
		want Group
		ok   bool
	}{
		{"staff:x:50:alice,bob", Group{Name: "staff", GID: 50, Members: []string{"alice", "bob"}}, true},
		{"staff:x:50: alice , bob,", Group{Name: "staff", GID: 50, Members: []string{"alice", "bob"}}, true},
		{"empty:*:7:", Group{Name: "empty", GID: 7}, true},
		{"#staff:x:50:alice", Group{}, false},
		{"+staff:x:50:alice", Group{}, false},
		{"-staff:x:50:alice", Group{}, false},
		{"+:::", Group{}, false},
		{"staff:x:50", Group{}, false},
		{"staff:x:50:alice:bob", Group{}, false},
		{"staff:x:fifty:alice", Group{}, false},
		{":x:50:alice", Group{}, false},
		{"", Group{}, false},
	} {
		got, ok := parseGroup([]byte(c.line))
		if ok != c.ok || ok && !cmp.Equal(got, c.want) {
			t.Errorf("parseGroup(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
		if gid, member := memberOf([]byte(c.line), "alice"); member != (c.ok && slices.Contains(c.want.Members, "alice")) || member && gid != c.want.GID {
			t.Errorf("memberOf(%q, alice) = %d, %v", c.line, gid, member)
		}
	}
	if _, ok := memberOf([]byte("staff:x:50:alicex,xalice"), "alice"); ok {
		t.Error("memberOf matched a prefix or suffix of a member name")
	}
}

func TestScanLinesLong(t *testing.T) {
	long := strings.Repeat("m", 1<<20)
	in := "a\n" + long + "\n\nb" // no final newline
	var got []string
	scanLines([]byte(in), func(l []byte) bool { got = append(got, string(l)); return true })
	if len(got) != 4 || got[0] != "a" || got[1] != long || got[2] != "" || got[3] != "b" {
		t.Errorf("scanLines split %d lines, lengths %v", len(got), func() []int {
			var n []int
			for _, s := range got {
				n = append(n, len(s))
			}
			return n
		}())
	}
}

// testDB writes passwd and group files and returns a DB on them with the
// getent fallback off.
func testDB(t *testing.T, passwd, group string) *DB {
	t.Helper()
	dir := t.TempDir()
	db := &DB{Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group"), Getent: "-"}
	if err := os.WriteFile(db.Passwd, []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db.Group, []byte(group), 0o644); err != nil {
		t.Fatal(err)
	}
	return db
}

const (
	passwdFile = `# local users
root:x:0:0:root:/root:/bin/bash
+nisuser:x:2000:2000::/home/nis:/bin/sh
-alice
broken:x:notanumber:1::/:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
alice:x:1999:1999:Second alice, ignored:/nowhere:/bin/sh
   carol:x:1002:100::/home/carol:/bin/sh
dup:x:1000:5::/dup:/bin/sh
`
	groupFile = `root:x:0:
+:::
users:x:100:bob
alice:x:1000:
wheel:x:10:root, alice
audio:x:29:bob,alice
video:x:44:alicex
broken:x:nope:alice
`
)

func TestFiles(t *testing.T) {
	// A member list far beyond bufio.Scanner's 64 KiB default, with alice last.
	var members []string
	for i := 0; i < 20000; i++ {
		members = append(members, "user"+strings.Repeat("x", i%7))
	}
	members = append(members, "alice")
	group := groupFile + "big:x:4000:" + strings.Join(members, ",") + "\n"
	db := testDB(t, "# "+strings.Repeat("c", 200000)+"\n"+passwdFile, group)

	u, err := db.LookupUser("alice")
	if want := (User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Source: db.Passwd}); err != nil || u != want {
		t.Errorf("LookupUser(alice) = %+v, %v; want the first entry %+v", u, err, want)
	}
	u, err = db.LookupUserID(1000)
	if err != nil || u.Name != "alice" {
		t.Errorf("LookupUserID(1000) = %+v, %v; want the first entry, alice", u, err)
	}
	if u, err := db.LookupUser("carol"); err != nil || u.UID != 1002 {
		t.Errorf("LookupUser(carol) (leading blanks) = %+v, %v", u, err)
	}
	for _, name := range []string{"nisuser", "+nisuser", "broken", "-alice", "nobody", "ali", "alice:x"} {
		if _, err := db.LookupUser(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupUser(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := db.LookupUserID(2000); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupUserID(2000) (a NIS line) = %v, want ErrNotFound", err)
	}

	g, err := db.LookupGroup("wheel")
	if err != nil || g.GID != 10 || !slices.Equal(g.Members, []string{"root", "alice"}) || g.Source != db.Group {
		t.Errorf("LookupGroup(wheel) = %+v, %v", g, err)
	}
	if g, err := db.LookupGroupID(29); err != nil || g.Name != "audio" {
		t.Errorf("LookupGroupID(29) = %+v, %v", g, err)
	}
	if _, err := db.LookupGroup("broken"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupGroup(broken) = %v, want ErrNotFound", err)
	}
	if _, err := db.LookupGroupID(12345); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupGroupID(12345) = %v, want ErrNotFound", err)
	}

	alice, _ := db.LookupUser("alice")
	ids, err := db.GroupIDs(alice)
	if want := []int{10, 29, 1000, 4000}; err != nil || !slices.Equal(ids, want) {
		t.Errorf("GroupIDs(alice) = %v, %v; want %v (wheel, audio, primary, big; not video or broken)", ids, err, want)
	}
	carol, _ := db.LookupUser("carol")
	if ids, err := db.GroupIDs(carol); err != nil || !slices.Equal(ids, []int{100}) {
		t.Errorf("GroupIDs(carol) = %v, %v; want the primary group only", ids, err)
	}

	if d := db.Describe("passwd"); !strings.Contains(d, db.Passwd) || !strings.Contains(d, "no getent") {
		t.Errorf("Describe = %q", d)
	}
	// Missing files are an empty database, not an error.
	empty := &DB{Passwd: "/nonexistent/passwd", Group: "/nonexistent/group", Getent: "-"}
	if _, err := empty.LookupUser("root"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupUser in missing files = %v", err)
	}
}

// fakeGetent writes a getent script that logs its arguments to the
// returned log file and knows user ldapuser (uid 5000, group 5000, in
// groups 6001 and 6002), group ldapgroup (6001), fails for "broken" and
// hangs for "slow".
func fakeGetent(t *testing.T) (prog, log string) {
	t.Helper()
	dir := t.TempDir()
	prog, log = filepath.Join(dir, "getent"), filepath.Join(dir, "log")
	script := `#!/bin/sh
echo "$*" >> '` + log + `'
case "$1 $2" in
"passwd ldapuser"|"passwd 5000") echo 'ldapuser:*:5000:5000:LDAP user:/home/ldapuser:/bin/sh' ;;
"passwd LDAPUSER") echo 'ldapuser:*:5000:5000:LDAP user:/home/ldapuser:/bin/sh' ;;
"passwd 5002") echo 'someoneelse:*:5003:5003::/:/bin/sh' ;;
"passwd garbage") echo 'not a passwd line' ;;
"group ldapgroup"|"group 6001") echo 'ldapgroup:*:6001:ldapuser' ;;
"initgroups ldapuser") echo 'ldapuser              6001 6002' ;;
"initgroups alice") echo 'alice                 7000' ;;
"initgroups "*) echo "$2" ;;
"passwd broken") echo 'getent: cannot reach the directory' >&2; exit 1 ;;
"passwd slow") exec sleep 60 ;;
*) exit 2 ;;
esac
`
	if err := exefile.Write(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, log
}

func readLog(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestGetentFallback(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake getent:", err)
	}
	db := testDB(t, passwdFile, groupFile)
	var log string
	db.Getent, log = fakeGetent(t)

	// Found in the files: getent is not run.
	alice, err := db.LookupUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := db.GroupIDs(alice); err != nil || !slices.Equal(ids, []int{10, 29, 1000}) {
		t.Errorf("GroupIDs(alice) = %v, %v", ids, err)
	}
	if _, err := db.LookupGroup("wheel"); err != nil {
		t.Fatal(err)
	}
	if l := readLog(t, log); l != "" {
		t.Errorf("getent ran for entries in the files: %q", l)
	}

	u, err := db.LookupUser("ldapuser")
	if want := (User{Name: "ldapuser", UID: 5000, GID: 5000, Home: "/home/ldapuser", Source: "getent passwd"}); err != nil || u != want {
		t.Errorf("LookupUser(ldapuser) = %+v, %v; want %+v", u, err, want)
	}
	if u, err := db.LookupUserID(5000); err != nil || u.Name != "ldapuser" {
		t.Errorf("LookupUserID(5000) = %+v, %v", u, err)
	}
	if ids, err := db.GroupIDs(u); err != nil || !slices.Equal(ids, []int{5000, 6001, 6002}) {
		t.Errorf("GroupIDs(ldapuser) = %v, %v; want the primary and getent initgroups' groups", ids, err)
	}
	if g, err := db.LookupGroup("ldapgroup"); err != nil || g.GID != 6001 || g.Source != "getent group" {
		t.Errorf("LookupGroup(ldapgroup) = %+v, %v", g, err)
	}
	if g, err := db.LookupGroupID(6001); err != nil || g.Name != "ldapgroup" {
		t.Errorf("LookupGroupID(6001) = %+v, %v", g, err)
	}
	want := "passwd ldapuser\npasswd 5000\ninitgroups ldapuser\ngroup ldapgroup\ngroup 6001\n"
	if l := readLog(t, log); l != want {
		t.Errorf("getent calls:\n%s\nwant:\n%s", l, want)
	}

	if _, err := db.LookupUser("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupUser(nosuch) = %v, want ErrNotFound (getent exit 2)", err)
	}
	if _, err := db.LookupGroupID(9999); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupGroupID(9999) = %v, want ErrNotFound", err)
	}
	_, err = db.LookupUser("broken")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cannot reach the directory") {
		t.Errorf("LookupUser(broken) = %v, want getent's failure, not ErrNotFound", err)
	}
	// A directory that matches names without regard to case: its entry
	// is taken as NSS gives it, as getpwnam does.
	if u, err := db.LookupUser("LDAPUSER"); err != nil || u.Name != "ldapuser" || u.UID != 5000 {
		t.Errorf("LookupUser(LDAPUSER) = %+v, %v; want getent's ldapuser", u, err)
	}
	for _, c := range []struct {
		lookup func() error
		what   string
	}{
		{func() error { _, err := db.LookupUserID(5002); return err }, "an entry for another uid"},
		{func() error { _, err := db.LookupUser("garbage"); return err }, "a malformed entry"},
	} {
		if err := c.lookup(); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no matching entry") {
			t.Errorf("getent answering with %s: %v, want an error (not ErrNotFound)", c.what, err)
		}
	}
	for _, err := range []error{
		func() error { _, err := db.LookupUser(""); return err }(),
		func() error { _, err := db.LookupUserID(-1); return err }(),
		func() error { _, err := db.LookupGroup(""); return err }(),
		func() error { _, err := db.LookupGroupID(-5); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("empty name or negative id: %v, want ErrNotFound", err)
		}
	}

	// Names getent could take for options or that no entry can hold are
	// not handed to it.
	before := readLog(t, log)
	for _, name := range []string{"-s", "a:b", "a b", "a\nb"} {
		if _, err := db.LookupUser(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupUser(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if l := readLog(t, log); l != before {
		t.Errorf("getent ran for invalid names: %q", strings.TrimPrefix(l, before))
	}

	db.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err = db.LookupUser("slow")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("LookupUser(slow) = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the timed-out getent took %v", d)
	}

	if d := db.Describe("group"); !strings.Contains(d, "getent group") {
		t.Errorf("Describe(group) = %q", d)
	}
}

func TestNSSwitchGroups(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake getent:", err)
	}
	for _, c := range []struct {
		conf   string
		remote bool
	}{
		{"", false},
		{"passwd: files\ngroup: files\n", false},
		{"group:          files systemd\n", false},
		{"group: compat\n", false},
		{"group: files [SUCCESS=merge] systemd # sss\n", false},
		{"group: files sss\n", true},
		{"group: sss files\n", true},
		{"group: files ldap [NOTFOUND=return]\n", true},
		{"group: files extrausers\n", true},
		{"group: files sss\ninitgroups: files\n", false},
		{"group: files\ninitgroups: files winbind\n", true},
		{"#group: files sss\n", false},
	} {
		db := testDB(t, passwdFile, groupFile)
		var log string
		db.Getent, log = fakeGetent(t)
		db.NSSwitch = filepath.Join(t.TempDir(), "nsswitch.conf")
		if c.conf != "" {
			if err := os.WriteFile(db.NSSwitch, []byte(c.conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := db.remoteGroups(); got != c.remote {
			t.Errorf("nsswitch %q: remote groups %v, want %v", c.conf, got, c.remote)
		}
		alice, _ := db.LookupUser("alice")
		ids, err := db.GroupIDs(alice)
		want := []int{10, 29, 1000}
		if c.remote {
			want = []int{10, 29, 1000, 7000}
		}
		if err != nil || !slices.Equal(ids, want) {
			t.Errorf("nsswitch %q: GroupIDs(alice) = %v, %v; want %v", c.conf, ids, err, want)
		}
		if ran := readLog(t, log) != ""; ran != c.remote {
			t.Errorf("nsswitch %q: getent ran: %v", c.conf, ran)
		}
	}
}

func TestSystem(t *testing.T) {
	db := System()
	root, err := db.LookupUser("root")
	if err != nil {
		t.Fatal(err)
	}
	if root.UID != 0 || root.Source != "/etc/passwd" {
		t.Errorf("root = %+v", root)
	}
	if u, err := db.LookupUserID(0); err != nil || u.Name != "root" {
		t.Errorf("LookupUserID(0) = %+v, %v", u, err)
	}
	if g, err := db.LookupGroupID(0); err != nil || g.Name != "root" {
		t.Errorf("LookupGroupID(0) = %+v, %v", g, err)
	}
}

func BenchmarkLookupUserFiles(b *testing.B) {
	db := System()
	for i := 0; i < b.N; i++ {
		if _, err := db.LookupUser("root"); err != nil {
			b.Fatal(err)
		}
	}
}

// The highest id a 32-bit uid_t can hold (but -1) parses where int has 64
// bits.
func TestParseMaxID(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("int has 32 bits here")
	}
	big := uint64(4294967294)
	want := User{Name: "max", UID: int(big), GID: int(big), Home: "/"}
	got, ok := parsePasswd([]byte("max:x:4294967294:4294967294::/:/bin/sh"))
	if !ok || got != want {
		t.Errorf("got %+v, %v; want %+v", got, ok, want)
	}
}
