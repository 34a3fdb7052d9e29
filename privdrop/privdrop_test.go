//go:build linux

package privdrop_test

import (
	"bufio"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (chown and set*id need privileges); run the tests as root to cover them")
	}
}

// userWithSupplementaryGroups finds a user listed as a member of some
// group in /etc/group that is not its primary group.
func userWithSupplementaryGroups(t *testing.T) *user.User {
	t.Helper()
	f, err := os.Open("/etc/group")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 4 || fields[3] == "" {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if u, err := user.Lookup(m); err == nil && u.Gid != fields[2] {
				return u
			}
		}
	}
	t.Skip("no user with a supplementary group in /etc/group")
	return nil
}

func TestResolveUserOnly(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	tg, err := privdrop.Resolve("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if tg.UID != uid || tg.GID != gid || tg.Name != "nobody" || tg.Home != nobody.HomeDir {
		t.Errorf("Resolve(nobody) = %+v", tg)
	}
	if want := idGroups(t, "nobody"); !slices.Equal(tg.Groups, want) {
		t.Errorf("groups %v, id -G says %v", tg.Groups, want)
	}
	if !strings.Contains(tg.String(), "user nobody") {
		t.Errorf("String() = %q", tg.String())
	}

	u := userWithSupplementaryGroups(t)
	tg, err = privdrop.Resolve(u.Username, "")
	if err != nil {
		t.Fatal(err)
	}
	want := idGroups(t, u.Username)
	if len(want) < 2 || !slices.Equal(tg.Groups, want) {
		t.Errorf("Resolve(%s) groups %v, id -G says %v", u.Username, tg.Groups, want)
	}
	if strconv.Itoa(tg.GID) != u.Gid {
		t.Errorf("gid %d, want the primary group %s", tg.GID, u.Gid)
	}
}

func TestResolveUserAndGroup(t *testing.T) {
	u := userWithSupplementaryGroups(t)
	tg, err := privdrop.Resolve(u.Username, "0")
	if err != nil {
		t.Fatal(err)
	}
	if tg.GID != 0 {
		t.Errorf("gid %d, want the given 0", tg.GID)
	}
	if want := idGroups(t, u.Username); !slices.Equal(tg.Groups, want) {
		t.Errorf("groups %v, want the user's %v", tg.Groups, want)
	}
	// A numeric user with a passwd entry is that user.
	tg2, err := privdrop.Resolve(u.Uid, "root")
	if err != nil {
		t.Fatal(err)
	}
	if tg2.Name != u.Username || tg2.GID != 0 || !slices.Equal(tg2.Groups, tg.Groups) {
		t.Errorf("Resolve(%s, root) = %+v, want %+v", u.Uid, tg2, tg)
	}
}

func TestResolveGroupOnly(t *testing.T) {
	tg, err := privdrop.Resolve("", "65534")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != -1 || tg.GID != 65534 || len(tg.Groups) != 0 || tg.Name != "" {
		t.Errorf("Resolve(\"\", 65534) = %+v", tg)
	}
	// A numeric gid needs no group entry.
	if tg, err := privdrop.Resolve("", "54321"); err != nil || tg.GID != 54321 {
		t.Errorf("Resolve(\"\", 54321) = %+v, %v", tg, err)
	}
}

func TestResolveBareUID(t *testing.T) {
	if _, err := user.LookupId("54321"); err == nil {
		t.Skip("uid 54321 has a passwd entry here")
	}
	_, err := privdrop.Resolve("54321", "")
	if code(err) != stages.ExitNoUser || !strings.Contains(err.Error(), "WithGroup") {
		t.Errorf("bare uid without group: %v (code %d), want 67 suggesting WithGroup", err, code(err))
	}
	tg, err := privdrop.Resolve("54321", "65534")
	if err != nil {
		t.Fatal(err)
	}
	if tg.UID != 54321 || tg.GID != 65534 || len(tg.Groups) != 0 || tg.Name != "54321" || tg.Home != "/" {
		t.Errorf("Resolve(54321, 65534) = %+v", tg)
	}
}

