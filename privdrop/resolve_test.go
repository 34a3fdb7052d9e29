package privdrop_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/blivet-go/blivet/internal/exefile"
	"github.com/blivet-go/blivet/internal/userdb"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

func code(err error) int { return stages.ExitCodeOf(err) }

// idGroups asks id(1), which uses the C library's getgrouplist: an oracle
// independent of os/user.
func idGroups(t *testing.T, name string) []int {
	t.Helper()
	out, err := exec.Command("id", "-G", name).Output()
	if err != nil {
		t.Skipf("id -G %s: %v", name, err)
	}
	var gs []int
	for _, f := range strings.Fields(string(out)) {
		g, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

// filesDB is a user database made of the given passwd and group text, with
// the getent fallback off.
func filesDB(t testing.TB, passwd, group string) *userdb.DB {
	t.Helper()
	dir := t.TempDir()
	db := &userdb.DB{Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group"), Getent: "-"}
	for path, text := range map[string]string{db.Passwd: passwd, db.Group: group} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"svc:x:700:701:a service:/var/lib/svc:/usr/sbin/nologin\n" +
		"+ldap:x:900:900::/:/bin/sh\n" +
		"nohome:x:702:702:::/bin/sh\n"
	testGroup = "root:x:0:\n" +
		"svc:x:701:\n" +
		"logs:x:800:root,svc\n" +
		"# nets:x:801:svc\n" +
		"web:x:802:svc\n"
)

func TestResolveFiles(t *testing.T) {
	db := filesDB(t, testPasswd, testGroup)
	tg, err := privdrop.ResolveIn(db, "svc", "")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 700 || tg.GID != 701 || !slices.Equal(tg.Groups, []int{701, 800, 802}) || tg.Name != "svc" || tg.Home != "/var/lib/svc" {
		t.Errorf("svc = %+v", tg)
	}
	if s := tg.String(); s != "user svc (uid 700), primary gid 701" {
		t.Errorf("String() = %q", s)
	}
	tg, err = privdrop.ResolveIn(db, "700", "logs")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 700 || tg.GID != 800 || !slices.Equal(tg.Groups, []int{701, 800, 802}) || tg.String() != "user svc (uid 700), group logs (gid 800)" {
		t.Errorf("700/logs = %+v %q", tg, tg)
	}
	if tg, err := privdrop.ResolveIn(db, "nohome", "801"); err != nil || tg.Home != "/" || tg.GID != 801 || tg.String() != "user nohome (uid 702), group gid 801" {
		t.Errorf("nohome/801 = %+v %q, %v", tg, tg, err)
	}

	for _, c := range []struct{ user, group, msg string }{
		{"ldap", "", `user "ldap" not found in ` + db.Passwd},
		{"900", "", "uid 900 has no entry in " + db.Passwd},
		{"svc", "nets", `group "nets" not found in ` + db.Group},
	} {
		_, err := privdrop.ResolveIn(db, c.user, c.group)
		if code(err) != stages.ExitNoUser || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ResolveIn(%q, %q) = %v, want 67 with %q", c.user, c.group, err, c.msg)
		}
	}
}

// writeFakeGetent puts a getent script in dir that answers for user
// ldapsvc (uid 5000, groups 6001 and 6002) and group ldapgrp (6001), and
// appends its arguments to dir/log.
func writeFakeGetent(t *testing.T, dir string) (log string) {
	t.Helper()
	log = filepath.Join(dir, "log")
	script := `#!/bin/sh
echo "$*" >> '` + log + `'
case "$1 $2" in
"passwd ldapsvc"|"passwd 5000") echo 'ldapsvc:*:5000:5000:LDAP service:/srv/ldapsvc:/bin/sh' ;;
"group ldapgrp"|"group 6001") echo 'ldapgrp:*:6001:ldapsvc' ;;
"initgroups ldapsvc") echo 'ldapsvc               6001 6002' ;;
"initgroups "*) echo "$2" ;;
"passwd down") echo 'getent: directory down' >&2; exit 1 ;;
*) exit 2 ;;
esac
`
	if err := exefile.Write(filepath.Join(dir, "getent"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return log
}

// TestResolveGetentFallback puts a fake getent first in PATH and resolves,
// through Resolve itself (the system's database), names that are not in
// /etc/passwd and /etc/group.
func TestResolveGetentFallback(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake getent:", err)
	}
	if _, err := userdb.System().LookupUser("ldapsvc"); err == nil {
		t.Skip("this system has a user ldapsvc")
	}
	dir := t.TempDir()
	log := writeFakeGetent(t, dir)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	tg, err := privdrop.Resolve("ldapsvc", "")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 5000 || tg.GID != 5000 || !slices.Equal(tg.Groups, []int{5000, 6001, 6002}) || tg.Name != "ldapsvc" || tg.Home != "/srv/ldapsvc" {
		t.Errorf("Resolve(ldapsvc) = %+v", tg)
	}
	tg, err = privdrop.Resolve("5000", "ldapgrp")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 5000 || tg.GID != 6001 || tg.String() != "user ldapsvc (uid 5000), group ldapgrp (gid 6001)" {
		t.Errorf("Resolve(5000, ldapgrp) = %+v %q", tg, tg)
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"passwd ldapsvc", "initgroups ldapsvc", "group ldapgrp", "passwd 5000"} {
		if !slices.Contains(strings.Split(string(calls), "\n"), want) {
			t.Errorf("getent was not asked %q; calls:\n%s", want, calls)
		}
	}
	// root is in /etc/passwd: getent is not asked for it.
	if _, err := privdrop.Resolve("root", ""); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(log); strings.Contains(string(after[len(calls):]), "passwd root") {
		t.Errorf("getent was asked for root, which /etc/passwd has: %s", after[len(calls):])
	}

	_, err = privdrop.Resolve("blivet-no-such-user", "")
	if code(err) != stages.ExitNoUser || !strings.Contains(err.Error(), `user "blivet-no-such-user" not found in /etc/passwd or getent passwd`) {
		t.Errorf("unknown user = %v, want 67 naming both places", err)
	}
	_, err = privdrop.Resolve("down", "")
	if code(err) != stages.ExitNoUser || !strings.Contains(err.Error(), "directory down") {
		t.Errorf("getent failing = %v, want 67 with getent's message", err)
	}
}

// TestResolveReal resolves root and nobody on this system, with id(1) as
// the oracle (it asks the C library).
func TestResolveReal(t *testing.T) {
	tg, err := privdrop.Resolve("root", "")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 0 || tg.GID != 0 || tg.Name != "root" || !slices.Contains(tg.Groups, 0) {
		t.Errorf("Resolve(root) = %+v", tg)
	}
	if tg0, err := privdrop.Resolve("0", ""); err != nil || tg0.Name != "root" || !slices.Equal(tg0.Groups, tg.Groups) {
		t.Errorf("Resolve(0) = %+v, %v", tg0, err)
	}
	if _, err := exec.LookPath("id"); err != nil {
		t.Skip("no id(1) to compare with:", err)
	}
	for _, name := range []string{"root", "nobody"} {
		tg, err := privdrop.Resolve(name, "")
		if err != nil {
			t.Errorf("Resolve(%s): %v", name, err)
			continue
		}
		for flag, want := range map[string]string{"-u": strconv.Itoa(tg.UID), "-g": strconv.Itoa(tg.GID)} {
			out, err := exec.Command("id", flag, name).Output()
			if err != nil {
				t.Fatalf("id %s %s: %v", flag, name, err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("%s: id %s says %s, Resolve %s", name, flag, got, want)
			}
		}
		if want := idGroups(t, name); !slices.Equal(tg.Groups, want) {
			t.Errorf("%s: groups %v, id -G says %v", name, tg.Groups, want)
		}
	}
}

// BenchmarkResolveGetent resolves a user that only the (fake) getent
// knows: the cost of the NSS fallback, two getent runs (passwd and
// initgroups).
func BenchmarkResolveGetent(b *testing.B) {
	db := filesDB(b, testPasswd, testGroup)
	dir := b.TempDir()
	script := "#!/bin/sh\ncase \"$1 $2\" in\n" +
		"\"passwd ldapsvc\") echo 'ldapsvc:*:5000:5000::/:/bin/sh' ;;\n" +
		"\"initgroups ldapsvc\") echo 'ldapsvc 6001' ;;\n*) exit 2 ;;\nesac\n"
	db.Getent = filepath.Join(dir, "getent")
	if err := exefile.Write(db.Getent, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := privdrop.ResolveIn(db, "ldapsvc", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveRealGetent runs the system's getent for a name the
// files lack (the cost of a miss: one getent passwd run that answers "not
// found").
func BenchmarkResolveRealGetent(b *testing.B) {
	if _, err := exec.LookPath("getent"); err != nil {
		b.Skip("no getent:", err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := privdrop.Resolve("blivet-no-such-user", ""); code(err) != stages.ExitNoUser {
			b.Fatal(err)
		}
	}
}

func TestParseCapabilities(t *testing.T) {
	for _, c := range []struct{ name, msg string }{
		{"net_bind_servic", `unknown capability "net_bind_servic"`},
		{"", `unknown capability ""`},
		{"cap_", `unknown capability "cap_"`},
		{"10", `unknown capability "10"`},
		{"CAP_SETUID", "regain root"},
		{"setgid", "regain root"},
	} {
		_, err := privdrop.ParseCapabilities("chown", c.name)
		if code(err) != stages.ExitUsage || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseCapabilities(chown, %q) = %v, want 64 with %q", c.name, err, c.msg)
		}
	}
	if caps, err := privdrop.ParseCapabilities(); err != nil || len(caps) != 0 {
		t.Errorf("ParseCapabilities() = %v, %v", caps, err)
	}
	caps, err := privdrop.ParseCapabilities("Net_Bind_Service", "CAP_CHOWN", "cap_net_bind_service", "checkpoint_restore")
	switch {
	case runtime.GOOS != "linux":
		if code(err) != stages.ExitUsage || !strings.Contains(err.Error(), "Linux-only") {
			t.Errorf("ParseCapabilities on %s = %v, want 64 saying Linux-only", runtime.GOOS, err)
		}
	case err != nil:
		// This test binary may be linked with cgo (package net, -race):
		// then the names are right but the process cannot keep them.
		if code(err) != stages.ExitUsage || !strings.Contains(err.Error(), "cgo") || !strings.Contains(err.Error(), "cap_chown,cap_net_bind_service,cap_checkpoint_restore") {
			t.Errorf("ParseCapabilities = %v, want nil or a 64 about cgo naming the capabilities", err)
		}
	case !slices.Equal(caps, []int{0, 10, 40}):
		t.Errorf("ParseCapabilities = %v, want [0 10 40]", caps)
	}
	tg := privdrop.Target{Caps: []int{10, 13}}
	if s := tg.String(); !strings.HasSuffix(s, "keeping cap_net_bind_service,cap_net_raw") {
		t.Errorf("String() = %q", s)
	}
}
