package main

// Integration tests: they build the daemonize binary and run it by its
// built path, as a user would (Debian's own daemonize may be on PATH), then
// inspect the program it started through /proc. Every process a test
// starts carries a per-test token in its environment and is killed when
// the test ends.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/exefile"
	"github.com/blivet-go/blivet/stages/fork"
	"golang.org/x/sys/unix"
)

// bin is the daemonize binary under test, built by TestMain.
var bin string

const tokenVar = "DAEMONIZE_TEST_TOKEN"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "daemonize-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by nobody, for the tests that run daemonize unprivileged.
	_ = os.Chmod(dir, 0o755)
	bin = filepath.Join(dir, "daemonize")
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gotool); err != nil {
		gotool = "go"
	}
	build := exec.Command(gotool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building daemonize: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// launch is one run of the daemonize binary.
type launch struct {
	t      *testing.T
	token  string
	cmd    *exec.Cmd
	code   int
	stdout string
	stderr string
}

type runOpt func(*exec.Cmd)

// withEnv adds KEY=VALUE to daemonize's environment.
func withEnv(kv ...string) runOpt { return func(c *exec.Cmd) { c.Env = append(c.Env, kv...) } }

// withDir starts daemonize in dir.
func withDir(dir string) runOpt { return func(c *exec.Cmd) { c.Dir = dir } }

// wrapped runs daemonize through a wrapper command (nohup, env ...).
func wrapped(wrapper ...string) runOpt {
	return func(c *exec.Cmd) {
		c.Args = append(slices.Clone(wrapper), c.Args...)
		c.Path = wrapper[0]
		if lp, err := exec.LookPath(wrapper[0]); err == nil {
			c.Path = lp
		}
	}
}

// asUser runs daemonize with the credentials of uid/gid.
func asUser(uid, gid uint32) runOpt {
	return func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
}

// withFiles passes extra open files (fd 3 up) to daemonize.
func withFiles(f ...*os.File) runOpt { return func(c *exec.Cmd) { c.ExtraFiles = f } }

// start runs daemonize with args and returns without waiting.
func start(t *testing.T, args []string, opts ...runOpt) *launch {
	t.Helper()
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	r := &launch{t: t, token: hex.EncodeToString(tok[:])}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Env = append(os.Environ(), tokenVar+"="+r.token)
	for _, o := range opts {
		o(r.cmd)
	}
	var stdout, stderr bytes.Buffer
	r.cmd.Stdout, r.cmd.Stderr = &stdout, &stderr
	t.Cleanup(r.kill)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
		}
	})
	return r
}

// wait waits (at most 20s) for daemonize to exit.
func (r *launch) wait() *launch {
	r.t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		r.t.Fatalf("daemonize did not exit within 20s")
	}
	r.code = r.cmd.ProcessState.ExitCode()
	r.stdout = r.cmd.Stdout.(*bytes.Buffer).String()
	r.stderr = r.cmd.Stderr.(*bytes.Buffer).String()
	return r
}

// daemonize runs daemonize with args to completion.
func daemonize(t *testing.T, args []string, opts ...runOpt) *launch {
	t.Helper()
	return start(t, args, opts...).wait()
}

