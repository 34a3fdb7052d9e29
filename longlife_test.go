//go:build linux

package blivet_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/exefile"
	"github.com/blivet-go/blivet/sockets"
)

// The "longlife" helper is an echo daemon with a named listener, the
// reopen signal (SIGHUP) and upgrades: SIGUSR1 runs ctx.Upgrade and
// writes its outcome to upgrade-<pid>.txt ("<code> <error>"), SIGUSR2 is
// WithUpgradeSignal. Each connection's first line is also written to
// stdout. A generation started while the file fail-next exists reports
// an error with code 73 instead of getting ready. Once replaced, it stops
// accepting, finishes its connections and exits.
func init() {
	blivettest.Register("longlife", func(h *blivettest.H) {
		logPath := filepath.Join(h.Dir, "out.log")
		var extra []blivet.Option
		if u := h.Env("LL_USER"); u != "" {
			extra = append(extra, blivet.WithUser(u))
		}
		ctx, err := blivet.Daemonize(append(extra,
			blivet.WithPidfile(h.Pidfile()),
			blivet.WithStdout(logPath),
			blivet.WithStderr(logPath),
			blivet.WithCleanupOnSignal(),
			blivet.WithAppend(true), // generations share the log: O_APPEND keeps their lines whole
			blivet.WithListener("echo", "tcp", "127.0.0.1:0"),
			blivet.WithReopenSignal(syscall.SIGHUP),
			blivet.WithUpgradeSignal(syscall.SIGUSR2),
			blivet.WithReadyTimeout(3*time.Second),
		)...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		if _, err := os.Stat(filepath.Join(h.Dir, "fail-next")); err == nil {
			ctx.ReportError(blivet.WrapError("app", blivet.ExitCantCreate, fmt.Errorf("fail-next is set")))
		}
		if _, err := os.Stat(filepath.Join(h.Dir, "panic-next")); err == nil {
			panic("panic-next is set")
		}
		if _, err := os.Stat(filepath.Join(h.Dir, "exit-next")); err == nil {
			os.Exit(5)
		}
		if _, err := os.Stat(filepath.Join(h.Dir, "hang-next")); err == nil {
			signal.Ignore(syscall.SIGTERM) // only SIGKILL ends it
			select {}
		}
		lns, err := sockets.Listeners(ctx.Files("echo"))
		if err != nil || len(lns) != 1 {
			ctx.ReportError(fmt.Errorf("listeners %v: %v", lns, err))
		}
		ln := lns[0]
		if _, err := os.Stat(filepath.Join(h.Dir, "addr.json")); err != nil { // the first generation's
			h.Report("addr", ln.Addr().String())
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		if err := ctx.DropPrivileges(); err != nil {
			ctx.ReportError(err)
		}
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		fmt.Printf("generation %d ready as uid %d\n", os.Getpid(), os.Geteuid())
		var upgrading sync.WaitGroup
		go func() {
			for range usr1 {
				upgrading.Add(1) // before Replaced can close
				err := ctx.Upgrade()
				msg := fmt.Sprintf("%d %v", blivet.ExitCodeOf(err), err)
				tmp := filepath.Join(h.Dir, fmt.Sprintf(".upgrade-%d.tmp", os.Getpid()))
				_ = os.WriteFile(tmp, []byte(msg), 0o644)
				_ = os.Rename(tmp, filepath.Join(h.Dir, fmt.Sprintf("upgrade-%d.txt", os.Getpid())))
				upgrading.Done()
			}
		}()
		var conns sync.WaitGroup
		go func() {
			<-ctx.Replaced()
			ln.Close()
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				first := true
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if first {
						fmt.Print("echo: " + line)
						first = false
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
		conns.Wait()
		upgrading.Wait()
		fmt.Printf("generation %d replaced, exiting\n", os.Getpid())
	})
}

func pidIn(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pidfile %q: %v", data, err)
	}
	return pid
}

// upgrade sends SIGUSR1 to pid and returns the outcome the helper wrote.
func upgrade(t *testing.T, dir string, pid int) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("upgrade-%d.txt", pid))
	os.Remove(path)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var out []byte
	blivettest.Eventually(t, 30*time.Second, func() bool {
		var err error
		out, err = os.ReadFile(path)
		return err == nil
	}, "no upgrade outcome from PID %d; log:\n%s", pid, readLog(dir))
	return string(out)
}

func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test daemons are real processes inspected through /proc of every generation")
	}
}

