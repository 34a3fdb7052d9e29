package pidfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func wantCode(t *testing.T, err error, code int, substr string) {
	t.Helper()
	if got := stages.ExitCodeOf(err); got != code {
		t.Fatalf("error %v: exit code %d, want %d", err, got, code)
	}
	var e *stages.Error
	if !errors.As(err, &e) || e.Stage != "pidfile" {
		t.Errorf("error %v is not a *stages.Error of stage pidfile", err)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q does not mention %q", err, substr)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Ino)
}

func TestCreateWritesPIDAndHonoursUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "d.pid")
	l, err := Create(path, 4242)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if got := readFile(t, path); got != "4242\n" {
		t.Errorf("content %q, want %q", got, "4242\n")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 (0644 under umask 027)", st.Mode().Perm())
	}
	if fl, _ := unix.FcntlInt(l.File().Fd(), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("lock fd is not close-on-exec")
	}
}

func TestWritePIDReplacesLongerContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	if err := os.WriteFile(path, []byte("1234567890\nleftover junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Create(path, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if got := readFile(t, path); got != "42\n" {
		t.Errorf("content %q, want %q", got, "42\n")
	}
	// Through the same lock, a longer PID and then a shorter one: each
	// write leaves exactly its own line.
	for _, pid := range []int{1234567, 9} {
		if err := l.WritePID(pid); err != nil {
			t.Fatal(err)
		}
		if got, want := readFile(t, path), strconv.Itoa(pid)+"\n"; got != want {
			t.Errorf("after WritePID(%d): content %q, want %q", pid, got, want)
		}
	}
}

func TestConflictNamesHolderAndLeavesFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	l, err := Create(path, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ino := inode(t, path)
	// A second open file description conflicts even in the same process.
	_, err = Acquire(path)
	wantCode(t, err, stages.ExitUnavailable, path)
	if !errors.Is(err, stages.ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) is false", err)
	}
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("%v does not wrap a *ConflictError", err)
	}
	if ce.PID != os.Getpid() || ce.FromFile {
		t.Errorf("conflict names PID %d (from file %v), want %d from the kernel", ce.PID, ce.FromFile, os.Getpid())
	}
	if !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Errorf("message %q does not name the holder", err)
	}
	if got := readFile(t, path); got != strconv.Itoa(os.Getpid())+"\n" || inode(t, path) != ino {
		t.Errorf("loser touched the winner's file: %q", got)
	}
}

func TestProbe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	if s, err := Probe(path); err != nil || s != (Status{}) {
		t.Fatalf("missing file: %+v, %v; want zero Status, nil", s, err)
	}
	// A number in the file is not a holder.
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Probe(path); err != nil || s != (Status{Exists: true}) {
		t.Fatalf("unlocked file naming PID 1: %+v, %v; want not held", s, err)
	}
	l, err := Create(path, 99999)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Probe(path); err != nil || s != (Status{Exists: true, Held: true, PID: os.Getpid()}) {
		t.Fatalf("held: %+v, %v; want held by %d (the kernel's answer, not the file's 99999)", s, err, os.Getpid())
	}
	// Probing took no lock: the holder can still be acquired after release.
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if s, err := Probe(path); err != nil || s != (Status{Exists: true}) {
		t.Fatalf("after unlock: %+v, %v", s, err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("acquire after probe: %v", err)
	}
	l2.Unlock()
}

func TestProbeRefusesNonRegular(t *testing.T) {
	if _, err := Probe(t.TempDir()); err == nil {
		t.Error("probing a directory succeeded")
	}
}

func TestLockSurvivesGarbageCollection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	if _, err := Create(path, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		runtime.GC()
	}
	if s, _ := Probe(path); !s.Held {
		t.Fatal("the lock was released when the *Lock became unreachable")
	}
	held.Range(func(k, _ any) bool { k.(*Lock).Unlock(); return true })
}

