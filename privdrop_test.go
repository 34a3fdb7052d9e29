//go:build linux

package blivet_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/internal/exefile"
)

// pdOpts is the configuration a test hands to the "privdrop" helper.
type pdOpts struct {
	User, Group    string      `json:",omitempty"`
	NoChown        bool        `json:",omitempty"`
	Stdout, Stderr string      `json:",omitempty"`
	Pidfile, Lock  string      `json:",omitempty"`
	Env            [][2]string `json:",omitempty"`
	Threads        int         `json:",omitempty"` // extra locked OS threads started before the drop
	Port           bool        `json:",omitempty"` // bind a port below 1024 before the drop and serve on it
	Mode           string      `json:",omitempty"` // "split" (default), "auto", "ready-first", "vanish"
	Trigger        string      `json:",omitempty"` // ready-first: wait for this file before ReportError
	ExplicitChown  bool        `json:",omitempty"` // split: call ctx.ChownPaths() before DropPrivileges
}

// pdCreds is one thread's identity.
type pdCreds struct {
	UID, GID [4]int // real, effective, saved, filesystem (from /proc)
	Groups   []int
	CapEff   string
}

// pdThread is what a locked thread saw through its own system calls.
type pdThread struct {
	TID    int
	Res    [6]int // ruid, euid, suid, rgid, egid, sgid
	Groups []int
}

// pdReport is what the daemon observed right after the drop.
type pdReport struct {
	PID     int
	Proc    map[string]pdCreds // by TID, from /proc/self/task/*/status
	Threads []pdThread
	Env     map[string]string
	Regain  map[string]string // attempt -> error ("" if it succeeded)
	Port    int
}

func readCreds(path string) (pdCreds, error) {
	var c pdCreds
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(val)
		switch key {
		case "Uid", "Gid":
			dst := &c.UID
			if key == "Gid" {
				dst = &c.GID
			}
			for i := 0; i < 4 && i < len(fs); i++ {
				dst[i], _ = strconv.Atoi(fs[i])
			}
		case "Groups":
			c.Groups = []int{}
			for _, s := range fs {
				g, _ := strconv.Atoi(s)
				c.Groups = append(c.Groups, g)
			}
		case "CapEff":
			c.CapEff = strings.TrimSpace(val)
		}
	}
	return c, sc.Err()
}

// lockedThreads starts n goroutines, each locked to its own OS thread for
// good, and returns a function that asks each thread for its credentials
// through its own (per-thread) system calls.
func lockedThreads(n int) func() []pdThread {
	type req chan pdThread
	var reqs []chan req
	ready := make(chan struct{})
	for i := 0; i < n; i++ {
		c := make(chan req)
		reqs = append(reqs, c)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays ours
			ready <- struct{}{}
			for r := range c {
				var t pdThread
				t.TID = unix.Gettid()
				t.Res[0], t.Res[1], t.Res[2] = unix.Getresuid()
				t.Res[3], t.Res[4], t.Res[5] = unix.Getresgid()
				t.Groups, _ = unix.Getgroups()
				r <- t
			}
		}()
	}
	for range reqs {
		<-ready
	}
	return func() []pdThread {
		var out []pdThread
		for _, c := range reqs {
			r := make(req)
			c <- r
			out = append(out, <-r)
		}
		return out
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// observeDrop collects a pdReport in the daemon.
func observeDrop(threads func() []pdThread) pdReport {
	r := pdReport{PID: os.Getpid(), Proc: map[string]pdCreds{}, Env: map[string]string{}, Regain: map[string]string{}}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		if c, err := readCreds("/proc/self/task/" + t.Name() + "/status"); err == nil {
			r.Proc[t.Name()] = c
		}
	}
	if threads != nil {
		r.Threads = threads()
	}
	for _, k := range []string{"USER", "LOGNAME", "HOME"} {
		r.Env[k] = os.Getenv(k)
	}
	if os.Getuid() != 0 {
		// Every way back to root must fail (each would stick if it worked).
		r.Regain["setuid(0)"] = errString(syscall.Setuid(0))
		r.Regain["setresuid(0,0,0)"] = errString(syscall.Setresuid(0, 0, 0))
		r.Regain["seteuid(0)"] = errString(syscall.Seteuid(0))
		r.Regain["setgid(0)"] = errString(syscall.Setgid(0))
		r.Regain["setgroups([0])"] = errString(syscall.Setgroups([]int{0}))
		r.Regain["raw per-thread setresuid(0,0,0)"] = errString(unix.Setresuid(0, 0, 0))
	}
	return r
}

