//go:build linux && (amd64 || arm64)

package rawfork

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
)

// run executes p and returns the records the children wrote, once the
// pipe is at end of file (the daemon exec'd or failed), and the daemon's
// PID (the last PID record).
func run(t *testing.T, p *stages.Plan, o Options) (recs []wire.Record, daemon int) {
	t.Helper()
	if !Supported() {
		t.Skip("raw launch not supported here (close_range with CLOSE_RANGE_CLOEXEC: Linux 5.11)")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pid, err := Start(p, w, o)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rec, ok := wire.Decode(sc.Text())
		if !ok {
			t.Fatalf("not a record: %q", sc.Text())
		}
		recs = append(recs, rec)
		if rec.Kind == wire.KindPID {
			daemon = rec.PID
		}
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	return recs, daemon
}

// awaitFile polls for path to have content ending in a newline.
func awaitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 && b[len(b)-1] == '\n' && strings.Contains(string(b), "END") {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never complete: %q", path, b)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func openOut(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sh(script string) stages.Op {
	return stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sh"}, Argv: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Announce: true}}
}

// The planned steps run in order in a grandchild that is in a new session
// but not its leader, whichever way the children are forked; it gets
// nothing of the launcher's fds but 0-2.
func TestPlanShapesTheDaemon(t *testing.T) {
	for _, vfork := range []bool{false, true} {
		t.Run(fmt.Sprintf("vfork=%v", vfork), func(t *testing.T) {
			dir := t.TempDir()
			f := openOut(t, filepath.Join(dir, "out"))
			p := &stages.Plan{Final: true, Ops: []stages.Op{
				{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, {Kind: stages.OpUmask, Num: 0o027},
				{Kind: stages.OpChdir, Path: dir}, {Kind: stages.OpDup, File: f, Num: 1},
				{Kind: stages.OpCloexec},
				{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sleep"}, Argv: []string{"sleep", "60"}, Announce: true}},
			}}
			// An fd the launcher has open and inheritable: the daemon must
			// not get it, and the launcher must keep it (the intermediate
			// may share the launcher's fd table).
			inherited, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(inherited)
			recs, daemon := run(t, p, Options{Vfork: vfork, CloseUnkept: true})
			t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
			if last := recs[len(recs)-1]; last.Kind != wire.KindExec {
				t.Fatalf("records %+v, want an exec record last", recs)
			}
			if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(inherited)); err != nil || target != dir {
				t.Errorf("the launcher's fd %d after the launch: %q, %v; want %s still open", inherited, target, err, dir)
			}
			base := "/proc/" + strconv.Itoa(daemon)
			stat, err := os.ReadFile(base + "/stat")
			if err != nil {
				t.Fatal(err)
			}
			f4 := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			ppid, sid := f4[1], f4[3]
			if ppid == strconv.Itoa(os.Getpid()) {
				t.Errorf("the daemon is the launcher's child (ppid %s)", ppid)
			}
			if sid == strconv.Itoa(daemon) || sid == "0" {
				t.Errorf("session %s for PID %d: want a new session it does not lead", sid, daemon)
			}
			status, _ := os.ReadFile(base + "/status")
			if !strings.Contains(string(status), "Umask:\t0027\n") {
				t.Errorf("umask not 0027:\n%s", status)
			}
			if cwd, _ := os.Readlink(base + "/cwd"); cwd != dir {
				t.Errorf("cwd %q, want %q", cwd, dir)
			}
			awaitOnlyStdio(t, daemon, "the launcher's fd "+strconv.Itoa(inherited)+" or a plan's file")
		})
	}
}

// A plan without a close-on-exec step of its own (the library's, which
// re-executes the program) still gives the daemon none of the launcher's
// inheritable fds but those it names, whichever way the intermediate
// treats the launcher's fd table, and the launcher keeps them all.
func TestPlanWithoutCloexecKeepsOnlyWhatItNames(t *testing.T) {
	for _, vfork := range []bool{false, true} {
		t.Run(fmt.Sprintf("vfork=%v", vfork), func(t *testing.T) {
			dir := t.TempDir()
			f := openOut(t, filepath.Join(dir, "out"))
			inherited, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(inherited)
			p := &stages.Plan{Ops: []stages.Op{
				{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, {Kind: stages.OpDup, File: f, Num: 1},
				{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sleep"}, Argv: []string{"sleep", "60"}, Announce: true}},
			}}
			_, daemon := run(t, p, Options{Vfork: vfork, CloseUnkept: true})
			t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
			if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(inherited)); err != nil || target != dir {
				t.Errorf("the launcher's fd %d after the launch: %q, %v; want %s still open", inherited, target, err, dir)
			}
			awaitOnlyStdio(t, daemon, "the launcher's fd "+strconv.Itoa(inherited))
			if out, _ := os.Readlink("/proc/" + strconv.Itoa(daemon) + "/fd/1"); out != filepath.Join(dir, "out") {
				t.Errorf("fd 1 is %q, want the planned output", out)
			}
		})
	}
}

// awaitOnlyStdio waits until process pid has exactly fds 0, 1 and 2 open,
// failing the test after 5 s: the program's loader may hold a file open
// for a moment while it starts, but what was inherited (what names) would
// stay for ever.
func awaitOnlyStdio(t *testing.T, pid int, what string) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		var fds []string
		for _, e := range ents {
			fds = append(fds, e.Name())
		}
		if strings.Join(fds, " ") == "0 1 2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program has fds %v, want 0 1 2 (%s must not reach it)", fds, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// With Vfork, Start returns only once the children are done with the
// stack they share with the launcher: the last of them has exec'd, or
// failed and exited. Each plan runs thousands of steps in its last child
// first, so a launcher released any earlier (at the intermediate's exit,
// which comes right after the daemon's clone when the daemon releases the
// launcher itself) is caught by what the pipe and /proc show the moment
// Start returns. The plans cover the direct release (one fork) and the
// forms it must not be used for or must not hang on: a second fork, a
// failure before the fork, no fork. Each runs 10 times while other
// goroutines allocate, so the collector runs beside the launches.
func TestVforkReturnsOnceTheDaemonExecsOrFails(t *testing.T) {
	if !Supported() {
		t.Skip("raw launch not supported here (close_range with CLOSE_RANGE_CLOEXEC: Linux 5.11)")
	}
	prog, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	sleep := stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sleep"}, Argv: []string{"sleep", "60"}}}
	missing := stages.Op{Kind: stages.OpChdir, Path: filepath.Join(t.TempDir(), "missing")}
	setsid, fork := stages.Op{Kind: stages.OpSetsid}, stages.Op{Kind: stages.OpFork}
	plan := func(head []stages.Op, tail ...stages.Op) *stages.Plan {
		ops := append([]stages.Op{}, head...)
		for range 3000 {
			ops = append(ops, stages.Op{Kind: stages.OpUmask, Num: 0o022})
		}
		return &stages.Plan{Final: true, Ops: append(ops, tail...)}
	}
	cases := []struct {
		name   string
		plan   *stages.Plan
		pids   int           // PID records: one per child
		failed syscall.Errno // the failed step's errno, or 0: the last child exec'd
	}{
		{"one fork", plan([]stages.Op{setsid, fork}, sleep), 2, 0},
		{"one fork, failing", plan([]stages.Op{setsid, fork}, missing, sleep), 2, syscall.ENOENT},
		{"two forks", plan([]stages.Op{setsid, fork, fork}, sleep), 3, 0},
		{"failing before the fork", plan([]stages.Op{setsid, missing, fork}, sleep), 1, syscall.ENOENT},
		{"no fork", plan([]stages.Op{setsid}, sleep), 1, 0},
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
				keep = append(keep, make([]byte, 64<<10))
				if len(keep) > 64 {
					keep = nil
				}
			}
		}
	}()
	// launch returns the records the children wrote before Start returned,
	// and the first child, for the caller to reap.
	launch := func(p *stages.Plan) ([]wire.Record, int) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		pid, err := Start(p, w, Options{Vfork: true})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := r.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		raw.Read(func(fd uintptr) bool {
			syscall.SetNonblock(int(fd), true)
			buf := make([]byte, 4096)
			for {
				n, _ := syscall.Read(int(fd), buf)
				if n <= 0 {
					return true
				}
				got = append(got, buf[:n]...)
			}
		})
		var recs []wire.Record
		for _, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
			if rec, ok := wire.Decode(line); ok {
				recs = append(recs, rec)
			}
		}
		return recs, pid
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 10 {
				recs, first := launch(c.plan)
				pids, last := 0, 0
				for _, rec := range recs {
					if rec.Kind == wire.KindPID {
						pids, last = pids+1, rec.PID
					}
				}
				if c.failed != 0 {
					syscall.Wait4(first, nil, 0, nil)
					if pids != c.pids || recs[len(recs)-1].Kind != wire.KindRaw || recs[len(recs)-1].Errno != c.failed {
						t.Fatalf("launch %d: when Start returned the pipe held %+v; want %d PID records and the failed step's record", i, recs, c.pids)
					}
					continue
				}
				exe, err := os.Readlink("/proc/" + strconv.Itoa(last) + "/exe")
				syscall.Kill(last, syscall.SIGKILL)
				syscall.Wait4(first, nil, 0, nil)
				if pids != c.pids || len(recs) != pids || exe != prog {
					t.Fatalf("launch %d: when Start returned the pipe held %+v and PID %d ran %q (%v); want %d PID records and %s exec'd", i, recs, last, exe, err, c.pids, prog)
				}
			}
		})
	}
}

