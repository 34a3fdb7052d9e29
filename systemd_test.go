//go:build linux

package blivet_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/sockets"
	"github.com/blivet-go/blivet/systemd"
	"golang.org/x/sys/unix"
)

// Real-process tests of the service manager protocols: a datagram socket
// in the test's temp dir stands in for systemd's notification socket, and
// socket activation is driven by the real systemd-socket-activate tool.

// sdObs is what the systemd helpers report from the daemon.
type sdObs struct {
	PID       int
	PPID      int
	Env       map[string]string // NOTIFY_SOCKET, LISTEN_*, WATCHDOG_* as the daemon sees them after ready
	Names     []string
	ListenFDs int
	Listeners map[string]int
	Watchdog  time.Duration
	FDLinks   map[int]string
	Err       string
	Code      int
}

var sdEnvKeys = []string{systemd.EnvNotifySocket, systemd.EnvListenPID, systemd.EnvListenFDs,
	systemd.EnvListenNames, systemd.EnvWatchdogUSec, systemd.EnvWatchdogPID}

func sdEnv() map[string]string {
	m := map[string]string{}
	for _, k := range sdEnvKeys {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	return m
}

func fdLinks() map[int]string {
	m := map[int]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			m[fd] = l
		}
	}
	return m
}

// sdOptions reads the helper's configuration from its environment.
func sdOptions(h *blivettest.H) []blivet.Option {
	opts := []blivet.Option{blivet.WithForeground(h.Env("SD_FG") == "1")}
	if h.Env("SD_AUTO") == "1" {
		opts = append(opts, blivet.WithAutoNotify())
	}
	if d, err := time.ParseDuration(h.Env("SD_TIMEOUT")); err == nil {
		opts = append(opts, blivet.WithReadyTimeout(d))
	}
	return opts
}

// sdFail reports err under "error" and ends the daemon with its code.
func sdFail(h *blivettest.H, ctx *blivet.Context, step string, err error) {
	h.Report("error", sdObs{PID: os.Getpid(), Err: step + ": " + err.Error(), Code: blivet.ExitCodeOf(err)})
	if ctx != nil {
		ctx.ReportError(err)
	}
	os.Exit(blivet.ExitCodeOf(err))
}

