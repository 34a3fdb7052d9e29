package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/exefile"
)

// start launches the daemon in dir and returns its PID and address.
func start(t *testing.T, exe, dir string) (int, string) {
	t.Helper()
	res := run(t, exe, "-dir", dir, "-addr", "127.0.0.1:0")
	if res.code != 0 {
		t.Fatalf("start: exit %d, stderr %q", res.code, res.stderr)
	}
	pid := readPID(t, filepath.Join(dir, "echo.pid"))
	t.Cleanup(func() { killAll(exe) })
	var m []string
	blivettest.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "echo.log"))
		m = servingRE.FindStringSubmatch(string(data))
		return m != nil
	}, "no serving line in the log")
	return pid, m[2]
}

// procsOf returns the live processes running exe (any version of the file).
func procsOf(exe string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && strings.TrimSuffix(link, " (deleted)") == exe && !allTasksGone(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func killAll(exe string) {
	for _, pid := range procsOf(exe) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// allTasksGone reports whether no thread of pid is alive (a zombie holds
// no fd and no lock).
func allTasksGone(pid int) bool {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, e := range ents {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, e.Name()))
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); err == nil && i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X' {
			return false
		}
	}
	return true
}

func echo(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && got != msg+"\n" {
		err = fmt.Errorf("echo %q, want %q", got, msg)
	}
	return err
}

// TestUpgradeKeepsServing upgrades the example five times with
// "echo-server -upgrade" while a client connects and echoes in a loop,
// installing a new copy of the binary before the first: no connection
// fails, the new generation runs the new file, the pidfile names the
// newest generation and it is the only process left.
func TestUpgradeKeepsServing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	exe := build(t)
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "echo.pid")
	pid, addr := start(t, exe, dir)

	var ok, failed atomic.Int64
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := echo(addr, fmt.Sprintf("line %d", i)); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			} else {
				ok.Add(1)
			}
		}
	}()

	// A new build: a copy renamed over the path (a new inode).
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := exefile.Write(exe+".new", data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	var installed syscall.Stat_t
	if err := syscall.Stat(exe, &installed); err != nil {
		t.Fatal(err)
	}

	gens := []int{pid}
	for i := 0; i < 5; i++ {
		old := readPID(t, pidPath)
		res := run(t, exe, "-dir", dir, "-upgrade")
		if res.code != 0 {
			data, _ := os.ReadFile(filepath.Join(dir, "echo.log"))
			t.Fatalf("upgrade %d: exit %d, stderr %q\nlog:\n%s", i+1, res.code, res.stderr, data)
		}
		next := readPID(t, pidPath)
		if next == old {
			t.Fatalf("upgrade %d: pidfile still names %d", i+1, old)
		}
		gens = append(gens, next)
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", next), &st); err != nil || st.Ino != installed.Ino {
			t.Fatalf("generation %d does not run the installed binary (inode %d, want %d, %v)", next, st.Ino, installed.Ino, err)
		}
		blivettest.Eventually(t, 10*time.Second, func() bool { return allTasksGone(old) }, "generation %d still alive after its upgrade", old)
		before := ok.Load()
		blivettest.Eventually(t, 10*time.Second, func() bool { return ok.Load() > before+3 }, "no echo after upgrade %d", i+1)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d connections failed; first: %v", n, n+ok.Load(), first.Load())
	}
	newest := gens[len(gens)-1]
	if got := procsOf(exe); len(got) != 1 || got[0] != newest {
		t.Fatalf("processes running the example: %v, want only %d", got, newest)
	}
	t.Logf("%d echoes through 5 upgrades, 0 failed", ok.Load())
	if res := run(t, exe, "-dir", dir, "-stop"); res.code != 0 {
		t.Fatalf("stop: %d %q", res.code, res.stderr)
	}
}

// TestLogrotate runs Debian's logrotate with the shipped logrotate.conf
// (paths put in a temp dir): the log is rotated, and the daemon writes
// into the new file.
func TestLogrotate(t *testing.T) {
	logrotate, err := exec.LookPath("logrotate")
	if err != nil {
		for _, p := range []string{"/usr/sbin/logrotate", "/sbin/logrotate"} {
			if _, err := os.Stat(p); err == nil {
				logrotate = p
			}
		}
	}
	if logrotate == "" {
		t.Skip("logrotate is not installed (apt-get install logrotate): the shipped logrotate.conf is not exercised")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: logrotate's create makes the new log for nobody")
	}
	exe := build(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // logrotate refuses insecure parents
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "echo.log")
	pid, addr := start(t, exe, dir)

	conf, err := os.ReadFile("logrotate.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(conf), "/tmp/blivet-echo", dir)
	// The signalling command: daemonize --signal when this checkout's
	// daemonize has it, otherwise the example's own -reopen (by the
	// pidfile).
	signaller := exe + " -reopen -dir " + dir
	if d := daemonizeWithSignal(t); d != "" {
		signaller = d + " --signal HUP -p " + filepath.Join(dir, "echo.pid")
	} else {
		t.Log("daemonize has no --signal yet: postrotate uses echo-server -reopen")
	}
	text = strings.ReplaceAll(text, "daemonize --signal HUP -p "+filepath.Join(dir, "echo.pid"), signaller)
	if !strings.Contains(text, signaller) {
		t.Fatalf("the shipped configuration has no postrotate daemonize --signal line:\n%s", text)
	}
	t.Logf("postrotate: %s", signaller)
	confPath := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(logrotate, "-f", "-v", "-s", filepath.Join(dir, "state"), confPath).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	old, err := os.ReadFile(logPath + ".1")
	if err != nil || !strings.Contains(string(old), "serving on") {
		t.Fatalf("rotated log %s.1: %v %q\nlogrotate:\n%s", logPath, err, old, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(logPath, &st); err != nil {
		t.Fatalf("no new log: %v", err)
	}
	if nobody := 65534; int(st.Uid) != nobody {
		t.Errorf("new log owned by uid %d, want nobody (create)", st.Uid)
	}
	blivettest.Eventually(t, 10*time.Second, func() bool {
		if err := echo(addr, "after rotation"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "connection from")
	}, "the daemon (pid %d) never wrote into the new %s", pid, logPath)
	if !blivettest.Alive(pid) {
		t.Fatalf("daemon %d died", pid)
	}
}

// daemonizeWithSignal builds this module's daemonize and returns its path
// when it has --signal, "" otherwise.
func daemonizeWithSignal(t *testing.T) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "daemonize")
	if out, err := exec.Command(goBin, "build", "-o", bin, "../../cmd/daemonize").CombinedOutput(); err != nil {
		t.Logf("building daemonize: %v\n%s", err, out)
		return ""
	}
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	if !strings.Contains(string(out), "--signal") {
		return ""
	}
	return bin
}