// The daemon releases the launcher itself wherever the clone routines
// allow it (amd64), for a vfork launch with one fork and no waiting
// intermediate; never with two forks, whose daemon would clear the word
// while its own child still ran on the stack.
func TestDirectReleaseIsUsedWhereItIsSafe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	exec := stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/true"}, Argv: []string{"true"}}}
	setsid, fork := stages.Op{Kind: stages.OpSetsid}, stages.Op{Kind: stages.OpFork}
	cases := []struct {
		name string
		ops  []stages.Op
		o    Options
		want bool
	}{
		{"vfork, one fork", []stages.Op{setsid, fork, exec}, Options{Vfork: true}, directRelease},
		{"vfork, two forks", []stages.Op{setsid, fork, fork, exec}, Options{Vfork: true}, false},
		{"plain forks", []stages.Op{setsid, fork, exec}, Options{}, false},
		{"waiting intermediate", []stages.Op{setsid, fork, exec}, Options{Vfork: true, Waiter: w}, false},
	}
	for _, c := range cases {
		ch, _, err := prepare(&stages.Plan{Final: true, Ops: c.ops}, int(w.Fd()), c.o)
		if err != nil {
			t.Fatal(err)
		}
		if ch.direct != c.want {
			t.Errorf("%s: direct release %v, want %v", c.name, ch.direct, c.want)
		}
	}
	if runtime.GOARCH == "amd64" && !directRelease {
		t.Error("amd64 launches without the direct release")
	}
}

