package main

// Real-process tests of --status, --stop and --signal: daemons started by
// the daemonize binary itself, checked through the exit codes, /proc and
// the lock.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/pidfile"
)

// bystander starts a plain sleep, not daemonized and holding no lock:
// a process whose PID a stale pidfile may name. It is killed at the end.
func bystander(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// writePidfile writes pid into path, without any lock.
func writeStalePidfile(t *testing.T, path string, pid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", pid)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lockHeld reports whether a process holds the lock on path.
func lockHeld(t *testing.T, path string) bool {
	t.Helper()
	st, err := pidfile.Probe(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Held
}

// TestStatusCodes: 3 without a pidfile, 0 and the PID while the program
// holds the lock (with the pidfile's lock or a separate -l lockfile), 1
// for a stale pidfile, which is not touched.
func TestStatusCodes(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "d.pid")
	if r := daemonize(t, []string{"--status", "-p", pidfile}).expect(3); r.stdout != "" || !strings.Contains(r.stderr, "not running") {
		t.Errorf("no pidfile: stdout %q stderr %q", r.stdout, r.stderr)
	}
	run := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}).expect(0)
	pid := run.daemon()
	if r := daemonize(t, []string{"--status", "-p", pidfile}).expect(0); r.stdout != fmt.Sprintf("%d\n", pid) || r.stderr != "" {
		t.Errorf("running: stdout %q stderr %q, want %d", r.stdout, r.stderr, pid)
	}
	run.kill()
	if r := daemonize(t, []string{"--status", "-p", pidfile}).expect(1); r.stdout != "" || !strings.Contains(r.stderr, "stale") {
		t.Errorf("stale: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Errorf("--status changed the pidfile: %q", got)
	}

	t.Run("separate lockfile", func(t *testing.T) {
		pidfile, lockfile := filepath.Join(dir, "s.pid"), filepath.Join(dir, "s.lock")
		daemonize(t, []string{"--status", "-l", lockfile}).expect(3)
		run := daemonize(t, []string{"-p", pidfile, "-l", lockfile, "/bin/sleep", "100"}).expect(0)
		pid := run.daemon()
		for _, args := range [][]string{{"-l", lockfile}, {"-p", pidfile, "-l", lockfile}} {
			r := daemonize(t, append([]string{"--status"}, args...)).expect(0)
			if r.stdout != fmt.Sprintf("%d\n", pid) {
				t.Errorf("%q: stdout %q, want %d", args, r.stdout, pid)
			}
		}
		run.kill()
		// The lockfile stays (it is never removed): not running, 3; the
		// pidfile stays too: stale, 1.
		daemonize(t, []string{"--status", "-l", lockfile}).expect(3)
		daemonize(t, []string{"--status", "-p", pidfile, "-l", lockfile}).expect(1)
	})

	t.Run("same path for -p and -l", func(t *testing.T) {
		pidfile := filepath.Join(dir, "same.pid")
		run := daemonize(t, []string{"-p", pidfile, "-l", pidfile, "/bin/sleep", "100"}).expect(0)
		pid := run.daemon()
		if holder := flockHolder(t, pidfile); holder != pid {
			t.Errorf("-p X -l X: lock on the pidfile held by %d, want the program %d", holder, pid)
		}
		r := daemonize(t, []string{"--status", "-p", pidfile, "-l", pidfile}).expect(0)
		if r.stdout != fmt.Sprintf("%d\n", pid) {
			t.Errorf("stdout %q, want %d", r.stdout, pid)
		}
	})
}

// TestStalePidfileNeverSignalled: a pidfile nobody holds names a live
// process (a PID reused by an unrelated program): --status says stale,
// --signal and --stop send nothing, and that process lives on.
func TestStalePidfileNeverSignalled(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "d.pid")
	victim := bystander(t)
	writeStalePidfile(t, pidfile, victim.Process.Pid)
	daemonize(t, []string{"--status", "-p", pidfile}).expect(1)
	daemonize(t, []string{"--signal", "KILL", "-p", pidfile}).expect(1)
	if r := daemonize(t, []string{"--stop", "--signal", "KILL", "-p", pidfile}).expect(0); r.stderr != "" {
		t.Errorf("--stop on a stale pidfile: stderr %q", r.stderr)
	}
	if !blivettest.Alive(victim.Process.Pid) {
		t.Fatalf("the process a stale pidfile names (PID %d) was signalled", victim.Process.Pid)
	}
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", victim.Process.Pid) {
		t.Errorf("pidfile changed: %q", got)
	}
}