func init() {
	// systemd-notify: status, ready, reload and stop notifications.
	blivettest.Register("systemd-notify", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(sdOptions(h)...)
		if err != nil {
			sdFail(h, nil, "daemonize", err)
		}
		defer ctx.Close()
		if err := ctx.Status("starting"); err != nil {
			sdFail(h, ctx, "status", err)
		}
		if err := ctx.NotifyParent(); err != nil {
			sdFail(h, ctx, "notify", err)
		}
		h.Report("daemon", sdObs{PID: os.Getpid(), PPID: os.Getppid(), Env: sdEnv()})
		for _, f := range []func() error{
			func() error { return ctx.Status("serving") },
			ctx.Reloading, ctx.Reloaded, ctx.Stopping,
		} {
			if err := f(); err != nil {
				sdFail(h, ctx, "after ready", err)
			}
		}
		h.Report("done", true)
	})

	// systemd-watchdog: pings until the file "stop" appears, then closes.
	blivettest.Register("systemd-watchdog", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(sdOptions(h)...)
		if err != nil {
			sdFail(h, nil, "daemonize", err)
		}
		if err := ctx.NotifyParent(); err != nil {
			sdFail(h, ctx, "notify", err)
		}
		d, err := ctx.StartWatchdog()
		if err != nil {
			sdFail(h, ctx, "watchdog", err)
		}
		h.Report("daemon", sdObs{PID: os.Getpid(), Env: sdEnv(), Watchdog: d})
		for {
			if _, err := os.Stat(filepath.Join(h.Dir, "stop")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := ctx.Close(); err != nil {
			sdFail(h, ctx, "close", err)
		}
		h.Report("closed", true)
		select {} // stay alive: nothing may ping any more
	})

	// systemd-activation: serves every activation socket, answering each
	// connection with "<name> <pid>".
	blivettest.Register("systemd-activation", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(sdOptions(h)...)
		if err != nil {
			sdFail(h, nil, "daemonize", err)
		}
		obs := sdObs{PID: os.Getpid(), PPID: os.Getppid(), Env: sdEnv(), Names: ctx.ListenNames(),
			ListenFDs: ctx.State().ListenFDs, Listeners: map[string]int{}}
		for _, name := range []string{"web", "admin", "unknown"} {
			ls, err := sockets.Listeners(ctx.Files(name))
			if err != nil {
				sdFail(h, ctx, "listeners", err)
			}
			obs.Listeners[name] = len(ls)
			for _, l := range ls {
				go func(l net.Listener, name string) {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						fmt.Fprintf(c, "%s %d\n", name, os.Getpid())
						c.Close()
					}
				}(l, name)
			}
		}
		if err := ctx.NotifyParent(); err != nil {
			sdFail(h, ctx, "notify", err)
		}
		obs.FDLinks = fdLinks()
		h.Report("daemon", obs)
		select {}
	})

	// systemd-slow: slow before Daemonize in the daemon generation (a
	// config load, say), or never ready after it; reports SIGTERM.
	blivettest.Register("systemd-slow", func(h *blivettest.H) {
		if strings.Contains(os.Getenv("BLIVET_HANDOVER"), "role=daemon") {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() {
				<-ch
				h.Report("sigterm", os.Getpid())
				os.Exit(143)
			}()
			if h.Env("SD_SLOW") == "before" {
				time.Sleep(time.Minute)
			}
		}
		ctx, err := blivet.Daemonize(sdOptions(h)...)
		if err != nil {
			sdFail(h, nil, "daemonize", err)
		}
		h.Report("daemon", sdObs{PID: os.Getpid()})
		_ = ctx
		select {}
	})

	// systemd-cli-prog: a program run by the daemonize CLI; it takes its
	// activation sockets like any systemd service would and serves them.
	blivettest.Register("systemd-cli-prog", func(h *blivettest.H) {
		env := sdEnv()
		a, ok, err := systemd.TakeActivation()
		if err != nil || !ok {
			h.Report("error", sdObs{PID: os.Getpid(), Env: env, Err: fmt.Sprintf("activation: ok %v err %v", ok, err)})
			os.Exit(1)
		}
		if _, err := systemd.Notify(systemd.Ready); err != nil {
			h.Report("error", sdObs{PID: os.Getpid(), Env: env, Err: err.Error()})
			os.Exit(1)
		}
		h.Report("daemon", sdObs{PID: os.Getpid(), PPID: os.Getppid(), Env: env, Names: a.Names, ListenFDs: a.N})
		for _, f := range a.Files() {
			l, err := sockets.Listener(f)
			if err != nil {
				os.Exit(1)
			}
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s %d\n", f.Name(), os.Getpid())
					c.Close()
				}
			}()
		}
		select {}
	})
}

// sdManager is a datagram socket standing in for the service manager. It
// receives credentials, so it knows which PID sent each message.
type sdManager struct {
	conn *net.UnixConn
	addr string
}

type sdMsg struct {
	Text string
	PID  int
	At   time.Time
}

func newSDManager(t *testing.T, abstract bool) *sdManager {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = fmt.Sprintf("@blivet-systemd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc, _ := conn.SyscallConn()
	var serr error
	_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	return &sdManager{conn: conn, addr: name}
}

// recv returns the next message, waiting at most wait.
func (m *sdManager) recv(wait time.Duration) (sdMsg, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	_ = m.conn.SetReadDeadline(time.Now().Add(wait))
	n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return sdMsg{}, err
	}
	msg := sdMsg{Text: string(buf[:n]), At: time.Now()}
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cmsgs) > 0 {
		if cred, err := unix.ParseUnixCredentials(&cmsgs[0]); err == nil {
			msg.PID = int(cred.Pid)
		}
	}
	return msg, nil
}

func (m *sdManager) must(t *testing.T) sdMsg {
	t.Helper()
	msg, err := m.recv(10 * time.Second)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return msg
}

// none checks nothing is queued.
func (m *sdManager) none(t *testing.T) {
	t.Helper()
	if msg, err := m.recv(time.Millisecond); err == nil {
		t.Errorf("unexpected notification %q from PID %d", msg.Text, msg.PID)
	}
}