// A failed step is reported with its index in the plan and its errno, and
// nothing after it runs.
func TestFailureNamesTheStep(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	cases := []struct {
		name  string
		op    stages.Op
		errno syscall.Errno
	}{
		{"chdir", stages.Op{Kind: stages.OpChdir, Path: filepath.Join(dir, "missing")}, syscall.ENOENT},
		{"exec", stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{filepath.Join(dir, "nope")}, Argv: []string{"nope"}}}, syscall.ENOENT},
		{"exec denied", stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{dir}, Argv: []string{"x"}}}, syscall.EACCES},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ops := []stages.Op{{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, c.op}
			if c.op.Kind != stages.OpExec {
				ops = append(ops, sh("touch "+marker))
			}
			recs, _ := run(t, &stages.Plan{Final: true, Ops: ops}, Options{Vfork: true})
			last := recs[len(recs)-1]
			if last.Kind != wire.KindRaw || last.Step != 2 || last.Errno != c.errno {
				t.Errorf("records %+v, want raw step 2 errno %v", recs, c.errno)
			}
			// Nothing after the failed step ran: the shell step would
			// have announced its exec first.
			for _, rec := range recs {
				if rec.Kind == wire.KindExec {
					t.Errorf("records %+v: a step after the failed one ran", recs)
				}
			}
		})
	}
}