// TestLockHolderNotPidfileNumber: the program holds the lock but its
// pidfile was overwritten with another live process's PID: --status
// prints the holder and warns, --signal reaches the holder only.
func TestLockHolderNotPidfileNumber(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "d.pid")
	run := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}).expect(0)
	pid := run.daemon()
	victim := bystander(t)
	writeStalePidfile(t, pidfile, victim.Process.Pid) // same inode: the lock stays
	r := daemonize(t, []string{"--status", "-p", pidfile}).expect(0)
	if r.stdout != fmt.Sprintf("%d\n", pid) || !strings.Contains(r.stderr, strconv.Itoa(victim.Process.Pid)) {
		t.Errorf("stdout %q (want the holder %d), stderr %q (want a warning naming %d)", r.stdout, pid, r.stderr, victim.Process.Pid)
	}
	daemonize(t, []string{"--signal", "TERM", "-p", pidfile}).expect(0)
	run.none()
	if !blivettest.Alive(victim.Process.Pid) {
		t.Fatalf("the pidfile's number (PID %d), not the lock holder, was signalled", victim.Process.Pid)
	}
}

// TestSignal: --signal sends the named signal (names and numbers) to the
// program, which keeps running.
func TestSignal(t *testing.T) {
	dir := t.TempDir()
	pidfile, log := filepath.Join(dir, "d.pid"), filepath.Join(dir, "signals")
	script := fmt.Sprintf(`trap 'echo hup >> %[1]s' HUP; trap 'echo usr1 >> %[1]s' USR1; echo up > %[1]s; while :; do sleep 0.05; done`, log)
	run := daemonize(t, []string{"-p", pidfile, "/bin/sh", "-c", script}).expect(0)
	awaitFile(t, log, "up\n")
	pid := procOf(t, pidfile)
	daemonize(t, []string{"--signal", "HUP", "-p", pidfile}).expect(0)
	awaitFile(t, log, "up\nhup\n")
	daemonize(t, []string{"--signal", "sigusr1", "-p", pidfile}).expect(0)
	awaitFile(t, log, "up\nhup\nusr1\n")
	daemonize(t, []string{"--signal", "1", "-p", pidfile}).expect(0)
	awaitFile(t, log, "up\nhup\nusr1\nhup\n")
	if !blivettest.Alive(pid) {
		t.Errorf("the program died")
	}
	run.kill()
	daemonize(t, []string{"--signal", "HUP", "-p", filepath.Join(dir, "none.pid")}).expect(3)
}

// procOf returns the PID the kernel names as holding the lock on path.
func procOf(t *testing.T, path string) int {
	t.Helper()
	st, err := pidfile.Probe(path)
	if err != nil || !st.Held || st.PID == 0 {
		t.Fatalf("probe %s: %+v %v", path, st, err)
	}
	return st.PID
}

