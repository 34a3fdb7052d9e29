package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildExe  string
	buildErr  error
)

// TestMain removes the example binary that build made.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles the example once for all the tests, as `go build` would.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if buildDir, buildErr = os.MkdirTemp("", "echo-server-test-"); buildErr != nil {
			return
		}
		buildExe = filepath.Join(buildDir, "echo-server")
		if out, err := exec.Command(goBin, "build", "-o", buildExe, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildExe
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, exe string, args ...string) result {
	t.Helper()
	cmd := exec.Command(exe, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v did not exit; stderr:\n%s", exe, args, stderr.String())
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Errorf("pidfile content %q does not end in a newline", data)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pidfile content %q: %v", data, err)
	}
	return pid
}

var servingRE = regexp.MustCompile(`echo-server pid (\d+) serving on (\S+) as uid (\d+)`)

// TestEndToEnd runs the README's main job: start the daemon, use it, see a
// second start refused, stop it, and find the pidfile gone and the log
// written.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	exe := build(t)
	dir := t.TempDir()
	pidPath, logPath := filepath.Join(dir, "echo.pid"), filepath.Join(dir, "echo.log")

	start := run(t, exe, "-dir", dir, "-addr", "127.0.0.1:0")
	if start.code != 0 || start.stdout != "" || start.stderr != "" {
		t.Fatalf("start: exit %d, stdout %q, stderr %q", start.code, start.stdout, start.stderr)
	}
	pid := readPID(t, pidPath)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !blivettest.Alive(pid) {
		t.Fatalf("daemon %d not running after the launcher exited 0", pid)
	}
	if sid, err := unix.Getsid(pid); err == nil && (sid == pid || sid == mustGetsid(t)) {
		t.Errorf("daemon session %d: a session leader or still in the test's session", sid)
	}

	// The log line comes right after ready: poll for it.
	var m []string
	blivettest.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(logPath)
		m = servingRE.FindStringSubmatch(string(data))
		return m != nil
	}, "no serving line in %s", logPath)
	if m[1] != strconv.Itoa(pid) || m[3] != strconv.Itoa(os.Getuid()) {
		t.Errorf("log says %q, pidfile says %d", m[0], pid)
	}

	conn, err := net.DialTimeout("tcp", m[2], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("hello, daemon\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || line != "hello, daemon\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}

	// A second instance on the same pidfile loses the lock: 69, the first
	// one and its pidfile untouched.
	second := run(t, exe, "-dir", dir, "-addr", "127.0.0.1:0")
	if second.code != 69 || !strings.Contains(second.stderr, pidPath) || !strings.Contains(second.stderr, strconv.Itoa(pid)) {
		t.Errorf("second start: exit %d, stderr %q; want 69 naming %s and pid %d", second.code, second.stderr, pidPath, pid)
	}
	if readPID(t, pidPath) != pid || !blivettest.Alive(pid) {
		t.Errorf("the second start disturbed the first daemon")
	}

	stop := run(t, exe, "-dir", dir, "-stop")
	if stop.code != 0 || !strings.Contains(stop.stdout, "stopped pid "+strconv.Itoa(pid)) {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", stop.code, stop.stdout, stop.stderr)
	}
	// -stop returns once the daemon's lock is released and its process
	// has ended (every thread, not just the main one).
	if blivettest.Alive(pid) {
		t.Errorf("daemon %d still has running threads after -stop", pid)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile after -stop: %v", err)
	}
	if data, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(data), "serving on") {
		t.Errorf("log: %q, %v", data, err)
	}
	if again := run(t, exe, "-dir", dir, "-stop"); again.code != 1 || !strings.Contains(again.stderr, "not running") {
		t.Errorf("stop when stopped: exit %d, stderr %q", again.code, again.stderr)
	}
}

// TestListenFailureReachesTheLauncher checks that an error in the daemon
// (its port taken) is the launcher's exit code and message, and that no
// daemon or pidfile is left behind.
func TestListenFailureReachesTheLauncher(t *testing.T) {
	t.Parallel()
	exe := build(t)
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	res := run(t, exe, "-dir", dir, "-addr", busy.Addr().String())
	if res.code != 71 || !strings.Contains(res.stderr, "listen") || !strings.Contains(res.stderr, "address already in use") {
		t.Errorf("exit %d, stderr %q; want 71 naming listen", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "echo.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile left behind: %v", err)
	}
}

func mustGetsid(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}