// The lock is taken by the daemon itself, the kernel names it as holder,
// and its PID is written through the lock; a second plan on the same file
// fails with EWOULDBLOCK on the lock step.
func TestLockAndPID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.pid")
	lockPlan := func() *stages.Plan {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return &stages.Plan{Final: true, Ops: []stages.Op{
			{Kind: stages.OpSetsid}, {Kind: stages.OpFork},
			{Kind: stages.OpLock, File: f, Path: path}, {Kind: stages.OpWritePID, File: f}, {Kind: stages.OpKeepOpen, File: f},
			{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sleep"}, Argv: []string{"sleep", "60"}, Announce: true}},
		}}
	}
	recs, daemon := run(t, lockPlan(), Options{Vfork: true})
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
	if recs[len(recs)-1].Kind != wire.KindExec {
		t.Fatalf("records %+v", recs)
	}
	b, _ := os.ReadFile(path)
	if string(b) != strconv.Itoa(daemon)+"\n" {
		t.Errorf("pidfile %q, want %d", b, daemon)
	}
	if !strings.Contains(readLocks(t), fmt.Sprintf("FLOCK  ADVISORY  WRITE %d ", daemon)) {
		t.Errorf("/proc/locks does not name %d:\n%s", daemon, readLocks(t))
	}
	recs, _ = run(t, lockPlan(), Options{Vfork: true})
	if last := recs[len(recs)-1]; last.Kind != wire.KindRaw || last.Step != 2 || last.Errno != syscall.EWOULDBLOCK {
		t.Errorf("second start: %+v, want the lock step to fail with EWOULDBLOCK", recs)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Errorf("the losing start rewrote the pidfile: %q", b2)
	}
}

// The daemon's PID replaces whatever the file held: a longer stale
// content is cut after the write, whether the file is the one it locked
// (its size known from the lock step) or a separate pidfile (its size
// read before the write); a new, empty file ends up the same.
func TestPIDReplacesLongerContent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		locked     bool // the pidfile is the file locked just before
		lockedElse bool // another, empty file is locked just before
		before     string
	}{
		{"locked, longer", true, false, "4194303999 stale and long\n"},
		{"locked, empty", true, false, ""},
		{"separate, longer", false, false, "4194303999 stale and long\n"},
		{"separate, empty", false, false, ""},
		{"separate after another file's lock, longer", false, true, "4194303999 stale and long\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.pid")
			if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ops := []stages.Op{{Kind: stages.OpSetsid}, {Kind: stages.OpFork}}
			if tc.locked {
				ops = append(ops, stages.Op{Kind: stages.OpLock, File: f, Path: path})
			}
			if tc.lockedElse {
				lock := filepath.Join(dir, "x.lock")
				lf, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				defer lf.Close()
				ops = append(ops, stages.Op{Kind: stages.OpLock, File: lf, Path: lock}, stages.Op{Kind: stages.OpKeepOpen, File: lf})
				ops[len(ops)-1], ops[len(ops)-2] = ops[len(ops)-2], ops[len(ops)-1] // the lock right before the write
			}
			ops = append(ops, stages.Op{Kind: stages.OpWritePID, File: f}, stages.Op{Kind: stages.OpKeepOpen, File: f},
				stages.Op{Kind: stages.OpExec, Exec: stages.Exec{Candidates: []string{"/bin/sleep"}, Argv: []string{"sleep", "60"}, Announce: true}})
			recs, daemon := run(t, &stages.Plan{Final: true, Ops: ops}, Options{Vfork: true})
			if daemon > 0 {
				defer syscall.Kill(daemon, syscall.SIGKILL)
			}
			if recs[len(recs)-1].Kind != wire.KindExec {
				t.Fatalf("records %+v", recs)
			}
			if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(daemon)+"\n" {
				t.Errorf("pidfile %q, want exactly %d and a newline", b, daemon)
			}
		})
	}
}