// listenPrivileged binds the first free TCP port below 1024 on 127.0.0.1.
func listenPrivileged() (net.Listener, error) {
	var last error
	for port := 80; port < 1024; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return ln, nil
		}
		last = err
	}
	return nil, last
}

// serveIDs answers every connection with the daemon's ids.
func serveIDs(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "uid=%d euid=%d gid=%d\n", os.Getuid(), os.Geteuid(), os.Getgid())
		c.Close()
	}
}

func init() {
	blivettest.Register("privdrop", func(h *blivettest.H) {
		var o pdOpts
		if err := json.Unmarshal([]byte(h.Env("PRIVDROP_OPTS")), &o); err != nil {
			panic(err)
		}
		opts := []blivet.Option{blivet.WithChownPaths(!o.NoChown)}
		if o.User != "" {
			opts = append(opts, blivet.WithUser(o.User))
		}
		if o.Group != "" {
			opts = append(opts, blivet.WithGroup(o.Group))
		}
		if o.Stdout != "" {
			opts = append(opts, blivet.WithStdout(o.Stdout))
		}
		if o.Stderr != "" {
			opts = append(opts, blivet.WithStderr(o.Stderr))
		}
		if o.Pidfile != "" {
			opts = append(opts, blivet.WithPidfile(o.Pidfile))
		}
		if o.Lock != "" {
			opts = append(opts, blivet.WithLockfile(o.Lock))
		}
		for _, kv := range o.Env {
			opts = append(opts, blivet.WithEnv(kv[0], kv[1]))
		}
		var ln net.Listener
		if o.Mode == "auto" {
			opts = append(opts, blivet.WithAutoNotify(), blivet.WithHookBefore("privdrop", func(s *blivet.State) error {
				h.Report("hook", map[string]int{"euid": os.Geteuid(), "pid": os.Getpid()})
				var err error
				ln, err = listenPrivileged()
				return err
			}))
		}
		ctx, err := blivet.Daemonize(opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "privdrop helper:", err)
			os.Exit(blivet.ExitCodeOf(err))
		}
		if o.Mode == "auto" {
			// Dropped and ready already: the hook bound the port as root.
			h.Report("dropped", observeDrop(nil))
			serveIDs(ln)
			return
		}
		threads := lockedThreads(o.Threads)
		switch o.Mode {
		case "ready-first":
			err := ctx.NotifyParent()
			h.Report("refused", map[string]any{"code": blivet.ExitCodeOf(err), "msg": errString(err), "euid": os.Geteuid()})
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if _, err := os.Stat(o.Trigger); err == nil {
					break
				}
			}
			ctx.ReportError(err)
		case "vanish":
			if err := os.Remove(o.Stdout); err != nil {
				ctx.ReportError(err)
			}
		}
		if o.Port {
			if ln, err = listenPrivileged(); err != nil {
				ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
			}
		}
		if o.ExplicitChown {
			if err := ctx.ChownPaths(); err != nil {
				ctx.ReportError(err)
			}
		}
		if err := ctx.DropPrivileges(); err != nil {
			c, _ := readCreds("/proc/self/status")
			h.Report("drop-error", map[string]any{"code": blivet.ExitCodeOf(err), "msg": err.Error(), "proc": c})
			ctx.ReportError(err)
		}
		r := observeDrop(threads)
		if ln != nil {
			r.Port = ln.Addr().(*net.TCPAddr).Port
		}
		h.Report("dropped", r)
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		if ln != nil {
			serveIDs(ln)
		}
		select {} // wait to be killed at the end of the test
	})
	blivettest.Register("privdrop-validate", func(h *blivettest.H) {
		_, err := blivet.Daemonize(blivet.WithUser("nobody"))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err))
	})
}

func pdNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: the privilege-drop tests need root (they switch to the user nobody for real)")
	}
}