// expect checks the exit code.
func (r *launch) expect(code int) *launch {
	r.t.Helper()
	if r.code != code {
		r.t.Fatalf("daemonize %q exited %d, want %d\nstdout: %s\nstderr: %s", r.cmd.Args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// pids returns the live processes carrying this run's token.
func (r *launch) pids() []int { return blivettest.PIDsWithEnv(tokenVar + "=" + r.token) }

// daemon waits for the one process left of the run (the program) and
// returns its PID.
func (r *launch) daemon() int {
	r.t.Helper()
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for pids = r.pids(); len(pids) != 1; pids = r.pids() {
		if time.Now().After(deadline) {
			r.t.Fatalf("want exactly one process of the run, have %v (stderr %q)", pids, r.stderr)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return pids[0]
}

// none checks that nothing of the run is left running.
func (r *launch) none() {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for pids := r.pids(); len(pids) > 0; pids = r.pids() {
		if time.Now().After(deadline) {
			r.t.Fatalf("processes of the run still alive: %v", pids)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *launch) kill() {
	for _, pid := range r.pids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r.pids()) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// stat is what /proc/PID/stat says about a process.
type stat struct{ ppid, pgrp, sid, tty int }

func procStat(t *testing.T, pid int) stat {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	n := func(i int) int { v, _ := strconv.Atoi(f[i]); return v }
	return stat{ppid: n(1), pgrp: n(2), sid: n(3), tty: n(4)}
}

// status returns the named field of /proc/PID/status.
func status(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// fds returns the open fds of pid with their targets.
func fds(t *testing.T, pid int) map[int]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		out[fd], _ = os.Readlink(filepath.Join(dir, e.Name()))
	}
	return out
}

// awaitFDs waits until pid's fds satisfy ok and returns them; it fails the
// test with the last table seen. The program may briefly hold files of its
// own while it starts (sleep reads /etc/locale.alias), so one look is not
// enough; an fd leaked to it stays and fails the test.
func awaitFDs(t *testing.T, pid int, desc string, ok func(map[int]string) bool) map[int]string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := fds(t, pid)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("fds of %d: %v, want %s", pid, got, desc)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func environ(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
}

// ancestors returns this test process's ancestors: the only processes,
// besides init, that may adopt an orphan (as subreapers).
func ancestors(t *testing.T) []int {
	var out []int
	for pid := os.Getpid(); pid > 1; {
		pid = procStat(t, pid).ppid
		out = append(out, pid)
	}
	return out
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// awaitFile waits until path has exactly want as content.
func awaitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := os.ReadFile(path)
		if string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: have %q (%v), want %q", path, got, err, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func writeScript(t *testing.T, path, text string) string {
	t.Helper()
	if err := exefile.Write(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs daemonize with -u/-g or as another user")
	}
}

const nobody = 65534

// TestDaemonShape runs the plainest command and checks the program is a
// proper daemon: the launcher exits 0 silently, the program runs in place
// of the daemon (exe, argv), orphaned, in a new session it does not lead,
// without a terminal, in /, umask 022, clean signal state, only fds 0-2 on
// /dev/null although daemonize was started with more open.
func TestDaemonShape(t *testing.T) {
	extra, err := os.Open("/etc/hostname")
	if err != nil {
		extra, _ = os.Open("/")
	}
	defer extra.Close()
	r := daemonize(t, []string{"/bin/sleep", "100"}, withFiles(extra, extra)).expect(0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("daemonize printed on success without -v: stdout %q stderr %q", r.stdout, r.stderr)
	}
	pid := r.daemon()
	if exe := realPath(t, fmt.Sprintf("/proc/%d/exe", pid)); exe != realPath(t, "/bin/sleep") {
		t.Errorf("the daemon runs %s, not sleep", exe)
	}
	if argv := cmdline(t, pid); !slices.Equal(argv, []string{"/bin/sleep", "100"}) {
		t.Errorf("argv %q", argv)
	}
	st := procStat(t, pid)
	if st.ppid != 1 && !slices.Contains(ancestors(t), st.ppid) {
		t.Errorf("ppid %d: not adopted by init or a subreaper ancestor", st.ppid)
	}
	if st.ppid == r.cmd.Process.Pid {
		t.Errorf("ppid is the launcher")
	}
	if st.sid == pid {
		t.Errorf("the daemon is a session leader (sid %d)", st.sid)
	}
	if mine, _ := unix.Getsid(0); st.sid == mine {
		t.Errorf("the daemon is still in the launcher's session %d", mine)
	}
	if st.pgrp != st.sid {
		t.Errorf("pgrp %d != sid %d", st.pgrp, st.sid)
	}
	if st.tty != 0 {
		t.Errorf("controlling terminal %#x", st.tty)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("cwd %q", cwd)
	}
	if u := status(t, pid, "Umask"); u != "0022" {
		t.Errorf("umask %s", u)
	}
	for _, f := range []string{"SigBlk", "SigIgn"} {
		if v := status(t, pid, f); v != "0000000000000000" {
			t.Errorf("%s %s", f, v)
		}
	}
	want := map[int]string{0: "/dev/null", 1: "/dev/null", 2: "/dev/null"}
	awaitFDs(t, pid, "0-2 on /dev/null only", func(got map[int]string) bool { return mapsEqual(got, want) })
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestChdirAndUmask(t *testing.T) {
	dir := t.TempDir()
	r := daemonize(t, []string{"-c", dir, "-m", "027", "/bin/sleep", "100"}).expect(0)
	pid := r.daemon()
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != dir {
		t.Errorf("cwd %q, want %q", cwd, dir)
	}
	if u := status(t, pid, "Umask"); u != "0027" {
		t.Errorf("umask %s, want 0027", u)
	}
	r = daemonize(t, []string{"--umask=0", "/bin/sleep", "100"}).expect(0)
	if u := status(t, r.daemon(), "Umask"); u != "0000" {
		t.Errorf("umask %s, want 0000", u)
	}
}

// TestCleanSignalState starts daemonize with SIGHUP and SIGINT ignored and
// SIGTERM and SIGUSR1 blocked (coreutils env, nohup); the program must
// still start with nothing ignored or blocked, in both modes.
func TestCleanSignalState(t *testing.T) {
	probe := exec.Command("env", "--ignore-signal=HUP,INT", "--block-signal=TERM,USR1", "grep", "^Sig[BI]", "/proc/self/status")
	out, err := probe.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SigBlk:\t0000000000004200") {
		t.Skipf("env cannot set up ignored and blocked signals here (coreutils >= 8.31 needed): %v %s", err, out)
	}
	dirty := wrapped("env", "--ignore-signal=HUP,INT", "--block-signal=TERM,USR1")
	check := func(t *testing.T, pid int) {
		t.Helper()
		for _, f := range []string{"SigBlk", "SigIgn"} {
			if v := status(t, pid, f); v != "0000000000000000" {
				t.Errorf("%s %s in the program", f, v)
			}
		}
	}
	t.Run("daemon", func(t *testing.T) {
		r := daemonize(t, []string{"/bin/sleep", "100"}, dirty).expect(0)
		check(t, r.daemon())
	})
	t.Run("nohup", func(t *testing.T) {
		r := daemonize(t, []string{"/bin/sleep", "100"}, wrapped("nohup")).expect(0)
		check(t, r.daemon())
	})
	t.Run("foreground", func(t *testing.T) {
		r := start(t, []string{"-f", "/bin/sleep", "100"}, dirty)
		pid := r.cmd.Process.Pid
		blivettest.Eventually(t, 10*time.Second, func() bool {
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			return exe == realPath(t, "/bin/sleep")
		}, "the foreground program never ran in place")
		check(t, pid)
	})
}

func TestEnv(t *testing.T) {
	r := daemonize(t, []string{"-E", "FOO=bar", "-E", "EMPTY", "--env=FOO=baz", "-E", "EQ=a=b", "/bin/sleep", "100"},
		withEnv("INHERITED=yes")).expect(0)
	env := environ(t, r.daemon())
	for _, want := range []string{"FOO=baz", "EMPTY=", "EQ=a=b", "INHERITED=yes"} {
		if !slices.Contains(env, want) {
			t.Errorf("%s missing from the program's environment", want)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "FOO=") && kv != "FOO=baz" {
			t.Errorf("stale %s", kv)
		}
		if strings.HasPrefix(kv, "BLIVET_") {
			t.Errorf("library marker leaked: %s", kv)
		}
	}
}

// TestBareNameSearchedInConfiguredPATH: a bare name is looked up at exec
// time, in the PATH that -E set.
func TestBareNameSearchedInConfiguredPATH(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ran")
	writeScript(t, filepath.Join(dir, "myprog"), "#!/bin/sh\necho \"$0 $*\" > "+out+"\n")
	daemonize(t, []string{"-E", "PATH=/nonexistent:" + dir, "myprog", "a", "b"}).expect(0)
	awaitFile(t, out, filepath.Join(dir, "myprog")+" a b\n")
}

// TestRelativeProgramPath: a path with a slash is made absolute before the
// chdir to /, and argv[0] stays as given.
func TestRelativeProgramPath(t *testing.T) {
	dir := t.TempDir()
	sleep, err := os.ReadFile(realPath(t, "/bin/sleep"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exefile.Write(filepath.Join(dir, "mysleep"), sleep, 0o755); err != nil {
		t.Fatal(err)
	}
	r := daemonize(t, []string{"./mysleep", "100"}, withDir(dir)).expect(0)
	pid := r.daemon()
	if argv := cmdline(t, pid); !slices.Equal(argv, []string{"./mysleep", "100"}) {
		t.Errorf("argv %q", argv)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != filepath.Join(dir, "mysleep") {
		t.Errorf("exe %q", exe)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("cwd %q", cwd)
	}
}

// TestScriptWithoutShebang runs through /bin/sh, as execvp(3) does.
func TestScriptWithoutShebang(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ran")
	script := writeScript(t, filepath.Join(dir, "noshebang"), "echo \"sh ran $0 $*\" > "+out+"\n")
	daemonize(t, []string{script, "x", "-y"}).expect(0)
	awaitFile(t, out, "sh ran "+script+" x -y\n")
}

// TestOptionsAfterProgramBelongToIt: everything after the program, hyphens
// included, is the program's.
func TestOptionsAfterProgramBelongToIt(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	r := daemonize(t, []string{"-c", dir, "--", "/bin/sh", "-c", `printf '%s|' "$@" > args`, "sh", "-v", "-p", "/x", "--", "--help"}).expect(0)
	awaitFile(t, out, "-v|-p|/x|--|--help|")
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("output: %q %q", r.stdout, r.stderr)
	}
}

func TestOutputFiles(t *testing.T) {
	dir := t.TempDir()
	prog := []string{"/bin/sh", "-c", "echo out; echo err >&2"}
	cases := []struct {
		name       string
		args       []string
		files      map[string]string
		absentFile string
	}{
		{"stdout suffix derives stderr", []string{"-o", dir + "/a.stdout"},
			map[string]string{"a.stdout": "out\n", "a.stderr": "err\n"}, ""},
		{"out suffix derives err", []string{"-o", dir + "/b.out"},
			map[string]string{"b.out": "out\n", "b.err": "err\n"}, ""},
		{"other paths are shared", []string{"-o", dir + "/c.log"},
			map[string]string{"c.log": "out\nerr\n"}, "c.err"},
		{"-e overrides the derivation", []string{"-o", dir + "/d.out", "-e", dir + "/d.errors"},
			map[string]string{"d.out": "out\n", "d.errors": "err\n"}, "d.err"},
		{"-e alone", []string{"-e", dir + "/e.err"},
			map[string]string{"e.err": "err\n"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := daemonize(t, append(c.args, prog...)).expect(0)
			for name, want := range c.files {
				awaitFile(t, filepath.Join(dir, name), want)
			}
			if c.absentFile != "" {
				if _, err := os.Stat(filepath.Join(dir, c.absentFile)); err == nil {
					t.Errorf("%s was created", c.absentFile)
				}
			}
			r.none()
		})
	}
	t.Run("truncate, then -a appends to both", func(t *testing.T) {
		out, errf := filepath.Join(dir, "f.out"), filepath.Join(dir, "f.err")
		os.WriteFile(out, []byte("old out, long line\n"), 0o644)
		os.WriteFile(errf, []byte("old err, long line\n"), 0o644)
		daemonize(t, append([]string{"-o", out}, prog...)).expect(0)
		awaitFile(t, out, "out\n")
		awaitFile(t, errf, "err\n")
		daemonize(t, append([]string{"-a", "-o", out}, prog...)).expect(0)
		awaitFile(t, out, "out\nout\n")
		awaitFile(t, errf, "err\nerr\n")
	})
}

// TestPidfileIsTheProgramsAndLocked: the pidfile names the program (same
// PID, exec'd in place), the program holds the lock (the lock fd is its
// only fd beyond 0-2), a second instance fails with 69 naming it and
// leaves it alone, and a SIGKILLed program's pidfile does not block the
// next start.
func TestPidfileIsTheProgramsAndLocked(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "d.pid")
	r := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}).expect(0)
	pid := r.daemon()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Fatalf("pidfile %q, program PID %d", got, pid)
	}
	if exe := realPath(t, fmt.Sprintf("/proc/%d/exe", pid)); exe != realPath(t, "/bin/sleep") {
		t.Errorf("the pidfile's PID runs %s", exe)
	}
	awaitFDs(t, pid, "0-2 on /dev/null and the lock on "+pidfile, func(got map[int]string) bool {
		want := map[int]string{0: "/dev/null", 1: "/dev/null", 2: "/dev/null"}
		for fd, target := range got {
			if fd > 2 && target == pidfile {
				want[fd] = pidfile
			}
		}
		return len(want) == 4 && mapsEqual(got, want)
	})
	if holder := flockHolder(t, pidfile); holder != pid {
		t.Errorf("lock on %s held by PID %d, want the program %d", pidfile, holder, pid)
	}

	second := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}).expect(69)
	if !strings.Contains(second.stderr, strconv.Itoa(pid)) || !strings.Contains(second.stderr, pidfile) {
		t.Errorf("conflict message does not name %s and PID %d: %q", pidfile, pid, second.stderr)
	}
	second.none()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Errorf("the loser touched the pidfile: %q", got)
	}

	syscall.Kill(pid, syscall.SIGKILL)
	// What the restart needs: the lock released (with every thread of the
	// program gone), not init's late reaping.
	blivettest.Eventually(t, 10*time.Second, func() bool { return flockHolder(t, pidfile) == 0 }, "lock of the killed program %d never released", pid)
	blivettest.AwaitGone(t, pid, 10*time.Second)
	third := daemonize(t, []string{"-p", pidfile, "/bin/sleep", "100"}).expect(0)
	pid3 := third.daemon()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid3) {
		t.Errorf("pidfile after restart %q, want %d", got, pid3)
	}
}

