//go:build linux

package main

// The hostile paths of issue 14 through the command (docs/security.md):
// both launch paths (the default and BLIVET_REEXEC=1) refuse an
// output file the service user redirected, leave the victim untouched and
// exit 73 naming the path.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/hostile"
)

func TestHostileOutputPathCLI(t *testing.T) {
	for _, path := range []struct {
		name string
		env  []string
	}{{"default", nil}, {"reexec", []string{"BLIVET_REEXEC=1"}}} {
		for _, plant := range []struct{ name, want string }{{"symlink", "a symbolic link"}, {"hardlink", "has 2 hard links"}} {
			t.Run(path.name+"/"+plant.name, func(t *testing.T) {
				t.Parallel()
				sc := hostile.New(t, 0o755)
				home, victim, untouched := sc.Home, sc.Victim, sc.Untouched
				log := filepath.Join(home, "log")
				var err error
				if plant.name == "symlink" {
					err = os.Symlink(victim, log)
				} else {
					err = os.Link(victim, log)
				}
				if err != nil {
					t.Fatal(err)
				}
				r := daemonize(t, []string{"-u", "nobody", "-o", log, "--", "sh", "-c", "echo written"}, withEnv(path.env...)).expect(73)
				if !strings.Contains(r.stderr, log) || !strings.Contains(r.stderr, plant.want) {
					t.Errorf("stderr %q does not name %s and %q", r.stderr, log, plant.want)
				}
				untouched()
				r.none()
			})
		}
	}
}

// TestOutputDirectoryCLI: -o naming a directory is a usage error (64),
// before anything runs.
func TestOutputDirectoryCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := daemonize(t, []string{"-o", dir, "/bin/true"}).expect(64)
	if !strings.Contains(r.stderr, dir) || !strings.Contains(r.stderr, "is a directory") {
		t.Errorf("stderr %q", r.stderr)
	}
	r.none()
}

// TestChdirUsageCLI: -c naming nothing, or something that is not a
// directory, is a usage error (64) naming the flag and the reason, before
// anything runs.
func TestChdirUsageCLI(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{"/nonexistent/blivet-dir", "stat /nonexistent/blivet-dir: no such file or directory"},
		{file, file + " is not a directory"},
	} {
		r := daemonize(t, []string{"-c", tc.dir, "/bin/true"}).expect(64)
		if !strings.Contains(r.stderr, "-c/--chdir: "+tc.want) {
			t.Errorf("-c %s: stderr %q, want %q", tc.dir, r.stderr, tc.want)
		}
		r.none()
	}
}

// TestReadOnlyFileSystemCLI: -o or -p on a read-only file system is 73
// (EROFS), named, nothing left running.
func TestReadOnlyFileSystemCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root")
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("blivet-ro", ro, "tmpfs", unix.MS_RDONLY, "size=64k"); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ro, unix.MNT_DETACH) })
	for _, args := range [][]string{{"-o", filepath.Join(ro, "out.log")}, {"-p", filepath.Join(ro, "app.pid")}} {
		r := daemonize(t, append(args, "/bin/sleep", "100")).expect(73)
		if !strings.Contains(r.stderr, args[1]) || !strings.Contains(r.stderr, "read-only file system") {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
		r.none()
	}
}