func readLocks(t *testing.T) string {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skip("no /proc/locks")
	}
	return string(b)
}

// No signal reaches the program ignored or blocked when asked, and no
// handler of the launcher's runtime survives in any case.
func TestSignalsReset(t *testing.T) {
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	for _, reset := range []bool{true, false} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "status")
			f := openOut(t, out)
			p := &stages.Plan{Final: true, ResetSignals: reset, Ops: []stages.Op{
				{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, {Kind: stages.OpDup, File: f, Num: 1},
				sh(`grep -E '^(SigBlk|SigIgn|SigCgt):' /proc/self/status; echo END`),
			}}
			run(t, p, Options{Vfork: true})
			status := awaitFile(t, out)
			mask := func(field string) uint64 {
				for _, line := range strings.Split(status, "\n") {
					if v, ok := strings.CutPrefix(line, field+":"); ok {
						n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
						return n
					}
				}
				t.Fatalf("no %s in %q", field, status)
				return 0
			}
			hup := uint64(1) << (syscall.SIGHUP - 1)
			if mask("SigBlk") != 0 {
				t.Errorf("blocked signals %#x", mask("SigBlk"))
			}
			if got := mask("SigIgn") & hup; (got != 0) == reset {
				t.Errorf("SIGHUP ignored = %v with reset %v", got != 0, reset)
			}
		})
	}
}

// The waiting intermediate tells how the program ended.
func TestWaiterReportsTheEnd(t *testing.T) {
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer er.Close()
	p := &stages.Plan{Final: true, Ops: []stages.Op{{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, sh("exit 3")}}
	run(t, p, Options{Vfork: true, Waiter: ew})
	ew.Close()
	line, _ := bufio.NewReader(er).ReadString('\n')
	rec, ok := wire.Decode(strings.TrimSuffix(line, "\n"))
	if !ok || rec.Kind != wire.KindEnded || !rec.Status.Exited() || rec.Status.ExitStatus() != 3 {
		t.Errorf("waiter said %q, want exit status 3", line)
	}
}

// LISTEN_PID-like variables carry the program's own PID.
func TestPIDVar(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	f := openOut(t, out)
	x := sh(`echo "$LISTEN_PID $$ END"`)
	x.Exec.PIDVar = "LISTEN_PID"
	run(t, &stages.Plan{Final: true, Ops: []stages.Op{{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, {Kind: stages.OpDup, File: f, Num: 1}, x}}, Options{Vfork: true})
	fields := strings.Fields(awaitFile(t, out))
	if fields[0] != fields[1] {
		t.Errorf("LISTEN_PID %s for PID %s", fields[0], fields[1])
	}
}

// A file handed to the plan at a number another file is moved onto is
// relocated first, so both arrive.
func TestRelocatesCollidingFiles(t *testing.T) {
	dir := t.TempDir()
	a := openOut(t, filepath.Join(dir, "a"))
	out := filepath.Join(dir, "out")
	b := openOut(t, out)
	target := int(a.Fd()) // b is moved onto a's number, after a was used
	p := &stages.Plan{Final: true, Ops: []stages.Op{
		{Kind: stages.OpSetsid}, {Kind: stages.OpFork}, {Kind: stages.OpDup, File: a, Num: 2},
		{Kind: stages.OpDup, File: b, Num: target},
		sh(fmt.Sprintf(`echo to-a >&2; echo "to-b END" >&%d`, target)),
	}}
	run(t, p, Options{Vfork: true})
	if got := awaitFile(t, out); got != "to-b END\n" {
		t.Errorf("out = %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) == "to-a\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never got its line")
		}
		time.Sleep(2 * time.Millisecond)
	}

}
