package blivet_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/google/go-cmp/cmp"
)

// recorder is a stage that only records that it ran.
type recorder struct {
	name string
	log  *[]string
	err  error
	pnc  any
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Run(s *stages.State) error {
	*r.log = append(*r.log, r.name)
	if r.pnc != nil {
		panic(r.pnc)
	}
	return r.err
}

var defaultNames = []string{"signals", "fork", "setsid", "fork2", "umask", "chdir", "stdio", "pidfile", "env", "output", "closefds", "privdrop", "notify"}

// fakeAll replaces every default stage with a recorder, so the pipeline
// runs in the test process without touching process-wide state.
func fakeAll(log *[]string) []blivet.Option {
	var opts []blivet.Option
	for _, n := range defaultNames {
		opts = append(opts, blivet.WithStageReplaced(n, &recorder{name: n, log: log}))
	}
	return opts
}

func TestDefaultStageOrder(t *testing.T) {
	var names []string
	for _, st := range blivet.DefaultStages() {
		names = append(names, st.Name())
	}
	if diff := cmp.Diff(defaultNames, names); diff != "" {
		t.Errorf("default stages (-want +got):\n%s", diff)
	}
}

func TestPipelineOrderHooksAndSplitPhase(t *testing.T) {
	var log []string
	hook := func(tag string) blivet.HookFunc {
		return func(s *blivet.State) error { log = append(log, tag); return nil }
	}
	var events []string
	var mu sync.Mutex
	opts := append(fakeAll(&log),
		blivet.WithHookBefore("privdrop", hook("bind :80")),
		blivet.WithHookAfter("fork2", hook("after fork2")),
		blivet.WithHookBefore("fork2", hook("before fork2")),
		blivet.WithHookBefore("privdrop", hook("open root file")),
		blivet.WithObserver(func(e blivet.Event) {
			mu.Lock()
			events = append(events, e.Kind.String()+":"+e.Stage)
			mu.Unlock()
		}),
	)
	ctx, err := blivet.Daemonize(opts...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"signals", "fork", "setsid", "before fork2", "fork2", "after fork2", "umask", "chdir", "stdio", "pidfile", "env", "output", "closefds"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Fatalf("Daemonize ran (-want +got):\n%s", diff)
	}
	if !ctx.IsDaemon() || ctx.Role() != blivet.RoleDaemon {
		t.Errorf("IsDaemon %v role %v", ctx.IsDaemon(), ctx.Role())
	}
	log = nil
	if err := ctx.DropPrivileges(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bind :80", "open root file", "privdrop"}, log); diff != "" {
		t.Errorf("DropPrivileges ran (-want +got):\n%s", diff)
	}
	log = nil
	if err := ctx.NotifyParent(); err != nil {
		t.Fatal(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		t.Errorf("second NotifyParent: %v", err)
	}
	if diff := cmp.Diff([]string{"notify"}, log); diff != "" {
		t.Errorf("NotifyParent ran (-want +got):\n%s", diff)
	}
	if len(events) != len(defaultNames)+4 || events[3] != "hook:fork2" {
		t.Errorf("observer saw %v", events)
	}
}

func TestAutoNotifyRunsEverything(t *testing.T) {
	var log []string
	ctx, err := blivet.Daemonize(append(fakeAll(&log), blivet.WithAutoNotify())...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultNames, log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	log = nil
	if err := ctx.NotifyParent(); err != nil || len(log) != 0 {
		t.Errorf("NotifyParent after auto-notify: %v, ran %v", err, log)
	}
}

func TestStageEdits(t *testing.T) {
	var log []string
	opts := append(fakeAll(&log),
		blivet.WithStageBefore("chdir", &recorder{name: "load-config", log: &log}),
		blivet.WithStageAfter("notify", &recorder{name: "announce", log: &log}),
		blivet.WithoutStage("umask"),
		blivet.WithStageReplaced("env", &recorder{name: "my-env", log: &log}),
		blivet.WithAutoNotify(),
	)
	if _, err := blivet.Daemonize(opts...); err != nil {
		t.Fatal(err)
	}
	want := []string{"signals", "fork", "setsid", "fork2", "load-config", "chdir", "stdio", "pidfile", "my-env", "output", "closefds", "privdrop", "notify", "announce"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestBadPipelineEditsAreUsageErrors(t *testing.T) {
	var log []string
	cases := map[string]blivet.Option{
		"no stage named \"nope\"": blivet.WithStageBefore("nope", &recorder{name: "x", log: &log}),
		"two stages are named":    blivet.WithStageAfter("env", &recorder{name: "chdir", log: &log}),
		"hook before missing":     blivet.WithHookBefore("missing", func(*blivet.State) error { return nil }),
		"nil hook":                blivet.WithHookAfter("env", nil),
		"nil stage":               blivet.WithStageReplaced("env", nil),
		"remove unknown \"zzz\"":  blivet.WithoutStage("zzz"),
	}
	for name, opt := range cases {
		_, err := blivet.Daemonize(append(fakeAll(&log), opt)...)
		if !errors.Is(err, blivet.ErrUsage) || blivet.ExitCodeOf(err) != 64 {
			t.Errorf("%s: err %v, want a usage error (64)", name, err)
		}
	}
	if len(log) != 0 {
		t.Errorf("stages ran despite invalid pipelines: %v", log)
	}
}

func TestStageAndHookFailures(t *testing.T) {
	var log []string
	var cleaned []string
	register := func(s *blivet.State) error {
		s.OnCleanup(func() error { cleaned = append(cleaned, "first"); return nil })
		s.OnCleanup(func() error { cleaned = append(cleaned, "second"); return nil })
		return nil
	}
	t.Run("hook error", func(t *testing.T) {
		log, cleaned = nil, nil
		_, err := blivet.Daemonize(append(fakeAll(&log),
			blivet.WithHookAfter("stdio", register),
			blivet.WithHookBefore("env", func(*blivet.State) error { return &appError{12} }))...)
		var e *blivet.Error
		if !errors.As(err, &e) || e.Code != 12 || !strings.Contains(e.Stage, "hook before env (pipeline_test.go:") {
			t.Fatalf("err %v (%#v), want code 12 naming the hook's site", err, e)
		}
		var app *appError
		if !errors.As(err, &app) {
			t.Errorf("application error not wrapped: %v", err)
		}
		if log[len(log)-1] != "pidfile" {
			t.Errorf("stages after the failing hook ran: %v", log)
		}
		if diff := cmp.Diff([]string{"second", "first"}, cleaned); diff != "" {
			t.Errorf("cleanups (-want +got):\n%s", diff)
		}
	})
	t.Run("stage panic", func(t *testing.T) {
		log = nil
		_, err := blivet.Daemonize(append(fakeAll(&log),
			blivet.WithStageReplaced("chdir", &recorder{name: "chdir", log: &log, pnc: "kaboom"}))...)
		var e *blivet.Error
		if !errors.As(err, &e) || e.Code != 70 || e.Stage != "chdir" || !strings.Contains(err.Error(), "panic: kaboom") {
			t.Fatalf("err %v, want a 70 naming chdir and the panic", err)
		}
	})
	t.Run("untyped stage error", func(t *testing.T) {
		log = nil
		_, err := blivet.Daemonize(append(fakeAll(&log),
			blivet.WithStageReplaced("umask", &recorder{name: "umask", log: &log, err: errors.New("plain")}))...)
		if blivet.ExitCodeOf(err) != 70 || !strings.Contains(err.Error(), "umask: plain") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestReadyRefusedBeforeDrop(t *testing.T) {
	var log []string
	ctx, err := blivet.Daemonize(append(fakeAll(&log), blivet.WithUser("0"))...)
	if err != nil {
		t.Skipf("needs root for WithUser validation: %v", err)
	}
	err = ctx.NotifyParent()
	if blivet.ExitCodeOf(err) != 70 || !strings.Contains(err.Error(), "DropPrivileges") {
		t.Errorf("NotifyParent before the drop: %v, want 70", err)
	}
	if log[len(log)-1] == "notify" {
		t.Errorf("notify ran: %v", log)
	}
}

func TestErrorSentinels(t *testing.T) {
	err := stages.Errorf("pidfile", stages.ExitUnavailable, "held by %d", 42)
	if !errors.Is(err, blivet.ErrLocked) || errors.Is(err, blivet.ErrUsage) {
		t.Errorf("errors.Is on %v", err)
	}
	if got := blivet.ExitCodeOf(err); got != 69 {
		t.Errorf("ExitCodeOf = %d", got)
	}
	if got := blivet.ExitCodeOf(nil); got != 0 {
		t.Errorf("ExitCodeOf(nil) = %d", got)
	}
	if got := blivet.ExitCodeOf(&appError{0}); got != 70 {
		t.Errorf("ExitCodeOf(code 0) = %d", got)
	}
}