// pdLayout makes a report directory the dropped daemon can write to, and
// root-owned 0755 directories for logs and pidfiles.
func pdLayout(t *testing.T) (dir, logs, run string) {
	t.Helper()
	dir = t.TempDir()
	logs, run = filepath.Join(dir, "log"), filepath.Join(dir, "run")
	for _, d := range []string{logs, run} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The report directory and its parent must be reachable by nobody.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir, logs, run
}

func pdLaunch(t *testing.T, dir string, o pdOpts, extra ...blivettest.LaunchOption) *blivettest.Run {
	t.Helper()
	data, _ := json.Marshal(o)
	return blivettest.Launch(t, "privdrop", append([]blivettest.LaunchOption{
		blivettest.WithDir(dir), blivettest.WithEnv("PRIVDROP_OPTS", string(data))}, extra...)...)
}

func lookupIDs(t *testing.T, name string) (uid, gid int, groups []int, home string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s: %v", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	// id(1) uses the C library's getgrouplist: an independent oracle.
	out, err := exec.Command("id", "-G", name).Output()
	if err != nil {
		t.Skipf("id -G %s: %v", name, err)
	}
	for _, f := range strings.Fields(string(out)) {
		g, _ := strconv.Atoi(f)
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return uid, gid, slices.Compact(groups), u.HomeDir
}

// checkEveryThread asserts the identity on every thread, from /proc and
// from the locked threads' own system calls.
func checkEveryThread(t *testing.T, r pdReport, uid, gid int, groups []int, minThreads int) {
	t.Helper()
	if len(r.Proc) < minThreads {
		t.Errorf("only %d threads in /proc, want at least %d", len(r.Proc), minThreads)
	}
	if groups == nil {
		groups = []int{}
	}
	for tid, c := range r.Proc {
		g := slices.Clone(c.Groups)
		slices.Sort(g)
		if c.UID != [4]int{uid, uid, uid, uid} || c.GID != [4]int{gid, gid, gid, gid} || !slices.Equal(g, groups) {
			t.Errorf("thread %s: Uid %v Gid %v Groups %v, want %d %d %v", tid, c.UID, c.GID, g, uid, gid, groups)
		}
		if uid != 0 && c.CapEff != "0000000000000000" {
			t.Errorf("thread %s: CapEff %s, want none", tid, c.CapEff)
		}
	}
	for _, th := range r.Threads {
		g := slices.Clone(th.Groups)
		slices.Sort(g)
		if th.Res != [6]int{uid, uid, uid, gid, gid, gid} || !slices.Equal(append([]int{}, g...), groups) {
			t.Errorf("locked thread %d sees res ids %v groups %v, want %d %d %v", th.TID, th.Res, g, uid, gid, groups)
		}
		if _, ok := r.Proc[strconv.Itoa(th.TID)]; !ok {
			t.Errorf("locked thread %d missing from /proc/self/task", th.TID)
		}
	}
}

func checkRegainFails(t *testing.T, r pdReport) {
	t.Helper()
	if len(r.Regain) == 0 {
		t.Fatal("no regain attempts reported")
	}
	for what, err := range r.Regain {
		if !strings.Contains(err, "operation not permitted") {
			t.Errorf("%s after the drop: error %q, want EPERM", what, err)
		}
	}
}

func fileOwner(t *testing.T, path string) [2]int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]int{int(st.Uid), int(st.Gid)}
}

