//go:build linux

package systemd_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blivet-go/blivet/sockets"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/systemd"
	"golang.org/x/sys/unix"
)

// manager is a datagram socket standing in for the service manager.
type manager struct {
	conn *net.UnixConn
	addr string // the NOTIFY_SOCKET value
}

func newManager(t *testing.T, abstract bool) *manager {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = fmt.Sprintf("@blivet-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &manager{conn: conn, addr: name}
}

// recv returns the next datagram, failing after 5s.
func (m *manager) recv(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := m.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func code(err error) int {
	var e *stages.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return -1
}

func TestSendPathAndAbstract(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		m := newManager(t, abstract)
		if abstract && !strings.HasPrefix(m.addr, "@") {
			t.Fatal("abstract address without @")
		}
		msg := systemd.Ready + "\n" + systemd.MainPID(1234)
		if err := systemd.Send(m.addr, msg); err != nil {
			t.Fatalf("%s: %v", m.addr, err)
		}
		if got := m.recv(t); got != "READY=1\nMAINPID=1234" {
			t.Errorf("%s: got %q", m.addr, got)
		}
	}
}

func TestNotifyEnv(t *testing.T) {
	t.Setenv(systemd.EnvNotifySocket, "")
	os.Unsetenv(systemd.EnvNotifySocket)
	if sent, err := systemd.Notify(systemd.Ready); sent || err != nil {
		t.Fatalf("not under systemd: sent %v err %v, want false, nil", sent, err)
	}
	m := newManager(t, false)
	t.Setenv(systemd.EnvNotifySocket, m.addr)
	if sent, err := systemd.Notify(systemd.Stopping); !sent || err != nil {
		t.Fatalf("sent %v err %v", sent, err)
	}
	if got := m.recv(t); got != "STOPPING=1" {
		t.Errorf("got %q", got)
	}
	// Nobody listening, or an address kind we do not speak: 71.
	for _, bad := range []string{filepath.Join(t.TempDir(), "gone"), "vsock:2:1234", "relative"} {
		t.Setenv(systemd.EnvNotifySocket, bad)
		sent, err := systemd.Notify(systemd.Ready)
		if sent || code(err) != stages.ExitOSErr {
			t.Errorf("%s: sent %v err %v, want 71", bad, sent, err)
		}
	}
}

func TestStatusAndReloading(t *testing.T) {
	s, err := systemd.Status("serving 3 clients")
	if err != nil || s != "STATUS=serving 3 clients" {
		t.Errorf("Status = %q, %v", s, err)
	}
	if _, err := systemd.Status("x\nREADY=1"); code(err) != stages.ExitUsage {
		t.Errorf("status with a newline: %v, want 64", err)
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	before := ts.Nano() / 1000
	r := systemd.ReloadingNow()
	first, second, _ := strings.Cut(r, "\n")
	usec, err := strconv.ParseInt(strings.TrimPrefix(second, "MONOTONIC_USEC="), 10, 64)
	if first != "RELOADING=1" || !strings.HasPrefix(second, "MONOTONIC_USEC=") || err != nil {
		t.Fatalf("ReloadingNow = %q", r)
	}
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	if usec < before || usec > ts.Nano()/1000 {
		t.Errorf("MONOTONIC_USEC %d not between %d and %d", usec, before, ts.Nano()/1000)
	}
}

func TestWatchdogEnabled(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		usec, pid string // "-" unset
		want      time.Duration
		code      int
	}{
		{"-", "-", 0, 0},
		{"30000000", "-", 30 * time.Second, 0},
		{"30000000", self, 30 * time.Second, 0},
		{"30000000", "1", 0, 0},
		{"0", "-", 0, 64},
		{"abc", "-", 0, 64},
		{"1000", "x", 0, 64},
	} {
		for k, v := range map[string]string{systemd.EnvWatchdogUSec: c.usec, systemd.EnvWatchdogPID: c.pid} {
			t.Setenv(k, v)
			if v == "-" {
				os.Unsetenv(k)
			}
		}
		d, err := systemd.WatchdogEnabled()
		if d != c.want || (c.code == 0) != (err == nil) || (err != nil && code(err) != c.code) {
			t.Errorf("USEC=%s PID=%s: %v, %v; want %v, code %d", c.usec, c.pid, d, err, c.want, c.code)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	m := newManager(t, true)
	const timeout = 200 * time.Millisecond
	w := systemd.StartWatchdog(m.addr, timeout)
	if w.Interval() != timeout/2 {
		t.Errorf("interval %v, want %v", w.Interval(), timeout/2)
	}
	var stamps []time.Time
	for len(stamps) < 6 {
		if got := m.recv(t); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
		stamps = append(stamps, time.Now())
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	// The first ping goes at once, then one every timeout/2: never as late
	// as the timeout itself, never much early.
	for i := 1; i < len(stamps); i++ {
		gap := stamps[i].Sub(stamps[i-1])
		if gap < timeout/2-30*time.Millisecond || gap >= timeout {
			t.Errorf("ping %d came %v after the previous one, want about %v", i, gap, timeout/2)
		}
	}
	if w.Sent() < 6 {
		t.Errorf("Sent() = %d", w.Sent())
	}
	// Stopped means stopped: nothing more arrives.
	_ = m.conn.SetReadDeadline(time.Now().Add(3 * timeout / 2))
	buf := make([]byte, 64)
	for {
		n, err := m.conn.Read(buf)
		if err != nil {
			break
		}
		// one ping may have been in flight when Stop was called
		if string(buf[:n]) != "WATCHDOG=1" {
			t.Fatalf("got %q", buf[:n])
		}
	}
	if n, err := m.conn.Read(buf); err == nil {
		t.Errorf("ping %q after Stop", buf[:n])
	}
	if err := w.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestWatchdogSendFailure(t *testing.T) {
	// The first ping goes before Stop can take effect, and fails.
	w := systemd.StartWatchdog(filepath.Join(t.TempDir(), "gone"), time.Millisecond)
	if err := w.Stop(); code(err) != stages.ExitOSErr {
		t.Errorf("Stop = %v, want the send failure (71)", err)
	}
}

// setListen sets the LISTEN_* variables; "-" leaves one unset.
func setListen(t *testing.T, pid, fds, names string) {
	t.Helper()
	for k, v := range map[string]string{systemd.EnvListenPID: pid, systemd.EnvListenFDs: fds, systemd.EnvListenNames: names} {
		t.Setenv(k, v)
		if v == "-" {
			os.Unsetenv(k)
		}
	}
}

func listenUnset(t *testing.T) {
	t.Helper()
	for _, k := range []string{systemd.EnvListenPID, systemd.EnvListenFDs, systemd.EnvListenNames} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%q left in the environment", k, v)
		}
	}
}

// activationChild runs in a child process whose fds 3 and 4 are sockets
// (see TestTakeActivation) and prints what it observes, one fact a line.
func activationChild() {
	a, ok, err := systemd.TakeActivation()
	fmt.Printf("take %d %v %q %v %d\n", a.N, ok, strings.Join(a.Names, ","), err, code(err))
	for _, k := range []string{systemd.EnvListenPID, systemd.EnvListenFDs, systemd.EnvListenNames} {
		if v, ok := os.LookupEnv(k); ok {
			fmt.Printf("left %s=%s\n", k, v)
		}
	}
	for _, f := range a.Files() {
		flags, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		fmt.Printf("file %d %s cloexec=%v\n", f.Fd(), f.Name(), flags&unix.FD_CLOEXEC != 0)
		if pc, err := sockets.PacketConn(f); err != nil {
			fmt.Printf("packetconn error %v\n", err)
		} else {
			pc.Close()
		}
		if _, err := sockets.Listener(f); code(err) != stages.ExitOSErr {
			fmt.Printf("listener error %v (want 71)\n", err)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("SYSTEMD_TEST_CHILD") == "activation" {
		activationChild()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runActivationChild starts the test binary with two datagram sockets at
// fds 3 and 4, LISTEN_PID set to the child's own PID (sh execs in place)
// and the given LISTEN_FDS and LISTEN_FDNAMES ("-" for unset).
func runActivationChild(t *testing.T, fds, names string) string {
	t.Helper()
	var files []*os.File
	for range 2 {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		files = append(files, f)
	}
	script := `LISTEN_PID=$$; export LISTEN_PID; exec "$0"`
	if names != "-" {
		script = "LISTEN_FDNAMES=" + names + "; export LISTEN_FDNAMES; " + script
	}
	cmd := exec.Command("/bin/sh", "-c", script, os.Args[0], "-test.run=^$")
	// (The race detector would wait 1s at exit by default.)
	cmd.Env = append(os.Environ(), "SYSTEMD_TEST_CHILD=activation", "LISTEN_FDS="+fds, "GORACE=atexit_sleep_ms=0")
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return string(out)
}

func TestTakeActivation(t *testing.T) {
	out := runActivationChild(t, "2", "web:admin")
	want := `take 2 true "web,admin" <nil> -1
file 3 web cloexec=true
file 4 admin cloexec=true
`
	if out != want {
		t.Errorf("child saw:\n%s\nwant:\n%s", out, want)
	}
	out = runActivationChild(t, "2", "-")
	if !strings.HasPrefix(out, `take 2 true "unknown,unknown" <nil>`) {
		t.Errorf("without names, child saw:\n%s", out)
	}
	out = runActivationChild(t, "3", "a:b:c")
	if !strings.HasPrefix(out, `take 0 false`) || !strings.Contains(out, "fd 5 is not open") || strings.Contains(out, "left") {
		t.Errorf("a missing fd, child saw:\n%s", out)
	}
}

func TestTakeActivationRefusals(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	if a, ok, err := systemd.TakeActivation(); ok || err != nil || a.N != 0 {
		t.Errorf("nothing set: %+v %v %v", a, ok, err)
	}
	// Addressed to another process: ignored, and still removed.
	setListen(t, "1", "2", "web:admin")
	if a, ok, err := systemd.TakeActivation(); ok || err != nil || a.N != 0 {
		t.Errorf("another PID: %+v %v %v", a, ok, err)
	}
	listenUnset(t)
	// Malformed (checked before any fd is looked at).
	for _, c := range [][2]string{{"x", "-"}, {"-1", "-"}, {"2", "web"}, {"3", "a:b"}} {
		setListen(t, self, c[0], c[1])
		if _, ok, err := systemd.TakeActivation(); ok || code(err) != stages.ExitUsage {
			t.Errorf("LISTEN_FDS=%s LISTEN_FDNAMES=%s: ok %v err %v, want 64", c[0], c[1], ok, err)
		}
		listenUnset(t)
	}
	a := systemd.Activation{N: 2, Names: []string{"web", "admin"}}
	if env := strings.Join(a.Environ(77), " "); env != "LISTEN_PID=77 LISTEN_FDS=2 LISTEN_FDNAMES=web:admin" {
		t.Errorf("Environ = %q", env)
	}
	if fds := a.FDs(); len(fds) != 2 || fds[0] != 3 || fds[1] != 4 {
		t.Errorf("FDs = %v", fds)
	}
	if (systemd.Activation{}).Environ(1) != nil {
		t.Error("Environ of no activation is not nil")
	}
}
