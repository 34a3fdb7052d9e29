package stages_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/stages"
)

// loadConfig is a custom stage: a name and a Run method.
type loadConfig struct{ path string }

func (loadConfig) Name() string { return "load-config" }

func (l loadConfig) Run(s *stages.State) error {
	if _, err := os.Stat(l.path); err != nil {
		return stages.Wrap("load-config", 78, err) // EX_CONFIG
	}
	return nil
}

// A custom stage placed before chdir, so a relative path still works. Its
// error, reported from the daemon, becomes the launcher's exit code.
func ExampleStage() {
	rec := blivettest.NewRecorder(nil)
	_, err := rec.Daemonize(blivet.WithStageBefore("chdir", loadConfig{"blivet-no-such.conf"}))
	fmt.Println(rec.Stages()[4:6])
	fmt.Println(stages.ExitCodeOf(err), rec.Launcher().ExitCode)
	// Output:
	// [umask load-config]
	// 78 78
}

func ExampleExitCodeOf() {
	fmt.Println(stages.ExitCodeOf(nil))
	fmt.Println(stages.ExitCodeOf(stages.Errorf("pidfile", stages.ExitCantCreate, "disk full")))
	fmt.Println(stages.ExitCodeOf(fmt.Errorf("starting: %w", stages.ErrLocked)))
	fmt.Println(stages.ExitCodeOf(errors.New("plain")))
	// Output:
	// 0
	// 73
	// 69
	// 70
}

// Wrap keeps the innermost *Error: the most precise stage and code win.
func ExampleWrap() {
	inner := stages.Wrap("pidfile", stages.ExitCantCreate, fs.ErrPermission)
	outer := stages.Wrap("my-stage", stages.ExitSoftware, inner)
	fmt.Println(outer, stages.ExitCodeOf(outer))
	fmt.Println(stages.Wrap("my-stage", stages.ExitOSErr, nil))
	// Output:
	// pidfile: permission denied 73
	// <nil>
}

func ExampleErrorf() {
	err := stages.Errorf("load-config", 78, "%s:%d: want key = value", "/etc/app.conf", 3)
	fmt.Println(err, err.Code)
	// Output: load-config: /etc/app.conf:3: want key = value 78
}

// Without a wrapped error, the message is the code's meaning.
func ExampleError_Error() {
	fmt.Println(&stages.Error{Stage: "daemon", Code: stages.ExitTempFail})
	fmt.Println(&stages.Error{Code: 99})
	// Output:
	// daemon: ready timeout
	// exit code 99
}

func ExampleError_ExitCode() {
	err := stages.Errorf("privdrop", stages.ExitNoPerm, "setuid: operation not permitted")
	fmt.Println(err.ExitCode())
	// Output: 77
}

// The sentinels match any *Error with the same code.
func ExampleError_Is() {
	err := fmt.Errorf("start: %w", stages.Errorf("pidfile", stages.ExitUnavailable, "locked by PID 42"))
	fmt.Println(errors.Is(err, stages.ErrLocked), errors.Is(err, stages.ErrCantCreate))
	// Output: true false
}

func ExampleError_Unwrap() {
	err := stages.Wrap("chdir", stages.ExitOSErr, &fs.PathError{Op: "chdir", Path: "/srv/app", Err: fs.ErrNotExist})
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	var pe *fs.PathError
	fmt.Println(errors.As(err, &pe), pe.Path)
	// Output:
	// true
	// true /srv/app
}

func ExampleRole_String() {
	for _, r := range []stages.Role{stages.RoleLauncher, stages.RoleIntermediate, stages.RoleDaemon, stages.RoleForeground} {
		fmt.Println(r)
	}
	// Output:
	// launcher
	// intermediate
	// daemon
	// foreground
}

func ExampleConfig_LockPath() {
	c := stages.Config{Pidfile: "/run/app.pid"}
	fmt.Printf("%q\n", c.LockPath())
	c.Lockfile = "/run/app.lock"
	fmt.Printf("%q\n", c.LockPath())
	c = stages.Config{Pidfile: "/run/app.pid", NoLock: true}
	fmt.Printf("%q\n", c.LockPath())
	// Output:
	// "/run/app.pid"
	// "/run/app.lock"
	// ""
}

func ExampleConfig_DropConfigured() {
	fmt.Println((&stages.Config{}).DropConfigured(), (&stages.Config{Group: "nogroup"}).DropConfigured())
	// Output: false true
}

// A hook sees whether it runs in a generation that reports to a launcher.
func ExampleState_Detached() {
	for _, fg := range []bool{false, true} {
		rec := blivettest.NewRecorder(nil)
		_, _ = rec.Daemonize(blivet.WithForeground(fg), blivet.WithHookAfter("chdir", func(s *stages.State) error {
			fmt.Println(s.Role, s.Detached())
			return nil
		}))
	}
	// Output:
	// daemon true
	// foreground false
}

// A stage that acquires something registers its release; it runs when the
// daemon closes its Context, reports an error, or a later stage fails.
func ExampleState_OnCleanup() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithHookAfter("pidfile", func(s *stages.State) error {
		s.OnCleanup(func() error { fmt.Println("released"); return nil })
		return nil
	}))
	fmt.Println("serving")
	_ = ctx.Close()
	// Output:
	// serving
	// released
}

// Cleanups run newest first, each once; their errors are combined.
func ExampleState_RunCleanups() {
	var s stages.State
	s.OnCleanup(func() error { fmt.Println("unlock"); return nil })
	s.OnCleanup(func() error { fmt.Println("remove pidfile"); return errors.New("read-only file system") })
	fmt.Println(s.RunCleanups())
	fmt.Println(s.RunCleanups())
	// Output:
	// remove pidfile
	// unlock
	// read-only file system
	// <nil>
}

func ExampleState_PrivilegesPending() {
	s := stages.State{Config: stages.Config{User: "nobody"}}
	fmt.Println(s.PrivilegesPending())
	s.Dropped = true // what the privdrop stage sets
	fmt.Println(s.PrivilegesPending())
	// Output:
	// true
	// false
}

// A Final stage (notify, or the exec of a program) is refused while a
// configured privilege drop has not run; the pipeline applies the rule.
func ExampleRefuseBeforeDrop() {
	s := &stages.State{Config: stages.Config{User: "nobody"}}
	err := stages.RefuseBeforeDrop(s, notify.New().Name())
	fmt.Println(stages.ExitCodeOf(err))
	s.Dropped = true
	fmt.Println(stages.RefuseBeforeDrop(s, notify.New().Name()))
	// Output:
	// 70
	// <nil>
}

// A stage that replaces privdrop releases the descriptors the output and
// pidfile stages kept for the drop (State.ChownFiles) once it is done.
func ExampleState_CloseChownFiles() {
	f, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &stages.State{ChownPaths: []string{os.DevNull}, ChownFiles: []*os.File{f}}
	s.CloseChownFiles()
	fmt.Println(len(s.ChownFiles), s.ChownPaths)
	// Output: 0 [/dev/null]
}

// A generation replaced by an upgrade's successor, or a new one that has
// not yet told the previous generation it is ready, must leave the
// pidfile, the lock and socket paths alone in its cleanups.
func ExampleState_HandedOver() {
	s := &stages.State{}
	fmt.Println(s.HandedOver())
	s.Successor = 4242 // set by Context.Upgrade once the successor is ready
	fmt.Println(s.HandedOver())
	// Output:
	// false
	// true
}