func TestResolveErrors(t *testing.T) {
	for _, c := range []struct {
		user, group string
		code        int
		msg         string
	}{
		{"blivet-no-such-user", "", stages.ExitNoUser, `user "blivet-no-such-user" not found`},
		{"nobody", "blivet-no-such-group", stages.ExitNoUser, `group "blivet-no-such-group" not found`},
		{"", "blivet-no-such-group", stages.ExitNoUser, "not found"},
		{"4294967295", "", stages.ExitUsage, "out of range"},
		{"", "99999999999", stages.ExitUsage, "out of range"},
		{"", "", stages.ExitUsage, "no user or group"},
	} {
		_, err := privdrop.Resolve(c.user, c.group)
		var e *stages.Error
		if !errors.As(err, &e) || e.Code != c.code || e.Stage != "privdrop" || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Resolve(%q, %q) = %v, want code %d with %q", c.user, c.group, err, c.code, c.msg)
		}
		if c.code == stages.ExitNoUser && !errors.Is(err, stages.ErrNoUser) {
			t.Errorf("errors.Is(%v, ErrNoUser) is false", err)
		}
	}
}

func TestStageWithoutDropIsNoop(t *testing.T) {
	s := &stages.State{ChownPaths: []string{"/nonexistent/blivet"}}
	if err := privdrop.New().Run(s); err != nil || s.Dropped || s.Chowned {
		t.Errorf("Run without user/group: %v, Dropped %v, Chowned %v", err, s.Dropped, s.Chowned)
	}
	if err := privdrop.Chown(s); err != nil || s.Chowned {
		t.Errorf("Chown without user/group: %v, Chowned %v", err, s.Chowned)
	}
	if privdrop.New().Name() != "privdrop" {
		t.Error("name")
	}
}

func owner(t *testing.T, path string) (int, int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid), int(st.Gid)
}

func TestChown(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	lock := filepath.Join(dir, "app.lock")
	pid := filepath.Join(dir, "app.pid")
	for _, p := range []string{out, lock, pid} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev := filepath.Join(dir, "null")
	haveDev := unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) == nil

	s := &stages.State{Config: stages.Config{User: "nobody", Group: "54321", Pidfile: pid}}
	s.ChownPaths = []string{out, lock, out}
	if haveDev {
		s.ChownPaths = append(s.ChownPaths, dev)
	}
	if err := privdrop.Chown(s); err != nil {
		t.Fatal(err)
	}
	if !s.Chowned {
		t.Error("Chowned not set")
	}
	for _, p := range []string{out, lock} {
		if u, g := owner(t, p); u != 65534 || g != 54321 {
			t.Errorf("%s owned by %d:%d, want 65534:54321", p, u, g)
		}
	}
	if u, g := owner(t, pid); u != 0 || g != 0 {
		t.Errorf("pidfile owned by %d:%d, want root", u, g)
	}
	if haveDev {
		if u, g := owner(t, dev); u != 0 || g != 0 {
			t.Errorf("device node owned by %d:%d, want it left alone", u, g)
		}
	}
	if os.Geteuid() != 0 || os.Getegid() != 0 {
		t.Fatal("Chown changed the process ids")
	}

	// Group only: the owner stays.
	s = &stages.State{Config: stages.Config{Group: "65534"}, ChownPaths: []string{pid}}
	if err := privdrop.Chown(s); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(t, pid); u != 0 || g != 65534 {
		t.Errorf("group-only chown: %d:%d, want 0:65534", u, g)
	}
}