func TestPrivdropUserOnly(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	uid, gid, groups, home := lookupIDs(t, "nobody")
	dir, logs, run := pdLayout(t)
	o := pdOpts{
		User:   "nobody",
		Stdout: filepath.Join(logs, "out.log"), Stderr: filepath.Join(logs, "err.log"),
		Pidfile: filepath.Join(run, "app.pid"), Lock: filepath.Join(run, "app.lock"),
		Env:     [][2]string{{"USER", "wrong"}, {"HOME", "/wrong"}, {"LOGNAME", "wrong"}},
		Threads: 4, Port: true,
	}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	checkEveryThread(t, rep, uid, gid, groups, 5)
	if len(rep.Threads) != 4 {
		t.Errorf("%d locked threads reported, want 4", len(rep.Threads))
	}
	checkRegainFails(t, rep)
	want := map[string]string{"USER": "nobody", "LOGNAME": "nobody", "HOME": home}
	for k, v := range want {
		if rep.Env[k] != v {
			t.Errorf("%s=%q after the drop, want %q (from the passwd entry, over WithEnv)", k, rep.Env[k], v)
		}
	}
	for _, p := range []string{o.Stdout, o.Stderr, o.Lock} {
		if got := fileOwner(t, p); got != [2]int{uid, gid} {
			t.Errorf("%s owned by %v, want %d:%d", p, got, uid, gid)
		}
	}
	if got := fileOwner(t, o.Pidfile); got != [2]int{0, 0} {
		t.Errorf("pidfile owned by %v, want it left to root", got)
	}
	// The port bound as root still serves, answered by the dropped daemon.
	checkServes(t, rep.Port, uid)
}

