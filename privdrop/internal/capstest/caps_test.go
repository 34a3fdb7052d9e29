//go:build linux

// Package capstest tests blivet.WithAmbientCaps with real daemons. It is a
// package of its own because its test binary must not be linked with cgo
// (Go changes capabilities on every thread only without cgo), so it
// imports neither net nor anything that does: the port is bound and
// dialled with raw system calls.
package capstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

const helperEnv = "BLIVET_CAPSTEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helper()
		os.Exit(0)
	}
	code := m.Run()
	if noCgo.dir != "" {
		os.RemoveAll(noCgo.dir)
	}
	os.Exit(code)
}

// linkedWithCgo reports whether this test binary is linked with cgo (as
// every -race binary is), where keeping capabilities is refused: an
// invalid prctl through syscall.AllThreadsSyscall fails with ENOTSUP
// before any thread runs it, and with EINVAL on the first thread without
// cgo.
func linkedWithCgo() bool {
	_, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, 0x7fffffff, 0, 0)
	return e == syscall.ENOTSUP
}

// noCgo is this package's test binary built without cgo, for runs of a
// binary linked with cgo (go test -race).
var noCgo struct {
	once      sync.Once
	dir, path string
	err       error
}

// rerunWithoutCgo runs the calling test in a build of this package without
// cgo when this binary has cgo, and reports its result; it returns false
// (the caller goes on) when this binary has no cgo.
func rerunWithoutCgo(t *testing.T) bool {
	t.Helper()
	if !linkedWithCgo() {
		return false
	}
	noCgo.once.Do(func() {
		gocmd, err := exec.LookPath("go")
		if err != nil {
			gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if noCgo.dir, noCgo.err = os.MkdirTemp("", "blivet-capstest-"); noCgo.err != nil {
			return
		}
		noCgo.path = filepath.Join(noCgo.dir, "capstest.test")
		cmd := exec.Command(gocmd, "test", "-c", "-o", noCgo.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			noCgo.err = fmt.Errorf("%s test -c with CGO_ENABLED=0: %v\n%s", gocmd, err, out)
		}
	})
	if noCgo.err != nil {
		t.Skipf("skipped: this test binary is linked with cgo (a -race build is), where capabilities cannot be kept, and building one without cgo failed: %v", noCgo.err)
	}
	out, err := exec.Command(noCgo.path, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v").CombinedOutput()
	switch {
	case err != nil:
		t.Errorf("%s, run in a build without cgo (this binary has cgo): %v\n%s", t.Name(), err, out)
	case strings.Contains(string(out), "--- SKIP"):
		t.Skipf("skipped in the build without cgo:\n%s", out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Errorf("%s did not pass in the build without cgo:\n%s", t.Name(), out)
	default:
		t.Logf("passed in a build without cgo (this binary has cgo)")
	}
	return true
}

// report is what the helper daemon saw right after the drop.
type report struct {
	Bind   string            // the error binding the port as the dropped user ("" if it worked)
	Regain map[string]string // attempt -> error ("" if it succeeded)
	Locked []int             // threads locked before the drop
}

// lockedThreads is how many threads the helper locks before the drop.
const lockedThreads = 3

// listenFD is the helper's listening socket, kept open while it lives.
var listenFD = -1

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// listen binds 127.0.0.1:port with raw system calls.
func listen(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 8); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// helper is the daemon: it drops to nobody (keeping the capabilities in
// BLIVET_CAPS), then binds BLIVET_PORT, tries to regain root, prints a
// report on its stdout and says ready, then waits to be killed.
func helper() {
	dir := os.Getenv("BLIVET_DIR")
	opts := []blivet.Option{
		blivet.WithUser("nobody"),
		blivet.WithPidfile(filepath.Join(dir, "run", "daemon.pid")),
		blivet.WithStdout(filepath.Join(dir, "log", "out.log")),
		blivet.WithStderr(filepath.Join(dir, "log", "err.log")),
	}
	if caps := os.Getenv("BLIVET_CAPS"); caps != "" {
		opts = append(opts, blivet.WithAmbientCaps(strings.Split(caps, ",")...))
	}
	ctx, err := blivet.Daemonize(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	var rep report
	// Threads locked to their goroutines before the drop: each must end
	// up with the same capabilities as the rest.
	tids := make(chan int)
	for i := 0; i < lockedThreads; i++ {
		go func() {
			runtime.LockOSThread()
			tids <- unix.Gettid()
			select {}
		}()
	}
	for i := 0; i < lockedThreads; i++ {
		rep.Locked = append(rep.Locked, <-tids)
	}
	if err := ctx.DropPrivileges(); err != nil {
		ctx.ReportError(err)
	}
	port, _ := strconv.Atoi(os.Getenv("BLIVET_PORT"))
	listenFD, err = listen(port)
	rep.Bind = errString(err)
	rep.Regain = map[string]string{
		"setuid(0)":  errString(syscall.Setuid(0)),
		"seteuid(0)": errString(syscall.Setresuid(-1, 0, -1)),
		"setgid(0)":  errString(syscall.Setgid(0)),
	}
	data, _ := json.Marshal(rep)
	fmt.Println(string(data))
	if err := ctx.NotifyParent(); err != nil {
		ctx.ReportError(err)
	}
	for {
		time.Sleep(time.Hour) // until killed (a bare select{} would be a deadlock to the runtime)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (the daemon drops to nobody for real); run the tests as root to cover it")
	}
}

// freePort finds a port below 1024 free on 127.0.0.1, from the top down
// (the other privilege tests take them from 80 up).
func freePort(t *testing.T) int {
	t.Helper()
	for port := 1023; port > 600; port-- {
		if fd, err := listen(port); err == nil {
			unix.Close(fd)
			return port
		}
	}
	t.Skip("no free port below 1024 on 127.0.0.1")
	return 0
}

// status reads the named fields of a /proc status file.
func status(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// gone reports whether every task of pid has ended: the pid is gone, or
// only a zombie main thread is left.
func gone(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err == nil && !strings.Contains(string(data), "\nState:\tZ") && !strings.Contains(string(data), "\nState:\tX") {
			return false
		}
	}
	return true
}

// launch starts the helper daemon with caps and returns its pid and report.
// The daemon is killed, and waited for, when the test ends.
func launch(t *testing.T, caps string, port int) (int, report, string) {
	t.Helper()
	dir := t.TempDir()
	// nobody must reach nothing here: the outputs are opened, and handed
	// over, before the drop; the pidfile stays root's.
	for _, d := range []string{"run", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "BLIVET_DIR="+dir, "BLIVET_CAPS="+caps, "BLIVET_PORT="+strconv.Itoa(port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	pidText, perr := os.ReadFile(filepath.Join(dir, "run", "daemon.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if pid > 0 {
		t.Cleanup(func() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline := time.Now().Add(10 * time.Second)
			for !gone(pid) {
				if time.Now().After(deadline) {
					t.Errorf("daemon %d still running 10s after SIGKILL", pid)
					return
				}
				time.Sleep(5 * time.Millisecond) // polling the effect, with a deadline
			}
		})
	}
	if err != nil {
		t.Fatalf("launcher: %v, stderr %q", err, stderr.String())
	}
	if perr != nil || pid <= 0 {
		t.Fatalf("no daemon pid after the launcher exited 0: %v %q", perr, pidText)
	}
	out, err := os.ReadFile(filepath.Join(dir, "log", "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("daemon report %q: %v", out, err)
	}
	return pid, rep, stderr.String()
}

// checkSets checks every thread of pid, the locked ones among them: uid
// nobody and each capability set equal to want.
func checkSets(t *testing.T, pid int, rep report, want uint64, inh bool) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Locked) != lockedThreads {
		t.Errorf("the daemon locked threads %v, want %d", rep.Locked, lockedThreads)
	}
	for _, tid := range rep.Locked {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", pid, tid)); err != nil {
			t.Errorf("locked thread %d is not a task of daemon %d: %v", tid, pid, err)
		}
	}
	sets := []string{"CapPrm", "CapEff", "CapAmb"}
	if inh {
		sets = append(sets, "CapInh")
	}
	for _, task := range tasks {
		st := status(t, fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if f := strings.Fields(st["Uid"]); len(f) != 4 || f[0] != "65534" || f[1] != "65534" || f[2] != "65534" || f[3] != "65534" {
			t.Errorf("thread %s: Uid %q, want nobody's 65534 four times", task.Name(), st["Uid"])
		}
		for _, set := range sets {
			got, err := strconv.ParseUint(st[set], 16, 64)
			if err != nil || got != want {
				t.Errorf("thread %s: %s %s, want %016x", task.Name(), set, st[set], want)
			}
		}
	}
	if len(tasks) <= lockedThreads {
		t.Errorf("only %d thread(s) checked, want the %d locked ones and the rest", len(tasks), lockedThreads)
	}
}

func dial(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
}

func checkRegainFails(t *testing.T, rep report) {
	t.Helper()
	if len(rep.Regain) != 3 {
		t.Errorf("regain attempts %v, want 3", rep.Regain)
	}
	for attempt, err := range rep.Regain {
		if err == "" {
			t.Errorf("%s succeeded after the drop", attempt)
		}
	}
}

// TestAmbientCapsBindsLowPort: as nobody with net_bind_service, the
// daemon binds a port below 1024 after the drop; its threads have that
// capability, and only it, in every set; root cannot be regained.
func TestAmbientCapsBindsLowPort(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	needRoot(t)
	port := freePort(t)
	pid, rep, _ := launch(t, "CAP_NET_BIND_SERVICE,net_bind_service", port)
	if rep.Bind != "" {
		t.Fatalf("binding port %d as nobody with cap_net_bind_service: %s", port, rep.Bind)
	}
	if err := dial(port); err != nil {
		t.Errorf("connecting to the daemon's port %d: %v", port, err)
	}
	checkSets(t, pid, rep, 1<<unix.CAP_NET_BIND_SERVICE, true)
	checkRegainFails(t, rep)
}

// TestWithoutAmbientCaps: the same daemon without the option has no
// capability at all and cannot bind the port.
func TestWithoutAmbientCaps(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	needRoot(t)
	port := freePort(t)
	pid, rep, _ := launch(t, "", port)
	if !strings.Contains(rep.Bind, "permission denied") {
		t.Errorf("binding port %d as nobody without capabilities: %q, want permission denied", port, rep.Bind)
	}
	checkSets(t, pid, rep, 0, false)
	checkRegainFails(t, rep)
}

// TestAmbientCapsSeveral keeps two capabilities; an exec'd program would
// inherit them through the ambient set.
func TestAmbientCapsSeveral(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	needRoot(t)
	port := freePort(t)
	pid, rep, _ := launch(t, "net_raw,Net_Bind_Service", port)
	if rep.Bind != "" {
		t.Errorf("bind: %s", rep.Bind)
	}
	checkSets(t, pid, rep, 1<<unix.CAP_NET_BIND_SERVICE|1<<unix.CAP_NET_RAW, true)
	checkRegainFails(t, rep)
}

// TestAmbientCapsLaunchErrors: option errors are 64 from the launcher,
// before anything starts.
func TestAmbientCapsLaunchErrors(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	needRoot(t)
	for _, c := range []struct {
		opts []blivet.Option
		msg  string
	}{
		{[]blivet.Option{blivet.WithAmbientCaps("net_bind_service")}, "WithUser"},
		{[]blivet.Option{blivet.WithGroup("nogroup"), blivet.WithAmbientCaps("net_bind_service")}, "WithUser"},
		{[]blivet.Option{blivet.WithUser("nobody"), blivet.WithAmbientCaps("net_bind_servic")}, `"net_bind_servic"`},
		{[]blivet.Option{blivet.WithUser("nobody"), blivet.WithAmbientCaps("net_bind_service"), blivet.WithAmbientCaps("")}, `""`},
		{[]blivet.Option{blivet.WithUser("nobody"), blivet.WithAmbientCaps("cap_setuid")}, "regain root"},
		{[]blivet.Option{blivet.WithUser("nobody"), blivet.WithAmbientCaps("SETGID")}, "regain root"},
	} {
		_, err := blivet.Validate(c.opts...)
		var e *stages.Error
		if !errors.As(err, &e) || e.Code != stages.ExitUsage || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "WithAmbientCaps") {
			t.Errorf("Validate(%v) = %v, want 64 from WithAmbientCaps with %q", c.opts, err, c.msg)
		}
	}
	cfg, err := blivet.Validate(blivet.WithUser("nobody"), blivet.WithAmbientCaps("net_bind_service"), blivet.WithAmbientCaps("cap_net_raw"))
	if err != nil || strings.Join(cfg.AmbientCaps, ",") != "net_bind_service,cap_net_raw" {
		t.Errorf("Validate = %v, %v; want the names accumulated", cfg.AmbientCaps, err)
	}
}

// TestStageRootTargetRefusesCaps: a drop "to" root with capabilities is
// refused before any id changes (the caps would be meaningless).
func TestStageRootTargetRefusesCaps(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	needRoot(t)
	s := &stages.State{Config: stages.Config{User: "root", AmbientCaps: []string{"net_bind_service"}}}
	err := privdrop.New().Run(s)
	var e *stages.Error
	if !errors.As(err, &e) || e.Code != stages.ExitUsage || e.Fatal || s.Dropped || os.Geteuid() != 0 {
		t.Errorf("drop to root keeping caps = %v, Dropped %v, want a non-fatal 64", err, s.Dropped)
	}
}

func TestParseCapabilitiesNoCgo(t *testing.T) {
	if rerunWithoutCgo(t) {
		return
	}
	caps, err := privdrop.ParseCapabilities("NET_BIND_SERVICE", "cap_chown", "net_bind_service")
	if err != nil || len(caps) != 2 || caps[0] != unix.CAP_CHOWN || caps[1] != unix.CAP_NET_BIND_SERVICE {
		t.Errorf("ParseCapabilities = %v, %v; want [0 10] in a binary without cgo", caps, err)
	}
}