func TestChownRefusals(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pid := filepath.Join(dir, "app.pid")
	if err := os.WriteFile(pid, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &stages.State{Config: stages.Config{User: "nobody", Pidfile: pid, ChownPaths: true}, ChownPaths: []string{pid}}
	err := privdrop.New().Run(s)
	if code(err) != stages.ExitCantCreate || !strings.Contains(err.Error(), "pidfile") {
		t.Errorf("chown of a path that is the pidfile: %v, want 73 naming the pidfile", err)
	}
	if u, _ := owner(t, pid); u != 0 || s.Chowned || s.Dropped || os.Geteuid() != 0 {
		t.Errorf("pidfile owner %d, Chowned %v, Dropped %v, euid %d", u, s.Chowned, s.Dropped, os.Geteuid())
	}

	// Another name for a file is never followed to it: a symbolic link
	// (last component) and a hard link are refused, the file keeps its owner.
	alias := filepath.Join(dir, "alias.log")
	if err := os.Symlink(pid, alias); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.log")
	if err := os.Link(pid, hard); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{alias: "symbolic link", hard: "has 2 hard links"} {
		s := &stages.State{Config: stages.Config{User: "nobody", ChownPaths: true}, ChownPaths: []string{p}}
		err := privdrop.New().Run(s)
		if code(err) != stages.ExitCantCreate || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("chown of %s: %v, want 73 naming it and %q", p, err, want)
		}
		if u, _ := owner(t, pid); u != 0 || s.Chowned || s.Dropped || os.Geteuid() != 0 {
			t.Errorf("%s: target owner %d, Chowned %v, Dropped %v, euid %d", p, u, s.Chowned, s.Dropped, os.Geteuid())
		}
	}

	gone := filepath.Join(dir, "gone.log")
	s = &stages.State{Config: stages.Config{User: "nobody", ChownPaths: true}, ChownPaths: []string{gone}}
	err = privdrop.New().Run(s)
	var e *stages.Error
	if !errors.As(err, &e) || e.Code != 73 || e.Fatal || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("chown of a vanished path: %v, want a non-fatal 73 wrapping ENOENT", err)
	}
	if s.Dropped || os.Geteuid() != 0 {
		t.Error("the process changed ids after a failed chown")
	}
}

func TestCheck(t *testing.T) {
	groups, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(groups)
	groups = slices.Compact(groups)
	// The process as it is passes a group-only check (no regain attempt:
	// the uid did not change).
	self := privdrop.Target{UID: -1, GID: os.Getgid(), Groups: groups}
	if err := privdrop.Check(self); err != nil {
		t.Fatalf("Check(self) = %v", err)
	}
	wrong := self
	wrong.GID++
	err = privdrop.Check(wrong)
	var e *stages.Error
	if !errors.As(err, &e) || e.Code != 77 || !e.Fatal || !strings.Contains(err.Error(), "gid") {
		t.Errorf("Check with another gid = %v, want a fatal 77 about the gid", err)
	}
	wrong = self
	wrong.Groups = append(slices.Clone(groups), 54321)
	if err := privdrop.Check(wrong); code(err) != 77 || !strings.Contains(err.Error(), "supplementary groups") {
		t.Errorf("Check with other groups = %v, want 77", err)
	}
}

// TestCheckSeesEveryThread changes one thread's groups behind the
// runtime's back with the per-thread raw setgroups (x/sys/unix) and
// expects Check to find it, naming the thread.
func TestCheckSeesEveryThread(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc:", err)
	}
	self := privdrop.Target{UID: -1, GID: os.Getgid()}
	if gs, _ := unix.Getgroups(); len(gs) != 0 {
		t.Skipf("the test process has supplementary groups %v", gs)
	}
	tidc, release, done := make(chan int), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, so its
		// odd credentials cannot leak into the rest of the test binary.
		if err := unix.Setgroups([]int{54321}); err != nil {
			t.Error(err)
		}
		tidc <- unix.Gettid()
		<-release
	}()
	tid := <-tidc
	err := privdrop.Check(self)
	close(release)
	<-done
	if code(err) != 77 || !strings.Contains(err.Error(), "thread "+strconv.Itoa(tid)) {
		t.Errorf("Check with one thread in group 54321 = %v, want 77 naming thread %d", err, tid)
	}
}

// BenchmarkResolve looks up a user and its groups, as the drop does.
func BenchmarkResolve(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := privdrop.Resolve("nobody", ""); err != nil {
			b.Fatal(err)
		}
	}
}
