//go:build linux

package safefile

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The one-call open is taken only for a path without any symbolic link,
// and opens the directory the path names; a link anywhere in the path, or
// a missing component, leaves the decision to the walk.
func TestOpenNoLinks(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, ok := openNoLinks(sub)
	if !ok {
		var how unix.OpenHow
		if _, err := unix.Openat2(unix.AT_FDCWD, "/", &how); err != nil {
			t.Skipf("openat2 not usable here: %v", err)
		}
		t.Fatalf("openNoLinks(%s) declined a path without links", sub)
	}
	defer unix.Close(fd)
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(sub, &want); err != nil {
		t.Fatal(err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		t.Errorf("opened %d/%d, want the directory %s (%d/%d)", got.Dev, got.Ino, sub, want.Dev, want.Ino)
	}
	for _, p := range []string{
		filepath.Join(dir, "link", "b"), // a link inside
		filepath.Join(dir, "link"),      // a link last
		filepath.Join(dir, "missing"),
	} {
		if fd, ok := openNoLinks(p); ok {
			unix.Close(fd)
			t.Errorf("openNoLinks(%s) opened it; the walk must decide", p)
		}
	}
	// And the walk still follows a link it may follow (owned by this
	// user), reaching the same directory.
	wfd, err := OpenDir(filepath.Join(dir, "link", "b"), "test", "")
	if err != nil {
		t.Fatalf("walk through an own link: %v", err)
	}
	defer unix.Close(wfd)
	if err := unix.Fstat(wfd, &got); err != nil || got.Ino != want.Ino {
		t.Errorf("walk through the link reached inode %d, want %d (%v)", got.Ino, want.Ino, err)
	}
}
