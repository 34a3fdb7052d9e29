package blivettest_test

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/stages"
	"github.com/google/go-cmp/cmp"
)

var allStages = []string{"signals", "fork", "setsid", "fork2", "umask", "chdir", "stdio", "pidfile", "env", "output", "closefds", "privdrop", "notify"}

// processState is what the fakes must leave alone.
type processState struct {
	Cwd   string
	Umask string
	Env   []string
}

func snapshot(t *testing.T) processState {
	t.Helper()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	st := processState{Cwd: cwd, Env: os.Environ()}
	slices.Sort(st.Env)
	// Reading the umask with umask(2) would change it; /proc does not.
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				st.Umask = strings.TrimSpace(v)
			}
		}
	}
	return st
}

func TestDaemonPipelineInProcess(t *testing.T) {
	t.Parallel()
	before := snapshot(t)
	dir := t.TempDir()
	rec := blivettest.NewRecorder(t)
	var roles []string
	role := func(tag string) blivet.HookFunc {
		return func(s *blivet.State) error {
			roles = append(roles, fmt.Sprintf("%s:%v:%v", tag, s.Role, s.Detached()))
			return nil
		}
	}
	ctx, err := rec.Daemonize(
		blivet.WithPidfile(filepath.Join(dir, "d.pid")),
		blivet.WithStdout(filepath.Join(dir, "d.log")),
		blivet.WithUmask(0o027),
		blivet.WithChdir(dir),
		blivet.WithEnv("BLIVETTEST_PROBE", "1"),
		blivet.WithHookBefore("fork", role("before fork")),
		blivet.WithHookAfter("fork", role("after fork")),
		blivet.WithHookAfter("fork2", role("after fork2")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(allStages[:11], rec.Stages()); diff != "" {
		t.Errorf("stages before the split point (-want +got):\n%s", diff)
	}
	want := []string{"before fork:launcher:false", "after fork:intermediate:true", "after fork2:daemon:true"}
	if diff := cmp.Diff(want, roles); diff != "" {
		t.Errorf("hook roles (-want +got):\n%s", diff)
	}
	var stageRoles []string
	for _, st := range rec.Steps() {
		if st.Kind == blivet.StageRan && st.Name != "umask" && len(stageRoles) < 5 {
			stageRoles = append(stageRoles, fmt.Sprintf("%s:%v", st.Name, st.Role))
		}
	}
	// Each stage runs in the generation that runs it for real: the fork
	// stages in the generation that re-executes.
	want = []string{"signals:launcher", "fork:launcher", "setsid:intermediate", "fork2:intermediate", "chdir:daemon"}
	if diff := cmp.Diff(want, stageRoles); diff != "" {
		t.Errorf("stage roles (-want +got):\n%s", diff)
	}
	if got := rec.Launcher(); got.Ready || got.ExitCode != -1 || got.PID != os.Getpid() {
		t.Errorf("launcher before NotifyParent: %+v", got)
	}
	if err := ctx.NotifyParent(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Launcher(); !got.Ready || got.ExitCode != 0 || got.Err != nil {
		t.Errorf("launcher after NotifyParent: %+v", got)
	}
	if err := ctx.Close(); err != nil {
		t.Fatal(err)
	}
	acts := rec.Actions()
	for _, a := range []string{"umask 027", "chdir " + dir, "lock " + filepath.Join(dir, "d.pid"),
		"setenv BLIVETTEST_PROBE=1", "stdout > " + filepath.Join(dir, "d.log") + " (truncate)", "ready",
		"remove " + filepath.Join(dir, "d.pid")} {
		if !slices.Contains(acts, a) {
			t.Errorf("no action %q in %q", a, acts)
		}
	}
	if diff := cmp.Diff([]string{"BLIVETTEST_PROBE=1"}, rec.Env()); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the fake output stage created the log: %v", err)
	}
	if diff := cmp.Diff(before, snapshot(t)); diff != "" {
		t.Errorf("process state changed (-before +after):\n%s", diff)
	}
}

type appError struct{ code int }

func (e *appError) Error() string { return fmt.Sprintf("app failure %d", e.code) }
func (e *appError) ExitCode() int { return e.code }

func TestFailureAfterForkIsReportedToTheLauncher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := blivettest.NewRecorder(t)
	ctx, err := rec.Daemonize(
		blivet.WithPidfile(filepath.Join(dir, "d.pid")),
		blivet.WithHookBefore("output", func(*blivet.State) error { return &appError{12} }),
	)
	if ctx != nil {
		t.Fatal("Daemonize returned a Context after a failing hook")
	}
	var exit *blivettest.ExitError
	if !errors.As(err, &exit) || exit.Code != 12 || blivet.ExitCodeOf(err) != 12 {
		t.Fatalf("err %v, want an exit with code 12", err)
	}
	var app *appError
	if !errors.As(err, &app) {
		t.Errorf("the application error is not wrapped: %v", err)
	}
	rep := rec.Launcher()
	if rep.Ready || rep.ExitCode != 12 || rep.Err == nil || !strings.Contains(rep.Err.Stage, "hook before output (inprocess_test.go:") {
		t.Errorf("launcher told %+v", rep)
	}
	if code, ok := rec.Exited(); !ok || code != 12 {
		t.Errorf("Exited() = %d, %v", code, ok)
	}
	steps := rec.Steps()
	last := steps[len(steps)-1]
	if last.Kind != blivet.HookRan || last.Stage != "output" || blivet.ExitCodeOf(last.Err) != 12 {
		t.Errorf("last step %v", last)
	}
	if rec.Ran("output") {
		t.Errorf("output ran after the failing hook: %v", rec.Stages())
	}
	if acts := rec.Actions(); acts[len(acts)-1] != "remove "+filepath.Join(dir, "d.pid") {
		t.Errorf("pidfile not removed before the exit: %q", acts)
	}
}

func TestReportErrorThroughCall(t *testing.T) {
	t.Parallel()
	rec := blivettest.NewRecorder(t)
	ctx, err := rec.Daemonize()
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	err = rec.Call(func() {
		defer func() { closed = ctx.Close() == nil }() // a deferred Close must not deadlock
		ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, errors.New("address in use")))
		t.Error("ReportError returned")
	})
	if blivet.ExitCodeOf(err) != 71 || !errors.Is(err, blivet.ErrOS) || !closed {
		t.Fatalf("err %v (closed %v), want exit 71", err, closed)
	}
	if rep := rec.Launcher(); rep.ExitCode != 71 || rep.Err.Stage != "listen" {
		t.Errorf("launcher told %+v", rep)
	}
	if err := rec.Call(func() {}); err != nil {
		t.Errorf("Call of a plain func: %v", err)
	}
}