func TestSystemdNotify(t *testing.T) {
	for _, c := range []struct {
		name         string
		fg, abstract bool
	}{
		{"daemon-path", false, false}, {"daemon-abstract", false, true},
		{"foreground-path", true, false}, {"foreground-abstract", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newSDManager(t, c.abstract)
			fg := "0"
			if c.fg {
				fg = "1"
			}
			r, cmd := blivettest.Start(t, "systemd-notify", blivettest.WithEnv("NOTIFY_SOCKET", m.addr), blivettest.WithEnv("SD_FG", fg))
			r.Wait()
			if r.ExitCode != 0 {
				t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
			}
			var d sdObs
			r.Await("daemon", &d)
			var done bool
			r.Await("done", &done)
			if c.fg && d.PID != cmd.Process.Pid {
				t.Errorf("foreground daemon PID %d, launcher %d", d.PID, cmd.Process.Pid)
			}
			if !c.fg && d.PID == cmd.Process.Pid {
				t.Errorf("daemon mode: the daemon is the launcher")
			}
			if v, ok := d.Env["NOTIFY_SOCKET"]; ok {
				t.Errorf("NOTIFY_SOCKET=%q left for the daemon's children", v)
			}
			want := []string{"STATUS=starting", "READY=1\nMAINPID=" + strconv.Itoa(d.PID), "STATUS=serving",
				"RELOADING=1\nMONOTONIC_USEC=", "READY=1", "STOPPING=1"}
			for _, w := range want {
				msg := m.must(t)
				if msg.Text != w && !(strings.HasSuffix(w, "=") && strings.HasPrefix(msg.Text, w)) {
					t.Errorf("got %q, want %q", msg.Text, w)
				}
				if msg.PID != d.PID {
					t.Errorf("%q sent by PID %d, want the daemon %d", msg.Text, msg.PID, d.PID)
				}
				if strings.HasPrefix(msg.Text, "RELOADING") {
					usec, err := strconv.ParseInt(strings.TrimPrefix(msg.Text, w), 10, 64)
					var ts unix.Timespec
					_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
					if err != nil || usec <= 0 || usec > ts.Nano()/1000 || usec < ts.Nano()/1000-10e6 {
						t.Errorf("MONOTONIC_USEC in %q is not the monotonic clock now (%d)", msg.Text, ts.Nano()/1000)
					}
				}
			}
			m.none(t)
		})
	}
}

func TestSystemdNotifyNotUnderSystemd(t *testing.T) {
	// No NOTIFY_SOCKET: every call succeeds and sends nothing.
	r := blivettest.Launch(t, "systemd-notify", blivettest.WithEnv("NOTIFY_SOCKET", ""))
	var done bool
	r.Await("done", &done)
	if r.ExitCode != 0 || r.Has("error") {
		t.Fatalf("exit %d stderr %q", r.ExitCode, r.Stderr)
	}
}

func TestSystemdNotifyFailure(t *testing.T) {
	gone := filepath.Join(t.TempDir(), "gone")
	// Status before ready fails first in daemon mode: the launcher learns it.
	r := blivettest.Launch(t, "systemd-notify", blivettest.WithEnv("NOTIFY_SOCKET", gone))
	if r.ExitCode != 71 || !strings.Contains(r.Stderr, gone) {
		t.Errorf("daemon mode: exit %d stderr %q, want 71 naming the socket", r.ExitCode, r.Stderr)
	}
	// With auto-notify the notify stage itself fails: 71, never ready.
	r = blivettest.Launch(t, "systemd-notify", blivettest.WithEnv("NOTIFY_SOCKET", gone), blivettest.WithEnv("SD_AUTO", "1"))
	var e sdObs
	if r.ExitCode != 71 || !strings.Contains(r.Stderr, "notifying the service manager") || r.Has("daemon") {
		t.Errorf("auto-notify: exit %d stderr %q, want 71", r.ExitCode, r.Stderr)
	}
	// Foreground: the error is returned to the program.
	r = blivettest.Launch(t, "systemd-notify", blivettest.WithEnv("NOTIFY_SOCKET", gone), blivettest.WithEnv("SD_FG", "1"))
	r.Read("error", &e)
	if r.ExitCode != 71 || e.Code != 71 || !strings.HasPrefix(e.Err, "status") {
		t.Errorf("foreground: exit %d error %+v", r.ExitCode, e)
	}
}

