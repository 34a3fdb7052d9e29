//go:build linux

package main

// Readiness of programs daemonize did not write (--notify, --ready-fd,
// --ready-after), in real processes: the launcher must exit 0 only after
// the program's ready moment, 70 (saying how) when the program ends first,
// 75 at --timeout with the program stopped, and leave no pidfile behind a
// failed launch. Ready moments are stamped by the programs themselves
// (nanoseconds since the epoch, written just before they signal): the
// stamp must exist when the launcher has exited.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/stages/fork"
)

// readyDelay is how long the test programs work before they are ready.
const readyDelay = 300 * time.Millisecond

// sharedDir returns a directory every user can reach and write (the
// programs run as nobody in some tests; t.TempDir's parent is 0700).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "daemonize-ready-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// python returns the system python3 (readable by nobody), or skips.
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no system python3 for the sd_notify sender")
	return ""
}

func needSystemdNotify(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify not installed (apt-get install -y systemd)")
	}
	return p
}

// notifySender is a tiny sd_notify sender in Python: it sends
// STATUS=warming up, works readyDelay, stamps the ready moment into
// argv[1], sends READY=1, then ERRNO=5 and STOPPING=1 (which must not
// matter after ready) and STATUS= ticks for ever, counting them in
// argv[2]. Like sd_notify(3) it ignores a failed send.
const notifySender = `import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(m):
    try:
        s.sendto(m.encode(), addr)
    except OSError:
        pass
send("STATUS=warming up")
time.sleep(float(sys.argv[3]))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(time.time_ns()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
send("READY=1")
send("ERRNO=5")
send("STOPPING=1")
n = 0
while True:
    n += 1
    send("STATUS=tick %d" % n)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(0.005)
`

// stampScript returns a shell snippet that stamps the ready moment into
// path (atomically: a reader never sees half a number).
func stampScript(path string) string {
	return fmt.Sprintf("date +%%s%%N > %s.tmp && mv %s.tmp %s", path, path, path)
}

// expectReadyAfterStamp runs daemonize to completion, expects 0 and checks
// that the program had stamped its ready moment when the launcher exited,
// and that the launch took at least min.
func expectReadyAfterStamp(t *testing.T, stamp string, min time.Duration, args []string, opts ...runOpt) *launch {
	t.Helper()
	begin := time.Now()
	r := daemonize(t, args, opts...)
	end := time.Now()
	data, err := os.ReadFile(stamp) // right away: it must exist already
	r.expect(0)
	if err != nil {
		t.Fatalf("the launcher exited 0 before the program was ready: %v", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatalf("stamp %q: %v", data, err)
	}
	if ready := time.Unix(0, ns); ready.After(end) {
		t.Errorf("the program was ready at %v, after the launcher exited (%v)", ready, end)
	}
	if took := end.Sub(begin); took < min {
		t.Errorf("the launch took %v, less than the program's %v before ready", took, min)
	}
	return r
}

// expectPidfileIs checks that pidfile names the running program.
func expectPidfileIs(t *testing.T, r *launch, pidfile string) int {
	t.Helper()
	pid := r.daemon()
	if got := readFile(t, pidfile); got != fmt.Sprintf("%d\n", pid) {
		t.Errorf("pidfile %q, want the program's PID %d", got, pid)
	}
	return pid
}

// expectNoPidfile checks that the pidfile is gone once the launcher exited.
// readyModes are the three readiness options, with a shell program (run
// by sh -c) that becomes ready after readyDelay, stamping path first.
type readyMode struct {
	name  string
	flags []string
	ready func(stamp string) string
}

func readyModes(t *testing.T) []readyMode {
	notify := needSystemdNotify(t)
	return []readyMode{
		{"notify", []string{"--notify"}, func(stamp string) string {
			return fmt.Sprintf("sleep 0.3; %s; %s --ready; exec sleep 100", stampScript(stamp), notify)
		}},
		{"ready-fd", []string{"--ready-fd", "5"}, func(stamp string) string {
			return fmt.Sprintf("sleep 0.3; %s; echo >&5; exec sleep 100", stampScript(stamp))
		}},
		{"ready-after", []string{"--ready-after", "300ms"}, func(stamp string) string {
			return fmt.Sprintf("%s; exec sleep 100", stampScript(stamp))
		}},
	}
}

// TestReadySuccess: each readiness option makes the launcher exit 0 only
// after the program's ready moment, with the pidfile naming the program.
func TestReadySuccess(t *testing.T) {
	for _, m := range readyModes(t) {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			pidfile, stamp := filepath.Join(dir, "p.pid"), filepath.Join(dir, "ready")
			args := append(append([]string{"-p", pidfile}, m.flags...), "/bin/sh", "-c", m.ready(stamp))
			r := expectReadyAfterStamp(t, stamp, readyDelay, args)
			if r.stderr != "" {
				t.Errorf("stderr %q", r.stderr)
			}
			pid := expectPidfileIs(t, r, pidfile)
			// The intermediate that waited as the program's parent is gone.
			if ppid := procStat(t, pid).ppid; ppid != 1 && !slices.Contains(ancestors(t), ppid) {
				t.Errorf("ppid %d: not adopted by init or a subreaper ancestor", ppid)
			}
		})
	}
}