func checkServes(t *testing.T, port, uid int) {
	t.Helper()
	if port == 0 || port >= 1024 {
		t.Fatalf("port %d is not a privileged port", port)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatalf("dialing the daemon's port %d: %v", port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := io.ReadAll(c)
	if want := fmt.Sprintf("uid=%d euid=%d ", uid, uid); err != nil || !strings.HasPrefix(string(line), want) {
		t.Errorf("port %d answered %q (%v), want %q...", port, line, err, want)
	}
}

// TestPrivdropSupplementaryGroups drops to a user that is a member of
// other groups: the supplementary groups are what initgroups(3) sets.
func TestPrivdropSupplementaryGroups(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	name := ""
	if f, err := os.ReadFile("/etc/group"); err == nil {
		for _, line := range strings.Split(string(f), "\n") {
			fs := strings.Split(line, ":")
			if len(fs) == 4 && fs[3] != "" {
				for _, m := range strings.Split(fs[3], ",") {
					if u, err := user.Lookup(m); err == nil && u.Gid != fs[2] && u.Uid != "0" {
						name = m
					}
				}
			}
		}
	}
	if name == "" {
		t.Skip("no non-root user with a supplementary group in /etc/group")
	}
	uid, gid, groups, _ := lookupIDs(t, name)
	dir, _, _ := pdLayout(t)
	r := pdLaunch(t, dir, pdOpts{User: name, Threads: 2})
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	if len(groups) < 2 {
		t.Fatalf("id -G %s = %v, expected a supplementary group", name, groups)
	}
	checkEveryThread(t, rep, uid, gid, groups, 3)
	checkRegainFails(t, rep)
}

func TestPrivdropUserAndGroup(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	uid, _, groups, _ := lookupIDs(t, "nobody")
	g, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skip("no group daemon:", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	dir, logs, run := pdLayout(t)
	o := pdOpts{User: "nobody", Group: "daemon", Stdout: filepath.Join(logs, "out.log"),
		Pidfile: filepath.Join(run, "app.pid"), Threads: 3, ExplicitChown: true}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	// gid is the given group; supplementary groups are the user's own.
	checkEveryThread(t, rep, uid, gid, groups, 4)
	checkRegainFails(t, rep)
	if got := fileOwner(t, o.Stdout); got != [2]int{uid, gid} {
		t.Errorf("stdout owned by %v, want %d:%d", got, uid, gid)
	}
	// The pidfile is its own lock here: still root's.
	if got := fileOwner(t, o.Pidfile); got != [2]int{0, 0} {
		t.Errorf("pidfile (the lock) owned by %v, want root", got)
	}
}

func TestPrivdropGroupOnly(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skip("no group nogroup:", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	dir, logs, _ := pdLayout(t)
	o := pdOpts{Group: "nogroup", Stdout: filepath.Join(logs, "out.log"), Threads: 2,
		Env: [][2]string{{"USER", "kept"}}}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	// Supplementary groups cleared, gid set, uid still 0.
	checkEveryThread(t, rep, 0, gid, nil, 3)
	if rep.Env["USER"] != "kept" {
		t.Errorf("USER=%q after a group-only drop, want the WithEnv value kept", rep.Env["USER"])
	}
	if got := fileOwner(t, o.Stdout); got != [2]int{0, gid} {
		t.Errorf("stdout owned by %v, want 0:%d", got, gid)
	}
}

func TestPrivdropNumericIDs(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	uid, _, groups, home := lookupIDs(t, "nobody")
	dir, logs, _ := pdLayout(t)
	// Digits are ids; a uid with a passwd entry gets its name, home and groups.
	o := pdOpts{User: strconv.Itoa(uid), Group: "54320", Stdout: filepath.Join(logs, "out.log"), NoChown: true, Threads: 2}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	checkEveryThread(t, rep, uid, 54320, groups, 3)
	checkRegainFails(t, rep)
	if rep.Env["USER"] != "nobody" || rep.Env["HOME"] != home {
		t.Errorf("env after drop to uid %d: %v", uid, rep.Env)
	}
	if got := fileOwner(t, o.Stdout); got != [2]int{0, 0} {
		t.Errorf("stdout owned by %v with WithChownPaths(false), want root", got)
	}
}

func TestPrivdropBareUID(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	if _, err := user.LookupId("54321"); err == nil {
		t.Skip("uid 54321 has a passwd entry here")
	}
	dir, logs, _ := pdLayout(t)
	o := pdOpts{User: "54321", Group: "65534", Stdout: filepath.Join(logs, "out.log"), Threads: 2,
		Env: [][2]string{{"HOME", "/wrong"}}}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	checkEveryThread(t, rep, 54321, 65534, nil, 3)
	checkRegainFails(t, rep)
	want := map[string]string{"USER": "54321", "LOGNAME": "54321", "HOME": "/"}
	for k, v := range want {
		if rep.Env[k] != v {
			t.Errorf("%s=%q, want %q", k, rep.Env[k], v)
		}
	}
	if got := fileOwner(t, o.Stdout); got != [2]int{54321, 65534} {
		t.Errorf("stdout owned by %v, want 54321:65534", got)
	}

	// Without a group a bare uid is refused: 67, still root, not ready.
	dir2, _, _ := pdLayout(t)
	r = pdLaunch(t, dir2, pdOpts{User: "54321"})
	if r.ExitCode != blivet.ExitNoUser || !strings.Contains(r.Stderr, "WithGroup") {
		t.Errorf("bare uid without group: exit %d, stderr %q; want 67 suggesting WithGroup", r.ExitCode, r.Stderr)
	}
	var de struct{ Code int }
	r.Await("drop-error", &de)
	if de.Code != 67 {
		t.Errorf("DropPrivileges returned code %d, want 67", de.Code)
	}
}

func TestPrivdropUnknownNames(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	for _, o := range []pdOpts{{User: "blivet-no-such-user"}, {User: "nobody", Group: "blivet-no-such-group"}} {
		dir, _, _ := pdLayout(t)
		r := pdLaunch(t, dir, o)
		if r.ExitCode != blivet.ExitNoUser || !strings.Contains(r.Stderr, "not found") {
			t.Errorf("%+v: exit %d, stderr %q; want 67", o, r.ExitCode, r.Stderr)
		}
	}
}

// TestPrivdropFailedChown removes the output file between the output stage
// and the drop: the chown fails, DropPrivileges returns 73 (not fatal),
// the process is still root, and ReportError makes the launcher exit 73.
func TestPrivdropFailedChown(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	dir, logs, _ := pdLayout(t)
	o := pdOpts{User: "nobody", Stdout: filepath.Join(logs, "out.log"), Mode: "vanish"}
	r := pdLaunch(t, dir, o)
	if r.ExitCode != blivet.ExitCantCreate || !strings.Contains(r.Stderr, "out.log") {
		t.Errorf("launcher exit %d, stderr %q; want 73 naming the file", r.ExitCode, r.Stderr)
	}
	var de struct {
		Code int
		Msg  string
		Proc pdCreds
	}
	r.Await("drop-error", &de)
	if de.Code != 73 {
		t.Errorf("DropPrivileges: code %d (%s), want 73", de.Code, de.Msg)
	}
	if de.Proc.UID != [4]int{} || de.Proc.GID != [4]int{} {
		t.Errorf("after the failed chown the daemon is uid %v gid %v, want still root", de.Proc.UID, de.Proc.GID)
	}
	if r.Has("dropped") {
		t.Error("the daemon went on after the failed chown")
	}
}

// TestPrivdropReadyBeforeDrop: NotifyParent before DropPrivileges sends
// nothing (the launcher keeps waiting) and returns a 70; forwarded with
// ReportError, the launcher exits 70.
func TestPrivdropReadyBeforeDrop(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	dir, _, _ := pdLayout(t)
	trigger := filepath.Join(dir, "go-on")
	data, _ := json.Marshal(pdOpts{User: "nobody", Mode: "ready-first", Trigger: trigger})
	r, cmd := blivettest.Start(t, "privdrop", blivettest.WithDir(dir), blivettest.WithEnv("PRIVDROP_OPTS", string(data)))
	var refused struct {
		Code, Euid int
		Msg        string
	}
	r.Await("refused", &refused)
	if refused.Code != 70 || refused.Euid != 0 || !strings.Contains(refused.Msg, "DropPrivileges") {
		t.Errorf("NotifyParent before the drop: %+v, want 70 mentioning DropPrivileges, still root", refused)
	}
	if !blivettest.Alive(cmd.Process.Pid) {
		t.Error("the launcher exited although nothing was reported to it")
	}
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if r.ExitCode != blivet.ExitSoftware || !strings.Contains(r.Stderr, "privilege drop") {
		t.Errorf("launcher exit %d, stderr %q; want 70 about the privilege drop", r.ExitCode, r.Stderr)
	}
}

// TestPrivdropHookStyle: with WithAutoNotify a hook before privdrop binds
// the privileged port as root; Daemonize drops and says ready itself.
func TestPrivdropHookStyle(t *testing.T) {
	t.Parallel()
	pdNeedRoot(t)
	uid, gid, groups, _ := lookupIDs(t, "nobody")
	dir, _, _ := pdLayout(t)
	r := pdLaunch(t, dir, pdOpts{User: "nobody", Mode: "auto"})
	if r.ExitCode != 0 {
		t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	var hook struct{ Euid, PID int }
	r.Await("hook", &hook)
	if hook.Euid != 0 {
		t.Errorf("the hook before privdrop ran as euid %d, want root", hook.Euid)
	}
	var rep pdReport
	r.Await("dropped", &rep)
	if rep.PID != hook.PID {
		t.Errorf("hook ran in pid %d, daemon is %d", hook.PID, rep.PID)
	}
	checkEveryThread(t, rep, uid, gid, groups, 1)
	checkRegainFails(t, rep)
	var port int
	blivettest.Eventually(t, 5*time.Second, func() bool {
		port = listeningPort(rep.PID)
		return port != 0
	}, "the daemon is not listening")
	checkServes(t, port, uid)
}

// listeningPort finds the TCP port pid listens on below 1024, from
// /proc/PID/net/tcp and its socket inodes.
func listeningPort(pid int) int {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && p < 1024 {
			return int(p)
		}
	}
	return 0
}

// TestPrivdropNeedsRoot: a user configured while not root is refused at
// validation, before any fork, with 77 and a message saying what to do.
// As root the helper runs as nobody (from a copy of the test binary that
// nobody can execute).
func TestPrivdropNeedsRoot(t *testing.T) {
	t.Parallel()
	var opts []blivettest.LaunchOption
	if os.Geteuid() == 0 {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(t.TempDir(), "blivet.test")
		if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(filepath.Dir(bin)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := exefile.Copy(exe, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, blivettest.WithCmd(func(c *exec.Cmd) {
			c.Path, c.Args[0], c.Dir = bin, bin, "/"
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		}))
	}
	r := blivettest.Launch(t, "privdrop-validate", opts...)
	if r.ExitCode != blivet.ExitNoPerm || !strings.Contains(r.Stderr, "needs root") || !strings.Contains(r.Stderr, `WithUser("nobody")`) {
		t.Errorf("exit %d, stderr %q; want 77 naming WithUser and root", r.ExitCode, r.Stderr)
	}
	if pids := r.PIDs(); len(pids) != 0 {
		t.Errorf("processes left after a validation error: %v", pids)
	}
}