// TestStopWaitsForLockRelease: the program takes its time to exit after
// SIGTERM; --stop returns 0 only once the lock is released, and nothing of
// the program is left.
func TestStopWaitsForLockRelease(t *testing.T) {
	dir := t.TempDir()
	pidfile, log := filepath.Join(dir, "d.pid"), filepath.Join(dir, "log")
	// On SIGTERM: note it, linger 300ms still holding the lock, exit.
	script := fmt.Sprintf(`trap 'echo term >> %[1]s; sleep 0.3; exit 0' TERM; echo up > %[1]s; while :; do sleep 0.05; done`, log)
	run := daemonize(t, []string{"-p", pidfile, "/bin/sh", "-c", script}).expect(0)
	awaitFile(t, log, "up\n")
	r := daemonize(t, []string{"--stop", "-v", "-p", pidfile}).expect(0)
	if lockHeld(t, pidfile) {
		t.Fatalf("--stop exited 0 while the lock is still held\n%s", r.stderr)
	}
	if got := readFile(t, log); got != "up\nterm\n" {
		t.Errorf("program log %q: want one SIGTERM", got)
	}
	if strings.Contains(r.stderr, "SIGKILL") {
		t.Errorf("SIGKILL sent before --timeout: %s", r.stderr)
	}
	run.none()
	daemonize(t, []string{"--stop", "-p", pidfile}).expect(0) // nothing holds it: still 0
}

// TestStopKillsAfterTimeout: a program that ignores SIGTERM (and a child
// of it that inherited the lock) is SIGKILLed after --timeout.
func TestStopKillsAfterTimeout(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "d.pid")
	run := daemonize(t, []string{"-p", pidfile, "/bin/sh", "-c", `trap "" TERM; while :; do sleep 1; done`}).expect(0)
	pid := procOf(t, pidfile)
	// daemonize returns once the shell is exec'd, maybe before it has
	// run its trap: wait until it ignores SIGTERM.
	blivettest.Eventually(t, 10*time.Second, func() bool {
		mask, err := strconv.ParseUint(status(t, pid, "SigIgn"), 16, 64)
		return err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0
	}, "PID %d never ignored SIGTERM", pid)
	start := time.Now()
	r := daemonize(t, []string{"--stop", "--timeout", "300ms", "-v", "-p", pidfile}).expect(0)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("--stop returned after %v, before --timeout", took)
	}
	if !strings.Contains(r.stderr, "SIGKILL") || !strings.Contains(r.stderr, fmt.Sprintf("SIGTERM to PID %d", pid)) {
		t.Errorf("stderr %q: want SIGTERM to %d, then SIGKILL", r.stderr, pid)
	}
	if lockHeld(t, pidfile) {
		t.Fatal("lock still held after --stop")
	}
	run.none()
}

// TestStopSignalReplacesTERM: --stop --signal INT sends SIGINT, not
// SIGTERM (which this program ignores), and waits for the release.
func TestStopSignalReplacesTERM(t *testing.T) {
	dir := t.TempDir()
	pidfile, log := filepath.Join(dir, "d.pid"), filepath.Join(dir, "log")
	script := fmt.Sprintf(`trap "" TERM; trap 'echo int >> %[1]s; exit 0' INT; echo up > %[1]s; while :; do sleep 0.05; done`, log)
	run := daemonize(t, []string{"-p", pidfile, "/bin/sh", "-c", script}).expect(0)
	awaitFile(t, log, "up\n")
	r := daemonize(t, []string{"--stop", "--signal", "INT", "--timeout", "15s", "-v", "-p", pidfile}).expect(0)
	if strings.Contains(r.stderr, "SIGKILL") || readFile(t, log) != "up\nint\n" {
		t.Errorf("log %q stderr %q: want SIGINT to stop it", readFile(t, log), r.stderr)
	}
	run.none()
}