func TestSystemdWatchdog(t *testing.T) {
	for _, fg := range []string{"0", "1"} {
		t.Run("foreground="+fg, func(t *testing.T) {
			m := newSDManager(t, true)
			const timeout = 400 * time.Millisecond
			// WATCHDOG_PID names the launcher, as systemd sets it: sh
			// exports its own PID and execs the test binary in place.
			r, cmd := blivettest.Start(t, "systemd-watchdog", blivettest.WithEnv("NOTIFY_SOCKET", m.addr),
				blivettest.WithEnv("SD_FG", fg), blivettest.WithEnv("WATCHDOG_USEC", strconv.Itoa(int(timeout/time.Microsecond))),
				blivettest.WithCmd(func(cmd *exec.Cmd) {
					cmd.Args = append([]string{"/bin/sh", "-c", `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"`}, cmd.Args...)
					cmd.Path = "/bin/sh"
				}))
			// (Pings are timed as they arrive: read them while they come.)
			var d sdObs
			r.Await("daemon", &d)
			if d.Watchdog != timeout/2 {
				t.Fatalf("watchdog interval %v, want %v (env %v)", d.Watchdog, timeout/2, d.Env)
			}
			if fg == "1" && d.PID != cmd.Process.Pid {
				t.Errorf("foreground PID %d, launcher %d", d.PID, cmd.Process.Pid)
			}
			if d.Env["WATCHDOG_PID"] != strconv.Itoa(d.PID) {
				t.Errorf("daemon sees WATCHDOG_PID=%q, want its own PID %d", d.Env["WATCHDOG_PID"], d.PID)
			}
			if msg := m.must(t); !strings.HasPrefix(msg.Text, "READY=1") {
				t.Fatalf("first message %q", msg.Text)
			}
			var stamps []time.Time
			for len(stamps) < 5 {
				msg := m.must(t)
				if msg.Text != "WATCHDOG=1" || msg.PID != d.PID {
					t.Fatalf("got %q from PID %d, want WATCHDOG=1 from %d", msg.Text, msg.PID, d.PID)
				}
				stamps = append(stamps, msg.At)
			}
			for i := 1; i < len(stamps); i++ {
				if gap := stamps[i].Sub(stamps[i-1]); gap < timeout/2-50*time.Millisecond || gap >= timeout {
					t.Errorf("ping %d %v after the previous one, want about %v and below %v", i, gap, timeout/2, timeout)
				}
			}
			if fg == "0" {
				r.Wait()
				if r.ExitCode != 0 {
					t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
				}
			}
			// Close stops it.
			if err := os.WriteFile(filepath.Join(r.Dir, "stop"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var closed bool
			r.Await("closed", &closed)
			for {
				msg, err := m.recv(20 * time.Millisecond) // what was queued before Close returned
				if err != nil {
					break
				}
				if msg.Text != "WATCHDOG=1" {
					t.Errorf("got %q", msg.Text)
				}
			}
			if msg, err := m.recv(timeout); err == nil {
				t.Errorf("%q after Close", msg.Text)
			}
		})
	}
}

func TestSystemdWatchdogOtherPID(t *testing.T) {
	m := newSDManager(t, false)
	r := blivettest.Launch(t, "systemd-watchdog", blivettest.WithEnv("NOTIFY_SOCKET", m.addr),
		blivettest.WithEnv("WATCHDOG_USEC", "100000"), blivettest.WithEnv("WATCHDOG_PID", "1"))
	var d sdObs
	r.Await("daemon", &d)
	if d.Watchdog != 0 || d.Env["WATCHDOG_PID"] != "1" {
		t.Errorf("watchdog addressed to PID 1 started: %+v", d)
	}
	if msg := m.must(t); !strings.HasPrefix(msg.Text, "READY=1") {
		t.Errorf("got %q", msg.Text)
	}
	m.none(t)
}

func TestSystemdReadyTimeout(t *testing.T) {
	for _, slow := range []string{"after", "before"} {
		t.Run("slow-"+slow+"-Daemonize", func(t *testing.T) {
			start := time.Now()
			r := blivettest.Launch(t, "systemd-slow", blivettest.WithEnv("SD_TIMEOUT", "500ms"), blivettest.WithEnv("SD_SLOW", slow))
			if r.ExitCode != 75 || !strings.Contains(r.Stderr, "not ready after 500ms") || !strings.Contains(r.Stderr, "SIGTERM") {
				t.Fatalf("exit %d stderr %q, want 75 and a clear message", r.ExitCode, r.Stderr)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("launcher took %v", el)
			}
			var pid int
			r.Await("sigterm", &pid)
			blivettest.Eventually(t, 5*time.Second, func() bool { return len(r.PIDs()) == 0 },
				"processes %v survived the timeout", r.PIDs())
			if slow == "after" {
				var d sdObs
				r.Read("daemon", &d)
				if d.PID != pid {
					t.Errorf("SIGTERM reached PID %d, the daemon is %d", pid, d.PID)
				}
			}
		})
	}
}

// socketActivate returns a launch option that runs the launcher under
// systemd-socket-activate listening on the unix sockets socks, named
// names. The helper's variables travel with -E (the tool passes nothing
// else on), and the tool execs in place, so LISTEN_PID is the launcher's.
func socketActivate(t *testing.T, prefix []string, socks, names []string, env ...string) blivettest.LaunchOption {
	t.Helper()
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed (Debian package systemd): ", err)
	}
	return blivettest.WithCmd(func(cmd *exec.Cmd) {
		args := []string{tool}
		for _, s := range socks {
			args = append(args, "-l", s)
		}
		args = append(args, "--fdname="+strings.Join(names, ":"))
		for _, kv := range cmd.Env {
			k, _, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "BLIVETTEST_") || strings.HasPrefix(k, "SD_") || strings.HasPrefix(k, "GOCOVER") {
				args = append(args, "-E", kv)
			}
		}
		for _, kv := range env {
			args = append(args, "-E", kv)
		}
		args = append(args, prefix...)
		cmd.Args = append(args, cmd.Args...)
		cmd.Path = tool
	})
}