// TestRetryWhenRemovedOrReplaced makes the file disappear (or be replaced)
// between open and flock, as an exiting instance would: the lock must end
// up on the file at the path, not on an orphan.
func TestRetryWhenRemovedOrReplaced(t *testing.T) {
	for _, how := range []string{"removed", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "d.pid")
			calls := 0
			afterOpen = func(p string) {
				calls++
				if calls > 1 {
					return
				}
				if how == "removed" {
					os.Remove(p)
					return
				}
				other := filepath.Join(dir, "other")
				os.WriteFile(other, []byte("other\n"), 0o644)
				os.Rename(other, p)
			}
			defer func() { afterOpen = nil }()
			l, err := Create(path, 77)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			if calls != 2 {
				t.Errorf("opened %d times, want 2 (one retry)", calls)
			}
			var st unix.Stat_t
			unix.Fstat(int(l.File().Fd()), &st)
			if uint64(st.Ino) != inode(t, path) || st.Nlink != 1 {
				t.Errorf("locked inode %d (nlink %d) is not the file at the path (%d)", st.Ino, st.Nlink, inode(t, path))
			}
			if got := readFile(t, path); got != "77\n" {
				t.Errorf("content %q", got)
			}
		})
	}
}

func TestRefusesSymlinkLeavingVictimAlone(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "d.pid")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	_, err := Create(path, 1)
	wantCode(t, err, stages.ExitCantCreate, "symbolic link")
	_, err = Write(path, 1)
	wantCode(t, err, stages.ExitCantCreate, "symbolic link")
	if got := readFile(t, victim); got != "precious\n" {
		t.Errorf("victim changed to %q", got)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink itself was changed: %v %v", fi, err)
	}
	// A symlink higher up the path is fine.
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o755)
	os.Symlink(real, filepath.Join(dir, "run"))
	l, err := Create(filepath.Join(dir, "run", "d.pid"), 5)
	if err != nil {
		t.Fatalf("symlinked directory: %v", err)
	}
	l.Unlock()
}

func TestRefusesHardLinkedFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	path := filepath.Join(dir, "d.pid")
	if err := os.Link(victim, path); err != nil {
		t.Fatal(err)
	}
	_, err := Create(path, 1)
	wantCode(t, err, stages.ExitCantCreate, "hard links")
	if got := readFile(t, victim); got != "precious\n" {
		t.Errorf("victim changed to %q", got)
	}
}

func TestRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Create(path, 1)
	wantCode(t, err, stages.ExitCantCreate, "named pipe")
}

func TestDirectoryRuleAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the directory rule applies to root only; run the tests as root")
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o755, true}, {0o775, false}, {0o757, false}, {0o777, false}, {0o777 | os.ModeSticky, true}, {0o770 | os.ModeSticky, true}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			os.Mkdir(dir, 0o700)
			path := filepath.Join(dir, "d.pid")
			os.WriteFile(path, []byte("precious\n"), 0o644)
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			l, err := Create(path, 9)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				l.Unlock()
				return
			}
			wantCode(t, err, stages.ExitCantCreate, "must not be writable by group or others unless it is sticky")
			if got := readFile(t, path); got != "precious\n" {
				t.Errorf("file in unsafe directory changed to %q", got)
			}
		})
	}
}

func TestDevFullIsENOSPC(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	_, err := Create("/dev/full", 1)
	wantCode(t, err, stages.ExitCantCreate, "no space")
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("%v is not ENOSPC", err)
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full is gone: %v", err)
	}
	if s, _ := Probe("/dev/full"); s.Held {
		t.Error("failed Create left /dev/full locked")
	}
}

func TestRemoveOnlyOwnFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.pid")
	l, err := Create(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("2\n"), 0o644)
	os.Rename(other, path)
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "2\n" {
		t.Errorf("someone else's file was removed or changed: %q", got)
	}
	l.Unlock()
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	if err := l.Remove(); err != nil {
		t.Errorf("Remove after Unlock: %v", err)
	}
	if err := l.WritePID(3); err == nil {
		t.Error("WritePID after Unlock succeeded")
	}
	if l.File() != nil {
		t.Error("File after Unlock is not nil")
	}
}

func TestWriteUnlockedSharedPidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pid")
	w1, err := Write(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Write(path, 200)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "200\n" {
		t.Fatalf("content %q", got)
	}
	if s, _ := Probe(path); s.Held {
		t.Error("Write left a lock")
	}
	w1.Remove() // not its PID any more: stays
	if got := readFile(t, path); got != "200\n" {
		t.Fatalf("first instance removed the second's pidfile (content %q)", got)
	}
	w2.Remove()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("own pidfile not removed: %v", err)
	}
}

func TestBadPaths(t *testing.T) {
	for _, p := range []string{"", "/", "a\x00b", t.TempDir() + "/missing/d.pid"} {
		if _, err := Acquire(p); stages.ExitCodeOf(err) != stages.ExitCantCreate {
			t.Errorf("Acquire(%q): %v, want exit code 73", p, err)
		}
	}
	if _, err := Create(filepath.Join(t.TempDir(), "d.pid"), 0); stages.ExitCodeOf(err) != stages.ExitCantCreate {
		t.Errorf("PID 0: %v", err)
	}
}

func TestStageInProcess(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "d.pid")
	lock := filepath.Join(dir, "d.lock")
	for _, tc := range []struct {
		name string
		cfg  stages.Config
	}{
		{"pidfile-locks-itself", stages.Config{Pidfile: pid}},
		{"standalone-lockfile", stages.Config{Pidfile: pid, Lockfile: lock}},
		{"no-lock", stages.Config{Pidfile: pid, NoLock: true}},
		{"lockfile-only", stages.Config{Lockfile: lock}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stages.State{Config: tc.cfg}
			if err := New().Run(s); err != nil {
				t.Fatal(err)
			}
			lp := tc.cfg.LockPath()
			if (s.LockFile != nil) != (lp != "") {
				t.Errorf("LockFile %v with lock path %q", s.LockFile, lp)
			}
			if lp != "" {
				if len(s.OwnFDs) != 1 || s.OwnFDs[0] != int(s.LockFile.Fd()) {
					t.Errorf("OwnFDs %v, lock fd %d", s.OwnFDs, s.LockFile.Fd())
				}
				if st, _ := Probe(lp); !st.Held || st.PID != os.Getpid() {
					t.Errorf("lock on %s not held: %+v", lp, st)
				}
			}
			wantChown := []string(nil)
			if tc.cfg.Lockfile != "" {
				wantChown = []string{lock}
			}
			if strings.Join(s.ChownPaths, ",") != strings.Join(wantChown, ",") {
				t.Errorf("ChownPaths %v, want %v", s.ChownPaths, wantChown)
			}
			if tc.cfg.Pidfile != "" {
				if got := readFile(t, pid); got != strconv.Itoa(os.Getpid())+"\n" {
					t.Errorf("pidfile %q", got)
				}
			}
			if err := s.RunCleanups(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(pid); !os.IsNotExist(err) {
				t.Errorf("pidfile left after cleanup: %v", err)
			}
			if tc.cfg.Lockfile != "" {
				if _, err := os.Stat(lock); err != nil {
					t.Errorf("standalone lockfile removed: %v", err)
				}
				if st, _ := Probe(lock); st.Held {
					t.Error("lockfile still locked after cleanup")
				}
			}
		})
	}
	if err := New().Run(&stages.State{}); err != nil {
		t.Errorf("no pidfile: %v", err)
	}
}

func BenchmarkAcquire(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.pid")
	pid := os.Getpid()
	for i := 0; i < b.N; i++ {
		l, err := Create(path, pid)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Remove(); err != nil {
			b.Fatal(err)
		}
		l.Unlock()
	}
}