// TestPidfileReplacesLongerStaleContent: a stale pidfile longer than the
// new PID (a crashed instance's, with junk after it) ends up holding
// exactly the program's PID and a newline, whether the pidfile is the lock
// or a separate lockfile is (the raw child knows the size from its lock
// step, or reads it; on the portable path the Go stage writes it).
func TestPidfileReplacesLongerStaleContent(t *testing.T) {
	for _, lock := range []bool{false, true} {
		dir := t.TempDir()
		pidfile := filepath.Join(dir, "d.pid")
		if err := os.WriteFile(pidfile, []byte("4194303999 stale, and longer than any PID\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-p", pidfile}
		if lock {
			args = append(args, "-l", filepath.Join(dir, "d.lock"))
		}
		r := daemonize(t, append(args, "/bin/sleep", "100")).expect(0)
		pid := r.daemon()
		if got, want := readFile(t, pidfile), fmt.Sprintf("%d\n", pid); got != want {
			t.Errorf("separate lockfile %v: pidfile %q, want exactly %q", lock, got, want)
		}
	}
}

// flockHolder returns the PID /proc/locks names for the flock on path, 0
// if none.
func flockHolder(t *testing.T, path string) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skip("no /proc/locks")
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(f[5], ":")
		if ino, _ := strconv.ParseUint(parts[len(parts)-1], 10, 64); ino == st.Ino {
			pid, _ := strconv.Atoi(f[4])
			return pid
		}
	}
	return 0
}