// TestNotifyPythonSender: a program speaking the protocol itself. STATUS
// lines show with -v; ERRNO= and STOPPING=1 after READY=1 fail nothing;
// the program's later messages neither block nor stop it.
func TestNotifyPythonSender(t *testing.T) {
	py := python(t)
	dir := sharedDir(t)
	script := writeScript(t, filepath.Join(dir, "sender.py"), notifySender)
	stamp, count, pidfile := filepath.Join(dir, "ready"), filepath.Join(dir, "count"), filepath.Join(t.TempDir(), "p.pid")
	r := expectReadyAfterStamp(t, stamp, readyDelay, []string{"-v", "--notify", "-p", pidfile, py, script, stamp, count, "0.3"})
	if !strings.Contains(r.stderr, "daemonize: status: warming up\n") {
		t.Errorf("-v does not show the STATUS line:\n%s", r.stderr)
	}
	pid := expectPidfileIs(t, r, pidfile)
	// The program goes on sending after the launcher is gone.
	var first int
	blivettest.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(count)
		first, _ = strconv.Atoi(string(data))
		return first > 0
	}, "the program never sent after READY=1")
	blivettest.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(count)
		n, _ := strconv.Atoi(string(data))
		return n >= first+50
	}, "the program stopped sending (blocked?) after READY=1")
	if !blivettest.Alive(pid) {
		t.Errorf("the program died after ready")
	}
	if got := r.daemon(); got != pid {
		t.Errorf("the program is now %d, was %d", got, pid)
	}

	t.Run("no STATUS without -v", func(t *testing.T) {
		stamp, count := filepath.Join(dir, "ready2"), filepath.Join(dir, "count2")
		r := expectReadyAfterStamp(t, stamp, 0, []string{"--notify", py, script, stamp, count, "0"})
		if r.stderr != "" {
			t.Errorf("stderr %q", r.stderr)
		}
	})
}

// TestNotifySystemdNotifyStatus: systemd-notify --status lines show with -v.
func TestNotifySystemdNotifyStatus(t *testing.T) {
	notify := needSystemdNotify(t)
	dir := t.TempDir()
	stamp := filepath.Join(dir, "ready")
	script := fmt.Sprintf("%s --status='loading data'; sleep 0.3; %s; %s --ready --status='serving'; exec sleep 100", notify, stampScript(stamp), notify)
	r := expectReadyAfterStamp(t, stamp, readyDelay, []string{"-v", "--notify", "/bin/sh", "-c", script})
	if !strings.Contains(r.stderr, "daemonize: status: loading data\n") {
		t.Errorf("-v does not show the STATUS line:\n%s", r.stderr)
	}
	r.daemon()
}

