package framework_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/examples/framework"
	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) { blivettest.Main(m) }

// writeConfig writes a config file in a fresh directory and returns the
// directory and the file's name relative to it.
func writeConfig(t *testing.T, content string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, "app.conf"
}

func TestStageOrderInProcess(t *testing.T) {
	t.Parallel()
	dir, _ := writeConfig(t, "# comment\ngreeting = hello\n")
	var inited framework.Config
	healthChecks := 0
	app := &framework.App{
		Name:       "demo",
		ConfigPath: filepath.Join(dir, "app.conf"),
		Options:    []blivet.Option{blivet.WithPidfile(filepath.Join(dir, "demo.pid"))},
		Init:       func(cfg framework.Config) error { inited = cfg; return nil },
		Health: func() error {
			if healthChecks++; healthChecks < 3 {
				return framework.ErrUnhealthy
			}
			return nil
		},
	}
	rec := blivettest.NewRecorder(t)
	var ctx *blivet.Context
	err := rec.Call(func() {
		var err error
		ctx, err = app.Start(rec.Options()...)
		if err != nil {
			t.Error(err)
		}
	})
	if err != nil || ctx == nil {
		t.Fatalf("Start: %v", err)
	}
	want := []string{"signals", "fork", "setsid", "fork2", "umask", "load-config", "chdir", "stdio", "pidfile",
		"env", "output", "closefds", "privdrop", "health", "notify"}
	if diff := cmp.Diff(want, rec.Stages()); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	hooks := rec.Hooks()
	if len(hooks) != 2 || !strings.HasPrefix(hooks[0], "hook after output (framework.go:") || !strings.HasPrefix(hooks[1], "hook before privdrop (framework.go:") {
		t.Errorf("hooks %q", hooks)
	}
	if inited["greeting"] != "hello" || app.Config()["greeting"] != "hello" {
		t.Errorf("Init got %v", inited)
	}
	if healthChecks != 3 || !rec.Launcher().Ready {
		t.Errorf("health checked %d times, launcher %+v", healthChecks, rec.Launcher())
	}
	for _, s := range rec.Steps() {
		if s.Name == "load-config" && s.Role != blivet.RoleDaemon {
			t.Errorf("load-config ran in the %v", s.Role)
		}
	}
}

func TestFailuresReachTheLauncher(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		app   framework.App
		code  int
		stage string
	}{
		"missing config": {framework.App{ConfigPath: "/nonexistent/app.conf"}, framework.ExitConfig, "load-config"},
		"bad config":     {framework.App{ConfigPath: "BAD"}, framework.ExitConfig, "load-config"},
		"init fails": {framework.App{Init: func(framework.Config) error {
			return blivet.WrapError("listen", blivet.ExitOSErr, errors.New("address in use"))
		}}, 71, "listen"},
		"unhealthy": {framework.App{Health: func() error { return framework.ErrUnhealthy }, HealthTimeout: 1}, 70, "health"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := c.app
			if app.ConfigPath == "BAD" {
				dir, _ := writeConfig(t, "no equals sign\n")
				app.ConfigPath = filepath.Join(dir, "app.conf")
			}
			rec := blivettest.NewRecorder(t)
			err := rec.Call(func() { _, _ = app.Start(rec.Options()...) })
			rep := rec.Launcher()
			if blivet.ExitCodeOf(err) != c.code || rep.ExitCode != c.code || rep.Err == nil || rep.Err.Stage != c.stage {
				t.Errorf("err %v, launcher %+v; want %d from %s", err, rep, c.code, c.stage)
			}
			if rec.Ran("notify") {
				t.Error("notify ran after a failure")
			}
		})
	}
}

func init() {
	// The real program: the framework app, with its config file relative
	// to the directory it was started in.
	blivettest.Register("framework-app", func(h *blivettest.H) {
		app := &framework.App{
			Name:       "demo",
			ConfigPath: "app.conf",
			Options: []blivet.Option{
				blivet.WithPidfile(h.Pidfile()), blivet.WithCleanupOnSignal(),
				blivet.WithStderr(filepath.Join(h.Dir, "demo.log")),
			},
		}
		var ln net.Listener
		app.Init = func(framework.Config) error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		}
		app.Health = func() error {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err == nil {
				c.Close()
			}
			return err
		}
		app.Serve = func(cfg framework.Config) error {
			cwd, _ := os.Getwd()
			h.Report("served", map[string]string{"greeting": cfg["greeting"], "cwd": cwd, "addr": ln.Addr().String()})
			for {
				c, err := ln.Accept()
				if err != nil {
					return err
				}
				_, _ = c.Write([]byte(cfg["greeting"] + "\n"))
				c.Close()
			}
		}
		app.Main()
	})
}

func TestRealDaemon(t *testing.T) {
	dir, _ := writeConfig(t, "greeting = hi from the daemon\n")
	d := blivettest.StartDaemon(t, "framework-app", blivettest.WithDir(dir),
		blivettest.WithCmd(func(c *exec.Cmd) { c.Dir = dir }))
	var served map[string]string
	d.Await("served", &served)
	if served["greeting"] != "hi from the daemon" || served["cwd"] != "/" {
		t.Errorf("served %v: the relative config was not read before chdir", served)
	}
	c, err := net.Dial("tcp", served["addr"])
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "hi from the daemon\n" {
		t.Errorf("got %q", buf[:n])
	}
	logData, _ := os.ReadFile(filepath.Join(dir, "demo.log"))
	if !strings.Contains(string(logData), "demo: pid ") || !strings.Contains(string(logData), "starting as the daemon") {
		t.Errorf("log %q", logData)
	}
	d.Stop()
	if _, err := os.Stat(d.Pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile after stop: %v", err)
	}
}