func TestForegroundReturnsErrors(t *testing.T) {
	t.Parallel()
	rec := blivettest.NewRecorder(t)
	_, err := rec.Daemonize(blivet.WithForeground(true),
		blivet.WithHookAfter("chdir", func(s *blivet.State) error {
			if s.Role != blivet.RoleForeground || s.Detached() {
				t.Errorf("role %v detached %v", s.Role, s.Detached())
			}
			return &appError{33}
		}))
	var exit *blivettest.ExitError
	if errors.As(err, &exit) || blivet.ExitCodeOf(err) != 33 {
		t.Fatalf("err %v, want a returned error with code 33", err)
	}
	if _, ok := rec.Exited(); ok {
		t.Error("foreground failure ended the process")
	}
	if diff := cmp.Diff([]string{"signals", "fork", "setsid", "fork2", "umask", "chdir"}, rec.Stages()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, a := range rec.Actions() {
		if strings.Contains(a, "re-exec") || a == "setsid" {
			t.Errorf("foreground did %q", a)
		}
	}

	rec = blivettest.NewRecorder(t)
	if _, err := rec.Daemonize(blivet.WithForeground(true), blivet.WithAutoNotify()); err != nil {
		t.Fatal(err)
	}
	if rep := rec.Launcher(); !rep.Ready || rep.PID != 0 {
		t.Errorf("foreground report %+v", rep)
	}
}

func TestProgramStagesAndReplacementsAreKept(t *testing.T) {
	t.Parallel()
	rec := blivettest.NewRecorder(t)
	var ran []string
	mine := stageFunc{"chdir", func(*stages.State) error { ran = append(ran, "my chdir"); return nil }}
	cfg := stageFunc{"load-config", func(*stages.State) error { ran = append(ran, "load-config"); return nil }}
	if _, err := rec.Daemonize(blivet.WithStageReplaced("chdir", mine), blivet.WithStageBefore("chdir", cfg),
		blivet.WithoutStage("closefds"), blivet.WithAutoNotify()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"load-config", "my chdir"}, ran); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	want := []string{"signals", "fork", "setsid", "fork2", "umask", "load-config", "chdir", "stdio", "pidfile", "env", "output", "privdrop", "notify"}
	if diff := cmp.Diff(want, rec.Stages()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, a := range rec.Actions() {
		if strings.HasPrefix(a, "chdir") {
			t.Errorf("the fake chdir ran instead of the program's: %q", a)
		}
	}
}

type stageFunc struct {
	name string
	fn   func(*stages.State) error
}

func (s stageFunc) Name() string               { return s.name }
func (s stageFunc) Run(st *stages.State) error { return s.fn(st) }

func TestPrivilegeDropRecorded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("WithUser needs root (validation refuses it with 77 otherwise)")
	}
	t.Parallel()
	dir := t.TempDir()
	rec := blivettest.NewRecorder(t)
	log, lock := filepath.Join(dir, "d.log"), filepath.Join(dir, "d.lock")
	ctx, err := rec.Daemonize(blivet.WithUser("nobody"), blivet.WithPidfile(filepath.Join(dir, "d.pid")),
		blivet.WithLockfile(lock), blivet.WithStdout(log), blivet.WithStderr(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.NotifyParent(); blivet.ExitCodeOf(err) != 70 {
		t.Errorf("NotifyParent before the drop: %v, want 70", err)
	}
	if rec.Launcher().ExitCode != -1 {
		t.Errorf("the launcher was told something: %+v", rec.Launcher())
	}
	if _, ran := rec.Drop(); ran {
		t.Error("drop recorded before DropPrivileges")
	}
	if err := ctx.DropPrivileges(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the test process lost root")
	}
	d, ran := rec.Drop()
	if !ran || d.User != "nobody" || !cmp.Equal([]string{lock, log}, d.Chown) {
		t.Errorf("drop %+v ran %v", d, ran)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if uid := strconv.Itoa(d.Target.UID); uid != nobody.Uid || strconv.Itoa(d.Target.GID) != nobody.Gid || d.Target.Name != "nobody" {
		t.Errorf("target %+v, want nobody's ids %s:%s", d.Target, nobody.Uid, nobody.Gid)
	}
	if acts := rec.Actions(); !slices.Contains(acts, "setuid "+nobody.Uid) || !slices.Contains(acts, "setgid "+nobody.Gid) {
		t.Errorf("actions %q", acts)
	}
	if err := ctx.NotifyParent(); err != nil || !rec.Launcher().Ready {
		t.Errorf("NotifyParent after the drop: %v, %+v", err, rec.Launcher())
	}
}

func TestValidationErrorsAreReturned(t *testing.T) {
	t.Parallel()
	rec := blivettest.NewRecorder(t)
	_, err := rec.Daemonize(blivet.WithChdir("relative"))
	if blivet.ExitCodeOf(err) != 64 || len(rec.Steps()) != 0 {
		t.Errorf("err %v steps %v", err, rec.Steps())
	}
}

func TestManyParallelRecorders(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			rec := blivettest.NewRecorder(t)
			ctx, err := rec.Daemonize(blivet.WithEnv("N", fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := ctx.NotifyParent(); err != nil {
				t.Fatal(err)
			}
			if got := rec.Env(); len(got) != 1 || got[0] != fmt.Sprintf("N=%d", i) {
				t.Errorf("env %v", got)
			}
			if os.Getenv("N") != "" {
				t.Error("the environment changed")
			}
		})
	}
}

func TestRealStage(t *testing.T) {
	key := "BLIVETTEST_REAL_ENV"
	t.Cleanup(func() { os.Unsetenv(key) })
	rec := blivettest.NewRecorder(t, blivettest.Real("env"))
	if _, err := rec.Daemonize(blivet.WithEnv(key, "yes")); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(key) != "yes" || len(rec.Env()) != 0 || !rec.Ran("env") {
		t.Errorf("real env stage: %q, recorded %v", os.Getenv(key), rec.Env())
	}
}

// fatalTB records Fatalf instead of failing the test.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestRealRefusesDetachingStages(t *testing.T) {
	for _, name := range []string{"fork", "setsid", "fork2", "privdrop", "nosuch"} {
		tb := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			blivettest.NewRecorder(tb, blivettest.Real(name))
		}()
		<-done
		if !strings.Contains(tb.msg, fmt.Sprintf("Real(%q)", name)) {
			t.Errorf("Real(%q): %q", name, tb.msg)
		}
	}
}

func TestNilTBPanicsOnMisuse(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), `Real("fork")`) {
			t.Errorf("recovered %v", v)
		}
	}()
	blivettest.NewRecorder(nil, blivettest.Real("fork"))
}

func TestUnknownUserIs67(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("WithUser needs root (validation refuses it with 77 otherwise)")
	}
	t.Parallel()
	rec := blivettest.NewRecorder(t)
	_, err := rec.Daemonize(blivet.WithUser("no-such-user-blivet"), blivet.WithAutoNotify())
	if blivet.ExitCodeOf(err) != 67 || rec.Launcher().ExitCode != 67 {
		t.Errorf("err %v, launcher %+v; want 67", err, rec.Launcher())
	}
}