// dial connects to the unix socket path, retrying until it listens, and
// returns the first line of the answer.
func dial(t *testing.T, path string) string {
	t.Helper()
	var conn net.Conn
	blivettest.Eventually(t, 10*time.Second, func() bool {
		var err error
		conn, err = net.Dial("unix", path)
		return err == nil
	}, "cannot connect to %s", path)
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer on %s: %v", path, err)
	}
	return strings.TrimSpace(line)
}

func TestSystemdSocketActivation(t *testing.T) {
	for _, fg := range []string{"0", "1"} {
		t.Run("foreground="+fg, func(t *testing.T) {
			dir := t.TempDir()
			web, admin := filepath.Join(dir, "web.sock"), filepath.Join(dir, "admin.sock")
			r, cmd := blivettest.Start(t, "systemd-activation", blivettest.WithDir(dir), blivettest.WithEnv("SD_FG", fg),
				socketActivate(t, nil, []string{web, admin}, []string{"web", "admin"}))
			// The tool starts the service on the first connection.
			got := dial(t, web)
			var d sdObs
			r.Await("daemon", &d)
			if got != "web "+strconv.Itoa(d.PID) {
				t.Errorf("web answered %q, want from the daemon %d", got, d.PID)
			}
			if got := dial(t, admin); got != "admin "+strconv.Itoa(d.PID) {
				t.Errorf("admin answered %q, want from the daemon %d", got, d.PID)
			}
			if fg == "0" {
				r.Wait()
				if r.ExitCode != 0 {
					t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
				}
				if d.PID == cmd.Process.Pid {
					t.Error("daemon mode: the daemon is the launcher")
				}
			} else if d.PID != cmd.Process.Pid {
				t.Errorf("foreground PID %d, launcher %d", d.PID, cmd.Process.Pid)
			}
			if d.ListenFDs != 2 || strings.Join(d.Names, ",") != "web,admin" || d.Listeners["web"] != 1 || d.Listeners["admin"] != 1 || d.Listeners["unknown"] != 0 {
				t.Errorf("daemon got %d fds named %v, listeners %v", d.ListenFDs, d.Names, d.Listeners)
			}
			for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				if v, ok := d.Env[k]; ok {
					t.Errorf("%s=%q left in the daemon's environment", k, v)
				}
			}
			for _, fd := range []int{3, 4} {
				if !strings.HasPrefix(d.FDLinks[fd], "socket:") {
					t.Errorf("daemon fd %d is %q, want the activation socket", fd, d.FDLinks[fd])
				}
			}
		})
	}
}