// TestUpgradeUnderLoad keeps a client connecting and echoing through 20
// upgrades: no connection may fail; afterwards the pidfile names the
// newest generation, it is the only process left of the run, and every
// old generation is gone.
func TestUpgradeUnderLoad(t *testing.T) {
	requireRoot(t)
	d := blivettest.StartDaemon(t, "longlife")
	var addr string
	d.Run.Await("addr", &addr)
	if err := echoOnce(addr, "hello"); err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := echoOnce(addr, fmt.Sprintf("ping %d", i)); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	pids := []int{d.PID}
	for i := 0; i < 20; i++ {
		old := pidIn(t, d.Pidfile)
		before := ok.Load()
		if out := upgrade(t, d.Run.Dir, old); out != "0 <nil>" {
			log, _ := os.ReadFile(filepath.Join(d.Run.Dir, "out.log"))
			t.Fatalf("upgrade %d of PID %d: %s\n%s", i+1, old, out, log)
		}
		next := pidIn(t, d.Pidfile)
		if next == old {
			t.Fatalf("upgrade %d: the pidfile still names PID %d", i+1, old)
		}
		pids = append(pids, next)
		blivettest.Eventually(t, 10*time.Second, func() bool { return blivettest.Gone(old) }, "generation %d still has live tasks after its upgrade", old)
		// Some echoes went through the new generation before the next upgrade.
		blivettest.Eventually(t, 10*time.Second, func() bool { return ok.Load() > before+5 }, "no echo after upgrade %d", i+1)
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d connections failed across 20 upgrades; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d echoes through 20 upgrades, 0 failed", ok.Load())

	newest := pidIn(t, d.Pidfile)
	if newest != pids[len(pids)-1] {
		t.Fatalf("pidfile names %d, newest generation is %d", newest, pids[len(pids)-1])
	}
	for _, p := range pids[:len(pids)-1] {
		if !blivettest.Gone(p) {
			t.Errorf("old generation %d still has live tasks", p)
		}
	}
	if live := d.Run.PIDs(); len(live) != 1 || live[0] != newest {
		t.Fatalf("processes of the run: %v, want only the newest generation %d", live, newest)
	}
	// The newest generation logs right after it said ready: poll.
	blivettest.Eventually(t, 10*time.Second, func() bool {
		log, _ := os.ReadFile(filepath.Join(d.Run.Dir, "out.log"))
		return strings.Count(string(log), " ready as uid ") == 21
	}, "the log does not have 21 generations ready (appended, never truncated):\n%s", readLog(d.Run.Dir))
	if !pfProbe(t, d.Pidfile).Held {
		t.Fatal("the lock on the pidfile is not held after 20 upgrades")
	}
	d.PID = newest
	d.Stop()
	if _, err := os.Stat(d.Pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile after the newest generation stopped: %v", err)
	}
}

// TestUpgradeFailureKeepsOld: a new generation that fails before ready
// (code 73) leaves the old one serving, the pidfile unchanged and the lock
// held, and Upgrade returns the code; the failed process is gone.
func TestUpgradeFailureKeepsOld(t *testing.T) {
	requireRoot(t)
	d := blivettest.StartDaemon(t, "longlife")
	var addr string
	d.Run.Await("addr", &addr)
	if err := os.WriteFile(filepath.Join(d.Run.Dir, "fail-next"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := upgrade(t, d.Run.Dir, d.PID)
	if !strings.HasPrefix(out, "73 ") || !strings.Contains(out, "fail-next is set") {
		t.Fatalf("Upgrade = %q, want code 73 with the new generation's error", out)
	}
	var failedPID int
	if i := strings.Index(out, "(PID "); i >= 0 {
		fmt.Sscanf(out[i:], "(PID %d)", &failedPID)
	}
	if failedPID <= 0 || !blivettest.Gone(failedPID) {
		t.Fatalf("failed generation %d: not identified or still alive (%q)", failedPID, out)
	}
	if got := pidIn(t, d.Pidfile); got != d.PID {
		t.Fatalf("pidfile names %d after a failed upgrade, want %d", got, d.PID)
	}
	if err := echoOnce(addr, "still here"); err != nil {
		t.Fatalf("old generation no longer serves: %v", err)
	}
	if !pfProbe(t, d.Pidfile).Held {
		t.Fatal("the lock on the pidfile is not held after a failed upgrade")
	}
	// The old one can still be upgraded once the cause is gone.
	os.Remove(filepath.Join(d.Run.Dir, "fail-next"))
	if out := upgrade(t, d.Run.Dir, d.PID); out != "0 <nil>" {
		t.Fatalf("second upgrade: %s", out)
	}
	if err := echoOnce(addr, "new"); err != nil {
		t.Fatal(err)
	}
}

// TestReopenOutputs: after the log is renamed, SIGHUP makes the daemon
// write to a new file at the configured path.
func TestReopenOutputs(t *testing.T) {
	requireRoot(t)
	d := blivettest.StartDaemon(t, "longlife")
	var addr string
	d.Run.Await("addr", &addr)
	logPath := filepath.Join(d.Run.Dir, "out.log")
	blivettest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(readLog(d.Run.Dir), " ready as uid ")
	}, "the daemon never logged its start")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(d.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	i := 0
	blivettest.Eventually(t, 10*time.Second, func() bool {
		i++
		if err := echoOnce(addr, fmt.Sprintf("after-rotate %d", i)); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), fmt.Sprintf("echo: after-rotate %d\n", i))
	}, "the daemon never wrote to the new %s", logPath)
	old, _ := os.ReadFile(logPath + ".1")
	if !strings.Contains(string(old), " ready as uid ") {
		t.Errorf("the rotated file lost its content: %q", old)
	}
	if !blivettest.Alive(d.PID) {
		t.Fatal("the daemon died on SIGHUP")
	}
}