// TestNotifyRedis: Debian's redis-server, supervised by systemd's
// protocol: the launcher returns only once redis answers.
func TestNotifyRedis(t *testing.T) {
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server)")
	}
	dir := t.TempDir()
	sock, pidfile := filepath.Join(dir, "redis.sock"), filepath.Join(dir, "redis.pid")
	r := daemonize(t, []string{"-v", "--notify", "--timeout", "15s", "-p", pidfile, "-o", filepath.Join(dir, "redis.log"),
		redis, "--supervised", "systemd", "--daemonize", "no", "--port", "0", "--unixsocket", sock,
		"--dir", dir, "--save", "", "--appendonly", "no"})
	// No retry: once daemonize has exited 0, redis must answer.
	conn, derr := net.DialTimeout("unix", sock, 5*time.Second)
	r.expect(0)
	if derr != nil {
		t.Fatalf("redis does not answer right after daemonize exited 0: %v\n%s", derr, r.stderr)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", line, err)
	}
	// redis rewrites its process title over its environment: the run's
	// token cannot find it; the pidfile and the lock can.
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidfile)))
	if err != nil {
		t.Fatalf("pidfile: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		blivettest.AwaitGone(t, pid, 10*time.Second)
	})
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); !strings.Contains(exe, "redis") {
		t.Errorf("the pidfile names %d (%s), not redis", pid, exe)
	}
	if holder := flockHolder(t, pidfile); holder != pid {
		t.Errorf("the lock is held by %d, not redis (%d)", holder, pid)
	}
	if !strings.Contains(r.stderr, "daemonize: status: ") {
		t.Errorf("-v shows no STATUS line of redis:\n%s", r.stderr)
	}
}

// dyingPrograms end before they are ready, and how daemonize must say it.
var dyingPrograms = []struct {
	name, script, want string
}{
	{"exit 3", "exit 3", "the program exited with status 3 before it was ready"},
	{"SIGSEGV", "ulimit -c 0; kill -SEGV $$", "the program was killed by SIGSEGV before it was ready"},
}

// expectEnd checks how daemonize said the program ended: want, or, on the
// re-exec path (where the program's exit status is not known: no process
// waits for it), that it ended, without a status.
func expectEnd(t *testing.T, stderr, want string, reexec bool) {
	t.Helper()
	const unknown = "the program ended before it was ready"
	if strings.Contains(stderr, want) || reexec && strings.Contains(stderr, unknown) {
		return
	}
	if reexec {
		t.Errorf("stderr %q, want %q or %q", stderr, want, unknown)
	} else {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestReadyProgramDiesFirst: 70, how it ended, no pidfile, nothing left.
func TestReadyProgramDiesFirst(t *testing.T) {
	for _, flags := range [][]string{{"--notify"}, {"--ready-fd", "5"}, {"--ready-after", "30s"}} {
		for _, p := range dyingPrograms {
			t.Run(flags[0]+"/"+p.name, func(t *testing.T) {
				pidfile := filepath.Join(t.TempDir(), "p.pid")
				args := append(append([]string{"-p", pidfile}, flags...), "/bin/sh", "-c", p.script)
				r := daemonize(t, args).expect(70)
				expectNoPidfile(t, pidfile)
				expectEnd(t, r.stderr, p.want, os.Getenv(reexecEnv) == "1")
				r.none()
			})
		}
	}
}

// TestReadyTimeout: 75, the program got SIGTERM and is gone (every task),
// and so is the pidfile. On a loaded machine the portable path's Go daemon
// may not reach the exec within the timeout: the launcher then stops the
// daemon itself, and the same must hold.
func TestReadyTimeout(t *testing.T) {
	for _, flags := range [][]string{{"--notify"}, {"--ready-fd", "5"}} {
		t.Run(flags[0], func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "p.pid")
			args := append(append([]string{"--timeout", "500ms", "-p", pidfile}, flags...), "/bin/sleep", "100")
			r := daemonize(t, args).expect(75)
			switch {
			case strings.Contains(r.stderr, "not ready after 500ms; sent SIGTERM to the program"):
			case os.Getenv(reexecEnv) == "1" && strings.Contains(r.stderr, "not ready after 500ms; sent SIGTERM to the daemon"):
				t.Logf("the re-executed daemon had not reached the exec after 500ms: %q", r.stderr)
			default:
				t.Errorf("stderr %q", r.stderr)
			}
			expectNoPidfile(t, pidfile)
			r.none()
		})
	}
}