// TestControlAsNonRoot: an unprivileged user checks and stops its own
// daemon; it cannot stop root's (77, the daemon lives on), and a pidfile
// it cannot read is "cannot tell" (4).
func TestControlAsNonRoot(t *testing.T) {
	requireRoot(t) // to become nobody
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is 0700
	os.Chmod(dir, 0o755)
	mine := filepath.Join(dir, "nobody")
	if err := os.Mkdir(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(mine, nobody, nobody)
	asNobody := []runOpt{asUser(nobody, nobody), withDir("/")}

	pidfile := filepath.Join(mine, "d.pid")
	run := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}, asNobody...).expect(0)
	pid := run.daemon()
	if r := daemonize(t, []string{"--status", "-p", pidfile}, asNobody...).expect(0); r.stdout != fmt.Sprintf("%d\n", pid) {
		t.Errorf("status as nobody: %q, want %d", r.stdout, pid)
	}
	daemonize(t, []string{"--stop", "-p", pidfile}, asNobody...).expect(0)
	run.none()

	rootPidfile := filepath.Join(dir, "root.pid")
	rootRun := daemonize(t, []string{"-p", rootPidfile, "/bin/sleep", "100"}).expect(0)
	rootPID := rootRun.daemon()
	if r := daemonize(t, []string{"--status", "-p", rootPidfile}, asNobody...).expect(0); r.stdout != fmt.Sprintf("%d\n", rootPID) {
		t.Errorf("status of root's daemon as nobody: %q, want %d", r.stdout, rootPID)
	}
	r := daemonize(t, []string{"--stop", "-p", rootPidfile}, asNobody...).expect(77)
	if !strings.Contains(r.stderr, "permission") && !strings.Contains(r.stderr, "not permitted") {
		t.Errorf("stderr %q", r.stderr)
	}
	daemonize(t, []string{"--signal", "TERM", "-p", rootPidfile}, asNobody...).expect(77)
	if !blivettest.Alive(rootPID) {
		t.Fatal("nobody stopped root's daemon")
	}

	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	writeStalePidfile(t, filepath.Join(private, "d.pid"), rootPID)
	daemonize(t, []string{"--status", "-p", filepath.Join(private, "d.pid")}, asNobody...).expect(4)
}

// TestHolderAfterLockerExited: the program forks a child that inherits the
// lock and exits itself. The kernel still names the program's PID (it
// took the lock), and so does the pidfile; the process found and signalled
// is the child, the one that really holds the lock.
func TestHolderAfterLockerExited(t *testing.T) {
	dir := t.TempDir()
	pidPath, childPID := filepath.Join(dir, "d.pid"), filepath.Join(dir, "child")
	// The child is an exec'd sleep (its own PID), written down once it runs.
	script := fmt.Sprintf(`/bin/sleep 100 & echo $! > %s.tmp; mv %[1]s.tmp %[1]s`, childPID)
	run := daemonize(t, []string{"-p", pidPath, "/bin/sh", "-c", script}).expect(0)
	var child int
	blivettest.Eventually(t, 10*time.Second, func() bool {
		child = readPID([]byte(readFileOrEmpty(childPID)))
		return child > 0
	}, "the child never started")
	locker := readPID([]byte(readFile(t, pidPath)))
	blivettest.Eventually(t, 10*time.Second, func() bool { return !blivettest.Alive(locker) }, "sh did not exit")
	if st, err := pidfile.Probe(pidPath); err != nil || !st.Held || st.PID != locker {
		t.Fatalf("probe: %+v %v; want held, naming the exited PID %d", st, err, locker)
	}
	if r := daemonize(t, []string{"--status", "-p", pidPath}).expect(0); r.stdout != fmt.Sprintf("%d\n", child) {
		t.Errorf("--status printed %q, want the child %d (the kernel names the exited %d)", r.stdout, child, locker)
	}
	r := daemonize(t, []string{"--stop", "-v", "-p", pidPath}).expect(0)
	if !strings.Contains(r.stderr, fmt.Sprintf("SIGTERM to PID %d", child)) || strings.Contains(r.stderr, fmt.Sprintf("PID %d ", locker)) {
		t.Errorf("stderr %q: want SIGTERM to the child %d only", r.stderr, child)
	}
	run.none()
}

func readFileOrEmpty(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