func readLog(dir string) string {
	data, _ := os.ReadFile(filepath.Join(dir, "out.log"))
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// TestUpgradeAfterDrop: a daemon that dropped to nobody is upgraded; the
// new generation starts as nobody (it cannot be root again), verifies
// instead of dropping, adopts the lock and the socket, and takes over;
// then SIGUSR2 (WithUpgradeSignal) upgrades it once more, and a failing
// generation's error lands in the daemon's stderr while it goes on.
func TestUpgradeAfterDrop(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // the test's temp dir, for nobody to reach dir
		t.Fatal(err)
	}
	// The successor is started by nobody: run a copy of the test binary
	// that nobody can execute (go test's build directory is private).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "bin")
	if err := os.Mkdir(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(pub, "blivet.test")
	if err := exefile.Write(copyExe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	d := blivettest.StartDaemon(t, "longlife", blivettest.WithDir(dir), blivettest.WithEnv("LL_USER", "nobody"),
		blivettest.WithCmd(func(c *exec.Cmd) { c.Path = copyExe }))
	var addr string
	d.Run.Await("addr", &addr)
	if out := upgrade(t, dir, d.PID); out != "0 <nil>" {
		t.Fatalf("upgrade as nobody: %s\n%s", out, readLog(dir))
	}
	next := pidIn(t, d.Pidfile)
	if next == d.PID {
		t.Fatal("pidfile unchanged")
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", next))
	if !strings.Contains(string(status), "Uid:\t65534\t65534\t65534\t65534") {
		t.Errorf("new generation ids:\n%s", status)
	}
	if err := echoOnce(addr, "as nobody"); err != nil {
		t.Fatal(err)
	}
	blivettest.Eventually(t, 10*time.Second, func() bool { return blivettest.Gone(d.PID) }, "old generation %d still alive", d.PID)

	// WithUpgradeSignal: a failure is written to stderr, the daemon goes on.
	if err := os.WriteFile(filepath.Join(dir, "fail-next"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(next, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	blivettest.Eventually(t, 30*time.Second, func() bool {
		return strings.Contains(readLog(dir), "fail-next is set (signal user defined signal 2)")
	}, "no failed-upgrade report in the log:\n%s", readLog(dir))
	if got := pidIn(t, d.Pidfile); got != next || !blivettest.Alive(next) {
		t.Fatalf("after a failed signal upgrade: pidfile %d, alive %v", got, blivettest.Alive(next))
	}
	os.Remove(filepath.Join(dir, "fail-next"))
	if err := syscall.Kill(next, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	blivettest.Eventually(t, 30*time.Second, func() bool { return pidIn(t, d.Pidfile) != next }, "SIGUSR2 did not upgrade")
	blivettest.Eventually(t, 10*time.Second, func() bool { return blivettest.Gone(next) }, "generation %d still alive", next)
	if err := echoOnce(addr, "after signal"); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFailureModes: a new generation that panics, exits or never
// gets ready is a failed upgrade with the launcher's codes (70, 70, 75);
// the failed process is gone (SIGKILL when it ignores the timeout's
// SIGTERM) and the old generation serves on with its pidfile and lock.
func TestUpgradeFailureModes(t *testing.T) {
	requireRoot(t)
	d := blivettest.StartDaemon(t, "longlife")
	var addr string
	d.Run.Await("addr", &addr)
	for _, c := range []struct {
		file string
		code int
		msg  string
	}{
		{"panic-next", 70, "panic-next is set"},
		{"exit-next", 70, "exited before it was ready"},
		{"hang-next", 75, "not ready after 3s"},
	} {
		t.Run(c.file, func(t *testing.T) {
			trigger := filepath.Join(d.Run.Dir, c.file)
			if err := os.WriteFile(trigger, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(trigger)
			if c.file == "hang-next" {
				// While this upgrade waits for its new generation, a
				// second one (SIGUSR2) is refused.
				go func() {
					for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
						if len(childrenOf(d.PID)) > 0 { // the new generation is started
							_ = syscall.Kill(d.PID, syscall.SIGUSR2)
							return
						}
					}
				}()
			}
			out := upgrade(t, d.Run.Dir, d.PID)
			if c.file == "hang-next" && !strings.Contains(readLog(d.Run.Dir), "upgrade: an upgrade is already running (signal user defined signal 2)") {
				t.Errorf("a concurrent upgrade was not refused; log:\n%s", readLog(d.Run.Dir))
			}
			if !strings.HasPrefix(out, strconv.Itoa(c.code)+" ") || !strings.Contains(out, c.msg) {
				t.Fatalf("Upgrade = %q, want code %d with %q", out, c.code, c.msg)
			}
			var failed int
			if i := strings.Index(out, "(PID "); i >= 0 {
				fmt.Sscanf(out[i:], "(PID %d)", &failed)
			}
			if failed <= 0 || !blivettest.Gone(failed) {
				t.Fatalf("failed generation %d not gone (%q)", failed, out)
			}
			if got := pidIn(t, d.Pidfile); got != d.PID {
				t.Fatalf("pidfile names %d, want %d", got, d.PID)
			}
			if !pfProbe(t, d.Pidfile).Held {
				t.Fatal("lock released")
			}
			if err := echoOnce(addr, c.file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// childrenOf returns the live children of pid.
func childrenOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if err != nil || i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscanf(s[i+2:], "%s %d", &state, &ppid); err == nil && ppid == pid && state != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// TestUpgradeTellsServiceManager: under a service manager (NOTIFY_SOCKET),
// the first generation says READY=1 with its PID; after an upgrade the old
// one sends MAINPID= with the new PID, sent by the old (main) process, and
// the new generation does not announce itself.
func TestUpgradeTellsServiceManager(t *testing.T) {
	requireRoot(t)
	m := newSDManager(t, false)
	d := blivettest.StartDaemon(t, "longlife", blivettest.WithEnv("NOTIFY_SOCKET", m.addr))
	ready := m.must(t)
	if !strings.Contains(ready.Text, "READY=1") || !strings.Contains(ready.Text, fmt.Sprintf("MAINPID=%d", d.PID)) {
		t.Fatalf("first notification %q, want READY=1 and MAINPID=%d", ready.Text, d.PID)
	}
	if out := upgrade(t, d.Run.Dir, d.PID); out != "0 <nil>" {
		t.Fatalf("upgrade: %s", out)
	}
	next := pidIn(t, d.Pidfile)
	msg := m.must(t)
	if msg.Text != fmt.Sprintf("MAINPID=%d", next) || msg.PID != d.PID {
		t.Fatalf("after the upgrade: %q from PID %d, want MAINPID=%d from the old PID %d", msg.Text, msg.PID, next, d.PID)
	}
	m.none(t)
}

// TestUpgradeWithSocketActivation: a listener whose name matches a
// socket-activation fd (LISTEN_FDNAMES) is that fd, not a new socket, and
// the next generation of an upgrade serves on it too.
func TestUpgradeWithSocketActivation(t *testing.T) {
	requireRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // f keeps the socket
	defer f.Close()
	d := blivettest.StartDaemon(t, "longlife", blivettest.WithEnv("LISTEN_FDS", "1"), blivettest.WithEnv("LISTEN_FDNAMES", "echo"),
		blivettest.WithCmd(func(cmd *exec.Cmd) {
			cmd.ExtraFiles = []*os.File{f}
			cmd.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`}, cmd.Args...)
			cmd.Path = "/bin/sh"
		}))
	var addr string
	d.Run.Await("addr", &addr)
	if addr != ln.Addr().String() {
		t.Fatalf("the daemon serves on %s, not on the activated socket %s", addr, ln.Addr())
	}
	f.Close() // only the daemon holds it now
	for i := 0; i < 3; i++ {
		old := pidIn(t, d.Pidfile)
		if out := upgrade(t, d.Run.Dir, old); out != "0 <nil>" {
			t.Fatalf("upgrade: %s", out)
		}
		blivettest.Eventually(t, 10*time.Second, func() bool { return blivettest.Gone(old) }, "generation %d still alive", old)
		if err := echoOnce(addr, "activated"); err != nil {
			t.Fatalf("after upgrade %d: %v", i+1, err)
		}
	}
}