// TestConcurrentStartsOneWins: instances started at once on one pidfile:
// exactly one exits 0 and runs, every other exits 69, and the pidfile
// names the winner, who holds the lock.
func TestConcurrentStartsOneWins(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "d.pid")
	const n = 8
	runs := make([]*launch, n)
	for i := range runs {
		runs[i] = start(t, []string{"-p", pidfile, "/bin/sleep", "100"})
	}
	var winner *launch
	for _, r := range runs {
		r.wait()
		switch r.code {
		case 0:
			if winner != nil {
				t.Fatalf("two instances exited 0")
			}
			winner = r
		case 69:
			r.none()
		default:
			t.Fatalf("exit %d, want 0 or 69: %s", r.code, r.stderr)
		}
	}
	if winner == nil {
		t.Fatal("no instance won")
	}
	pid := winner.daemon()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Errorf("pidfile %q, winner %d", got, pid)
	}
	if holder := flockHolder(t, pidfile); holder != pid {
		t.Errorf("lock held by %d, want the winner %d", holder, pid)
	}
}

func TestSeparateLockfile(t *testing.T) {
	dir := t.TempDir()
	pidfile, lockfile := filepath.Join(dir, "d.pid"), filepath.Join(dir, "d.lock")
	r := daemonize(t, []string{"-p", pidfile, "-l", lockfile, "/bin/sleep", "100"}).expect(0)
	pid := r.daemon()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Errorf("pidfile %q, want %d", got, pid)
	}
	if holder := flockHolder(t, lockfile); holder != pid {
		t.Errorf("lockfile held by %d, want %d", holder, pid)
	}
	awaitFDs(t, pid, "0-2 and the lock on "+lockfile, func(got map[int]string) bool {
		n := 0
		for fd, target := range got {
			if fd > 2 && target != lockfile {
				return false
			}
			n++
		}
		return n == 4
	})
	daemonize(t, []string{"-p", filepath.Join(dir, "other.pid"), "-l", lockfile, "/bin/sleep", "100"}).expect(69).none()
}

