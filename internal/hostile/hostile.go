//go:build linux

// Package hostile sets up the scene of the hostile-path tests (issue 14,
// docs/security.md), shared by the library's and the command's tests: a
// directory the service user owns, where it can plant links, next to a
// root-only file it must never reach through blivet.
package hostile

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Scene is one test's hostile setting.
type Scene struct {
	Dir    string // the test directory, reachable by nobody
	Home   string // Dir/home, owned by nobody (uid and gid 65534)
	Victim string // Dir/victim, root's, mode 0600, "precious\n"
	before unix.Stat_t
	t      testing.TB
}

// New builds a Scene in a new test directory of mode dirMode (0o777 lets
// nobody create files beside the victim). It skips the test when not root:
// the scene drops to nobody for real.
func New(t testing.TB, dirMode os.FileMode) *Scene {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the hostile-path tests need root (they drop to nobody for real)")
	}
	s := &Scene{Dir: t.TempDir(), t: t}
	if err := os.Chmod(filepath.Dir(s.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Dir, dirMode); err != nil {
		t.Fatal(err)
	}
	s.Home = filepath.Join(s.Dir, "home")
	if err := os.Mkdir(s.Home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(s.Home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	s.Victim = filepath.Join(s.Dir, "victim")
	if err := os.WriteFile(s.Victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(s.Victim, &s.before); err != nil {
		t.Fatal(err)
	}
	return s
}

// Untouched fails the test if the victim's content, owner or mode changed.
func (s *Scene) Untouched() {
	s.t.Helper()
	data, err := os.ReadFile(s.Victim)
	var now unix.Stat_t
	serr := unix.Stat(s.Victim, &now)
	if err != nil || string(data) != "precious\n" || serr != nil ||
		now.Uid != s.before.Uid || now.Gid != s.before.Gid || now.Mode != s.before.Mode {
		s.t.Errorf("victim touched: content %q (%v), uid %d gid %d mode %o; was uid %d gid %d mode %o",
			data, err, now.Uid, now.Gid, now.Mode, s.before.Uid, s.before.Gid, s.before.Mode)
	}
}