func TestSystemdSocketActivationOtherPID(t *testing.T) {
	// LISTEN_PID names another process: the fd is not ours, the daemon
	// must not get it, and the variables are gone.
	s, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := s.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	link := fmt.Sprintf("socket:[%d]", st.Ino)
	r := blivettest.Launch(t, "systemd-activation", blivettest.WithEnv("LISTEN_PID", "1"), blivettest.WithEnv("LISTEN_FDS", "1"),
		blivettest.WithEnv("LISTEN_FDNAMES", "web"), blivettest.WithCmd(func(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{f} }))
	if r.ExitCode != 0 {
		t.Fatalf("exit %d: %s", r.ExitCode, r.Stderr)
	}
	var d sdObs
	r.Await("daemon", &d)
	if d.ListenFDs != 0 || len(d.Names) != 0 || len(d.Env) != 0 {
		t.Errorf("activation for PID 1 taken: %+v", d)
	}
	for fd, l := range d.FDLinks {
		if l == link {
			t.Errorf("the daemon holds the other process's socket at fd %d", fd)
		}
	}
}

func TestSystemdSocketActivationBadEnv(t *testing.T) {
	// Addressed to us but inconsistent: a usage error before any fork.
	r := blivettest.Launch(t, "systemd-activation", blivettest.WithEnv("LISTEN_FDS", "2"), blivettest.WithEnv("LISTEN_FDNAMES", "web"),
		blivettest.WithCmd(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`}, cmd.Args...)
			cmd.Path = "/bin/sh"
		}))
	var e sdObs
	r.Read("error", &e)
	if r.ExitCode != 64 || e.Code != 64 || !strings.Contains(e.Err, "LISTEN_FDNAMES") {
		t.Errorf("exit %d error %+v, want 64", r.ExitCode, e)
	}
}

// buildCLI builds cmd/daemonize into a temp dir, or skips the test.
func buildCLI(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "daemonize")
	if out, err := exec.Command("go", "build", "-o", path, "./cmd/daemonize").CombinedOutput(); err != nil {
		t.Skipf("cannot build cmd/daemonize: %v: %s", err, out)
	}
	return path
}

func TestSystemdCLISocketActivation(t *testing.T) {
	cli := buildCLI(t)
	for _, fg := range []bool{false, true} {
		t.Run(fmt.Sprintf("foreground=%v", fg), func(t *testing.T) {
			dir := t.TempDir()
			web := filepath.Join(dir, "web.sock")
			m := newSDManager(t, false)
			prefix := []string{cli}
			if fg {
				prefix = append(prefix, "-f")
			}
			prefix = append(prefix, "--")
			r, cmd := blivettest.Start(t, "systemd-cli-prog", blivettest.WithDir(dir),
				socketActivate(t, prefix, []string{web}, []string{"web"}, "NOTIFY_SOCKET="+m.addr))
			got := dial(t, web)
			var d sdObs
			r.Await("daemon", &d)
			if got != "web "+strconv.Itoa(d.PID) {
				t.Errorf("answer %q, want from the program %d", got, d.PID)
			}
			if d.Env["LISTEN_PID"] != strconv.Itoa(d.PID) || d.Env["LISTEN_FDS"] != "1" || d.Env["LISTEN_FDNAMES"] != "web" {
				t.Errorf("program (PID %d) got %v", d.PID, d.Env)
			}
			if fg && d.PID != cmd.Process.Pid {
				t.Errorf("-f: program PID %d, launcher %d: the PID must never change", d.PID, cmd.Process.Pid)
			}
			if !fg {
				r.Wait()
				if r.ExitCode != 0 || d.PID == cmd.Process.Pid {
					t.Fatalf("exit %d, program %d launcher %d: %s", r.ExitCode, d.PID, cmd.Process.Pid, r.Stderr)
				}
			}
			// The program notifies, daemonize does not.
			if msg := m.must(t); msg.Text != "READY=1" || msg.PID != d.PID {
				t.Errorf("got %q from %d, want READY=1 from the program %d", msg.Text, msg.PID, d.PID)
			}
			m.none(t)
		})
	}
}