func TestNoLockAllowsTwoInstances(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "d.pid")
	a := daemonize(t, []string{"--no-lock", "-p", pidfile, "/bin/sleep", "100"}).expect(0)
	pa := a.daemon()
	awaitFDs(t, pa, "0-2 only (no lock)", func(got map[int]string) bool { return len(got) == 3 })
	b := daemonize(t, []string{"--no-lock", "-p", pidfile, "/bin/sleep", "100"}).expect(0)
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", b.daemon()) {
		t.Errorf("pidfile %q", got)
	}
}

// TestUsageErrorsExit64: usage mistakes print the usage line on stderr and
// exit 64 (never a flag library's 2), starting nothing.
func TestUsageErrorsExit64(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"-Z", "/bin/true"},
		{"--nope", "/bin/true"},
		{"-p"},
		{"-m", "800", "/bin/true"},
		{"-l", dir + "/l", "--no-lock", "-p", dir + "/p", "/bin/true"},
		{"--no-lock", "/bin/true"},
		{"-p", "relative.pid", "/bin/true"},
		{"-o", dir + "/x.out", "-p", dir + "/x.err", "/bin/true"},
		{"-c", dir + "/missing", "/bin/true"},
	} {
		r := daemonize(t, args).expect(64)
		if !strings.Contains(r.stderr, "usage: daemonize") || r.stdout != "" {
			t.Errorf("%q: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
		r.none()
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors created files: %v", entries)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		r := daemonize(t, args).expect(0)
		if !strings.Contains(r.stdout, "Usage: daemonize") || !strings.Contains(r.stdout, "--no-lock") || r.stderr != "" {
			t.Errorf("%q: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
	r := daemonize(t, []string{"--version"}).expect(0)
	if !strings.HasPrefix(r.stdout, "daemonize ") || r.stderr != "" {
		t.Errorf("--version: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// TestMissingProgramExit66: every way of naming a program that cannot run
// is 66, before forking (path) or at exec time (PATH search, interpreter),
// and leaves nothing running and no pidfile behind.
func TestMissingProgramExit66(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("echo hi\n"), 0o644)
	badInterp := writeScript(t, filepath.Join(dir, "badinterp"), "#!/nonexistent/interpreter\n")
	pidfile := filepath.Join(dir, "d.pid")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing path", []string{"/nonexistent/prog"}, "no such file"},
		{"relative missing path", []string{"./nonexistent"}, "no such file"},
		{"directory", []string{dir}, "not a regular file"},
		{"not executable", []string{plain}, "not executable"},
		{"bare name not in PATH", []string{"-E", "PATH=" + dir, "no-such-program-here"}, "not found in PATH"},
		{"bare name not executable in PATH", []string{"-E", "PATH=" + dir, "plain"}, "permission denied"},
		{"missing interpreter", []string{badInterp}, "interpreter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := daemonize(t, append([]string{"-p", pidfile}, tc.args...)).expect(66)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.want)
			}
			r.none()
			if _, err := os.Stat(pidfile); err == nil {
				t.Errorf("pidfile left behind")
				os.Remove(pidfile)
			}
		})
	}
}

// TestOtherExecFailureExit71: an exec failure other than "not found" or
// "not executable" (here ELOOP: a symlink loop in PATH) is 71.
func TestOtherExecFailureExit71(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	r := daemonize(t, []string{"-E", "PATH=" + dir, "loop"}).expect(71)
	if !strings.Contains(r.stderr, "too many levels of symbolic links") {
		t.Errorf("stderr %q", r.stderr)
	}
	r.none()
}

// TestFailureInDaemonReported: a stage failing in the daemon, before the
// exec, reaches the launcher with its code (73: an output file that cannot
// be created).
func TestFailureInDaemonReported(t *testing.T) {
	r := daemonize(t, []string{"-o", "/nonexistent-dir/x.log", "/bin/sleep", "100"}).expect(73)
	if !strings.Contains(r.stderr, "/nonexistent-dir/x.log") {
		t.Errorf("stderr %q", r.stderr)
	}
	r.none()
}

// TestKilledBeforeExecIsNotSuccess: the daemon is stuck before the exec
// (opening a FIFO nobody reads as its stdout) and gets SIGKILLed: the
// launcher must exit 70, never 0.
func TestKilledBeforeExecIsNotSuccess(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, []string{"-o", fifo, "/bin/sleep", "100"})
	launcher := r.cmd.Process.Pid
	var daemon int
	blivettest.Eventually(t, 10*time.Second, func() bool {
		for _, pid := range r.pids() {
			if pid != launcher && procStat(t, pid).ppid != launcher {
				daemon = pid
				return true
			}
		}
		return false
	}, "the daemon never appeared")
	syscall.Kill(daemon, syscall.SIGKILL)
	r.wait().expect(70)
	if !strings.Contains(r.stderr, "before") {
		t.Errorf("stderr %q", r.stderr)
	}
	r.none()
}

// expectNoPidfile fails t if pidfile exists after a failed launch.
func expectNoPidfile(t *testing.T, pidfile string) {
	t.Helper()
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile %s left behind a failed launch (stat: %v)", pidfile, err)
	}
}

// TestTimeoutExit75: --timeout gives up on a daemon stuck before the exec
// (opening a named pipe nobody reads, after it took the pidfile): 75, the
// daemon stopped, and the pidfile it wrote removed by the launcher.
func TestTimeoutExit75(t *testing.T) {
	dir := t.TempDir()
	fifo, pidfile := filepath.Join(dir, "fifo"), filepath.Join(dir, "d.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := daemonize(t, []string{"--timeout", "300ms", "-p", pidfile, "-o", fifo, "/bin/sleep", "100"}).expect(75)
	if !strings.Contains(r.stderr, "300ms") {
		t.Errorf("stderr %q", r.stderr)
	}
	expectNoPidfile(t, pidfile)
	r.none()
}

func TestForeground(t *testing.T) {
	dir := t.TempDir()
	extra, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	script := `echo "pid=$$ notify=$NOTIFY_SOCKET cwd=$(pwd)"; exit 7`
	r := daemonize(t, []string{"-f", "-c", dir, "/bin/sh", "-c", script},
		withEnv("NOTIFY_SOCKET=@blivet-test")).expect(7)
	want := fmt.Sprintf("pid=%d notify=@blivet-test cwd=%s\n", r.cmd.Process.Pid, dir)
	if r.stdout != want {
		t.Errorf("stdout %q, want %q (same PID, NOTIFY_SOCKET untouched)", r.stdout, want)
	}
	t.Run("same session, no extra fds", func(t *testing.T) {
		r := start(t, []string{"-f", "/bin/sleep", "100"}, withFiles(extra, extra))
		pid := r.cmd.Process.Pid
		blivettest.Eventually(t, 10*time.Second, func() bool {
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			return exe == realPath(t, "/bin/sleep")
		}, "sleep never ran in place")
		if mine, _ := unix.Getsid(0); procStat(t, pid).sid != mine {
			t.Errorf("-f started a new session")
		}
		awaitFDs(t, pid, "0 on /dev/null and the inherited 1, 2 only", func(got map[int]string) bool {
			return len(got) == 3 && got[0] == "/dev/null" && got[1] != "" && got[2] != ""
		})
	})
	t.Run("exec failure", func(t *testing.T) {
		r := daemonize(t, []string{"-f", "-E", "PATH=" + dir, "nothing-here"}).expect(66)
		if !strings.Contains(r.stderr, "not found") {
			t.Errorf("stderr %q", r.stderr)
		}
	})
}

// TestNotifySocketPassedThroughInDaemonMode: the program is the one that
// talks to the service manager.
func TestNotifySocketPassedThroughInDaemonMode(t *testing.T) {
	r := daemonize(t, []string{"/bin/sleep", "100"}, withEnv("NOTIFY_SOCKET=/run/test.sock")).expect(0)
	if env := environ(t, r.daemon()); !slices.Contains(env, "NOTIFY_SOCKET=/run/test.sock") {
		t.Errorf("NOTIFY_SOCKET not passed to the program")
	}
}

func TestVerbose(t *testing.T) {
	dir := t.TempDir()
	r := daemonize(t, []string{"-v", "-p", dir + "/d.pid", "-o", dir + "/d.out", "/bin/sleep", "100"}).expect(0)
	pid := r.daemon()
	for _, want := range []string{
		"program: /bin/sleep", "pidfile: " + dir + "/d.pid", "lockfile: " + dir + "/d.pid (the pidfile)",
		"stdout: " + dir + "/d.out", "stderr: " + dir + "/d.err (from -o)", "user: unchanged, group: unchanged",
		fmt.Sprintf("running as PID %d", pid),
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("-v output lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	if s := readFile(t, dir+"/d.err"); s != "" {
		t.Errorf("-v wrote into the program's log: %q", s)
	}
}

// TestUserAndGroup drops to nobody before the exec; the pidfile stays
// root's, the output file becomes nobody's.
func TestUserAndGroup(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	t.Run("user", func(t *testing.T) {
		pidfile, out := filepath.Join(dir, "u.pid"), filepath.Join(dir, "u.log")
		r := daemonize(t, []string{"-u", "nobody", "-p", pidfile, "-o", out, "/bin/sleep", "100"}).expect(0)
		pid := r.daemon()
		want := fmt.Sprintf("%d %d %d %d", nobody, nobody, nobody, nobody)
		if uid := status(t, pid, "Uid"); uid != want {
			t.Errorf("Uid %s, want %s", uid, want)
		}
		if gid := status(t, pid, "Gid"); gid != want {
			t.Errorf("Gid %s, want %s", gid, want)
		}
		if env := environ(t, pid); !slices.Contains(env, "USER=nobody") {
			t.Errorf("USER not set for nobody")
		}
		if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
			t.Errorf("pidfile %q", got)
		}
		if holder := flockHolder(t, pidfile); holder != pid {
			t.Errorf("lock held by %d", holder)
		}
		if owner(t, pidfile) != 0 {
			t.Errorf("pidfile handed to nobody")
		}
		if owner(t, out) != nobody {
			t.Errorf("output file not handed to nobody")
		}
	})
	t.Run("group", func(t *testing.T) {
		r := daemonize(t, []string{"-g", strconv.Itoa(nobody), "/bin/sleep", "100"}).expect(0)
		pid := r.daemon()
		if uid := status(t, pid, "Uid"); uid != "0 0 0 0" {
			t.Errorf("Uid %s", uid)
		}
		if gid := status(t, pid, "Gid"); gid != fmt.Sprintf("%d %d %d %d", nobody, nobody, nobody, nobody) {
			t.Errorf("Gid %s", gid)
		}
		if g := status(t, pid, "Groups"); g != "" {
			t.Errorf("supplementary groups %q", g)
		}
	})
	t.Run("unknown user 67", func(t *testing.T) {
		daemonize(t, []string{"-u", "no-such-user-blivet", "/bin/sleep", "100"}).expect(67).none()
	})
	t.Run("program not executable by the user 66", func(t *testing.T) {
		private := writeScript(t, filepath.Join(dir, "rootonly"), "#!/bin/sh\nsleep 100\n")
		os.Chmod(private, 0o700)
		daemonize(t, []string{"-u", "nobody", private}).expect(66).none()
	})
}

func owner(t *testing.T, path string) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

// TestUserWithoutRootExit77 runs daemonize as nobody with -u.
func TestUserWithoutRootExit77(t *testing.T) {
	requireRoot(t) // to become nobody
	r := daemonize(t, []string{"-u", "root", "/bin/sleep", "100"}, asUser(nobody, nobody), withDir("/")).expect(77)
	if !strings.Contains(r.stderr, "root") {
		t.Errorf("stderr %q", r.stderr)
	}
	r.none()
}

// BenchmarkLaunch measures `daemonize /bin/sleep 100`: from starting the
// launcher to its exit 0, that is until the program has been exec'd.
func BenchmarkLaunch(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "/bin/sleep", "100")
		cmd.Env = append(os.Environ(), tokenVar+"=bench")
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r := &launch{token: "bench"}
		r.kill()
		b.StartTimer()
	}
}