// TestNotifyFailureBeforeReady: ERRNO= or STOPPING=1 before READY=1 is a
// failure (70); the program, still running, is stopped, the pidfile gone.
func TestNotifyFailureBeforeReady(t *testing.T) {
	notify := needSystemdNotify(t)
	for _, c := range []struct{ msg, want string }{
		{"ERRNO=5", "reported a failure before it was ready: ERRNO=5"},
		{"STOPPING=1", "said STOPPING=1 before it was ready"},
	} {
		t.Run(c.msg, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "p.pid")
			r := daemonize(t, []string{"--notify", "-p", pidfile, "/bin/sh", "-c", notify + " " + c.msg + "; exec sleep 100"}).expect(70)
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q, want %q", r.stderr, c.want)
			}
			expectNoPidfile(t, pidfile)
			r.none()
		})
	}
}

// TestReadyFDClosedWithoutNewline: 70 at once, not when the program ends.
func TestReadyFDClosedWithoutNewline(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "p.pid")
	r := daemonize(t, []string{"--ready-fd", "5", "-p", pidfile, "/bin/sh", "-c", "exec 5>&-; exec sleep 100"}).expect(70)
	if !strings.Contains(r.stderr, "closed its readiness fd 5 without writing a newline") {
		t.Errorf("stderr %q", r.stderr)
	}
	expectNoPidfile(t, pidfile)
	r.none()
}

// TestNotifyExtendTimeout: EXTEND_TIMEOUT_USEC= moves the deadline past
// --timeout.
func TestNotifyExtendTimeout(t *testing.T) {
	notify := needSystemdNotify(t)
	stamp := filepath.Join(t.TempDir(), "ready")
	script := fmt.Sprintf("%s EXTEND_TIMEOUT_USEC=20000000; sleep 2; %s; %s --ready; exec sleep 100", notify, stampScript(stamp), notify)
	r := expectReadyAfterStamp(t, stamp, 2*time.Second, []string{"--notify", "--timeout", "1s", "/bin/sh", "-c", script})
	r.daemon()
}

// TestReadyAsNobody: the socket and the pipe are usable after the drop.
func TestReadyAsNobody(t *testing.T) {
	requireRoot(t)
	for _, m := range readyModes(t)[:2] {
		t.Run(m.name, func(t *testing.T) {
			dir := sharedDir(t)
			pidfile, stamp := filepath.Join(t.TempDir(), "p.pid"), filepath.Join(dir, "ready")
			args := append(append([]string{"-u", "nobody", "-p", pidfile}, m.flags...), "/bin/sh", "-c", m.ready(stamp))
			r := expectReadyAfterStamp(t, stamp, readyDelay, args)
			pid := expectPidfileIs(t, r, pidfile)
			want := fmt.Sprintf("%d %d %d %d", nobody, nobody, nobody, nobody)
			if uid := status(t, pid, "Uid"); uid != want {
				t.Errorf("Uid %s, want %s", uid, want)
			}
		})
	}
	t.Run("python", func(t *testing.T) {
		py := python(t)
		dir := sharedDir(t)
		script := writeScript(t, filepath.Join(dir, "sender.py"), notifySender)
		stamp, count := filepath.Join(dir, "ready"), filepath.Join(dir, "count")
		r := expectReadyAfterStamp(t, stamp, readyDelay, []string{"-u", "nobody", "--notify", py, script, stamp, count, "0.3"})
		if uid := status(t, r.daemon(), "Uid"); !strings.HasPrefix(uid, strconv.Itoa(nobody)+" ") {
			t.Errorf("Uid %s", uid)
		}
	})
}