// TestSocketActivation runs daemonize under the real systemd-socket-activate:
// the program finds the listening socket at fd 3 and LISTEN_FDS,
// LISTEN_FDNAMES and LISTEN_PID addressed to itself, in both modes.
func TestSocketActivation(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate is not installed")
	}
	script := `printf 'fds=%s names=%s pidok=%s fd3=%s\n' "$LISTEN_FDS" "$LISTEN_FDNAMES" ` +
		`"$([ "$LISTEN_PID" = $$ ] && echo yes)" "$(readlink /proc/$$/fd/3 | cut -c1-7)"`
	for _, mode := range []string{"daemon", "foreground"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			sock, out := filepath.Join(dir, "s.sock"), filepath.Join(dir, "out")
			args := []string{"-o", out, "/bin/sh", "-c", script}
			if mode == "foreground" {
				args = append([]string{"-f"}, args...)
			}
			r := start(t, args, wrapped(tool, "-l", sock, "--fdname=web"))
			// systemd-socket-activate execs daemonize at the first connection.
			blivettest.Eventually(t, 10*time.Second, func() bool {
				c, err := net.Dial("unix", sock)
				if err == nil {
					c.Close()
				}
				return err == nil
			}, "nothing listens on %s", sock)
			r.wait().expect(0)
			awaitFile(t, out, "fds=1 names=web pidok=yes fd3=socket:\n")
		})
	}
}

// TestPortablePath runs every other test of this file again with the
// daemon started by re-executing daemonize (the path other Unixes and old
// kernels take, and the one -f and named-pipe outputs take), so both
// launch paths keep the same guarantees.
const reexecEnv = fork.ReexecEnv

func TestPortablePath(t *testing.T) {
	if os.Getenv(reexecEnv) == "1" {
		t.Skip("already on the portable path")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.skip=^TestPortablePath$", "-test.v")
	cmd.Env = append(os.Environ(), reexecEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the suite fails on the portable path: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestPidfileIsTheProgramsAndLocked")) {
		t.Fatalf("the portable-path run did not run the suite:\n%s", out)
	}
}