// TestReadyReexec: the same on the re-executed path (no raw intermediate
// waiting for the program). How the program ended may not be known there:
// the message says so or names the right status; nothing hangs.
func TestReadyReexec(t *testing.T) {
	if os.Getenv(reexecEnv) == "1" {
		t.Skip("the whole run is on the re-exec path (TestPortablePath)")
	}
	reexec := withEnv(fork.ReexecEnv + "=1")
	for _, m := range readyModes(t) {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			pidfile, stamp := filepath.Join(dir, "p.pid"), filepath.Join(dir, "ready")
			args := append(append([]string{"-p", pidfile}, m.flags...), "/bin/sh", "-c", m.ready(stamp))
			r := expectReadyAfterStamp(t, stamp, readyDelay, args, reexec)
			expectPidfileIs(t, r, pidfile)
		})
	}
	for _, flags := range [][]string{{"--notify"}, {"--ready-fd", "5"}, {"--ready-after", "30s"}} {
		for _, p := range dyingPrograms {
			t.Run(flags[0]+"/"+p.name, func(t *testing.T) {
				pidfile := filepath.Join(t.TempDir(), "p.pid")
				args := append(append([]string{"-p", pidfile}, flags...), "/bin/sh", "-c", p.script)
				r := daemonize(t, args, reexec).expect(70)
				expectNoPidfile(t, pidfile)
				expectEnd(t, r.stderr, p.want, true)
				r.none()
			})
		}
	}
	t.Run("timeout", func(t *testing.T) {
		pidfile := filepath.Join(t.TempDir(), "p.pid")
		r := daemonize(t, []string{"--notify", "--timeout", "500ms", "-p", pidfile, "/bin/sleep", "100"}, reexec).expect(75)
		if !strings.Contains(r.stderr, "not ready after 500ms") {
			t.Errorf("stderr %q", r.stderr)
		}
		expectNoPidfile(t, pidfile)
		r.none()
	})
	t.Run("ERRNO", func(t *testing.T) {
		pidfile := filepath.Join(t.TempDir(), "p.pid")
		r := daemonize(t, []string{"--notify", "-p", pidfile, "/bin/sh", "-c", needSystemdNotify(t) + " ERRNO=5; exec sleep 100"}, reexec).expect(70)
		if !strings.Contains(r.stderr, "ERRNO=5") {
			t.Errorf("stderr %q", r.stderr)
		}
		expectNoPidfile(t, pidfile)
		r.none()
	})
}

// TestReadyFailureProgramIgnoresSIGTERM: a program that reports a failure
// or misses --timeout and ignores SIGTERM gets SIGKILL 5s later: the
// launcher exits (70, 75) leaving nothing running and no pidfile.
func TestReadyFailureProgramIgnoresSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the launcher's 5s of grace")
	}
	notify := needSystemdNotify(t)
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"ERRNO", []string{"--notify", "/bin/sh", "-c", "trap '' TERM; " + notify + " ERRNO=5; exec sleep 100"}, 70},
		// 1.5s, not less: on the portable path a loaded machine can keep
		// the re-executed daemon from reaching the program for a while,
		// and this case is about the program ignoring SIGTERM.
		{"timeout", []string{"--ready-fd", "5", "--timeout", "1500ms", "/bin/sh", "-c", "trap '' TERM; exec sleep 100"}, 75},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "p.pid")
			r := daemonize(t, append([]string{"-p", pidfile}, c.args...)).expect(c.code)
			if !strings.Contains(r.stderr, "sent SIGTERM to the program") || !strings.Contains(r.stderr, "sent SIGKILL") {
				t.Errorf("stderr %q", r.stderr)
			}
			// A failed launch leaves nothing running, and no pidfile.
			r.none()
			expectNoPidfile(t, pidfile)
		})
	}
}

// TestNotifyReadyJustBeforeExit: READY=1 sent right before the program
// exits (behind many STATUS= messages) counts: the program was ready, 0.
// The launcher learning of the end while READY=1 is still queued is a
// race too narrow to force here; stages/program's
// TestNotifyReadyQueuedAtEnd forces it.
func TestNotifyReadyJustBeforeExit(t *testing.T) {
	py := python(t)
	const sender = `import os, socket
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"STATUS=%d" % i, addr)
s.sendto(b"READY=1", addr)
os._exit(3)
`
	for i := 0; i < 3; i++ {
		r := daemonize(t, []string{"--notify", py, "-c", sender}).expect(0)
		r.none()
	}
}
