// Package framework is a small service framework built on blivet, to show
// how a framework shapes the daemon's startup with blivet's ordering API:
//
//   - it inserts its own stages: "load-config" before "chdir" (so a config
//     path relative to where the operator started the program still
//     works), and "health" before "notify" (so the launcher only exits 0
//     once the service answers its own health check);
//   - it registers hooks: the application's privileged Init before
//     "privdrop", and a "started" log line after "output" (the first
//     point where stderr is the daemon's own log rather than the
//     launcher's terminal);
//   - it runs the whole pipeline in Daemonize (WithAutoNotify), so an
//     application only fills in an App.
//
// The pipeline an App runs, with the generation each step runs in:
//
//	launcher:      signals, fork
//	intermediate:  setsid, fork2
//	daemon:        umask, load-config, chdir, stdio, pidfile, env, output,
//	               [hook: started], closefds, [hook: Init], privdrop, health, notify
//
// Tests run it in-process with blivettest.NewRecorder (see App.Options)
// or for real with blivettest.StartDaemon; framework_test.go does both.
package framework

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
)

// ExitConfig is the exit code for a bad configuration file (EX_CONFIG).
const ExitConfig = 78

// Config is the service's configuration: "key = value" lines, "#" comments.
type Config map[string]string

// App describes a service. Only Serve is required.
type App struct {
	// Name is used in log lines and error messages.
	Name string
	// ConfigPath is the configuration file. A relative path is taken from
	// the directory the program was started in: it is read before the
	// daemon changes to "/". Empty means no configuration.
	ConfigPath string
	// Options are blivet options of the application (pidfile, user, ...).
	Options []blivet.Option
	// Init runs in the daemon, still privileged, right before the
	// privilege drop: bind ports, open root-only files. Optional.
	Init func(cfg Config) error
	// Health is polled until it succeeds (or HealthTimeout passes) before
	// the launcher is told the service is ready. Optional.
	Health func() error
	// HealthTimeout bounds the health check; default 5s.
	HealthTimeout time.Duration
	// Serve runs the service once it is ready; its error is the daemon's
	// last word (logged; the launcher has already exited).
	Serve func(cfg Config) error

	cfg Config
}

// Stages the framework adds, by name.
const (
	StageLoadConfig = "load-config"
	StageHealth     = "health"
)

// BlivetOptions returns the options the framework runs blivet with: the
// application's own options, then the framework's stages and hooks.
func (a *App) BlivetOptions() []blivet.Option {
	opts := append([]blivet.Option{}, a.Options...)
	return append(opts,
		blivet.WithAutoNotify(),
		blivet.WithStageBefore("chdir", &loadConfig{a}),
		blivet.WithStageBefore("notify", &health{a}),
		blivet.WithHookAfter("output", func(s *blivet.State) error {
			if s.Config.Stderr == "" {
				return nil // stderr is /dev/null
			}
			log.Printf("%s: pid %d starting as the %v", a.name(), os.Getpid(), s.Role)
			return nil
		}),
		blivet.WithHookBefore("privdrop", func(s *blivet.State) error {
			if a.Init == nil {
				return nil
			}
			return a.Init(a.cfg)
		}),
	)
}

// Start daemonizes the App: it returns in the daemon once the launcher
// has been told the service is ready (the launcher exits 0) with the
// daemon's Context, or the configuration error (64, 77) before any fork.
// before are options placed ahead of the framework's (blivettest's
// Recorder.Options in tests).
func (a *App) Start(before ...blivet.Option) (*blivet.Context, error) {
	return blivet.Daemonize(append(before, a.BlivetOptions()...)...)
}

// Main is the whole life of a service: Start, then Serve. It does not
// return.
func (a *App) Main() {
	ctx, err := a.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", a.name(), err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	err = a.Serve(a.cfg)
	ctx.Close()
	if err != nil {
		log.Printf("%s: %v", a.name(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Config returns the configuration the load-config stage read.
func (a *App) Config() Config { return a.cfg }

func (a *App) name() string {
	if a.Name == "" {
		return filepath.Base(os.Args[0])
	}
	return a.Name
}

// loadConfig reads App.ConfigPath in the daemon before chdir.
type loadConfig struct{ a *App }

func (*loadConfig) Name() string { return StageLoadConfig }

func (l *loadConfig) Run(s *stages.State) error {
	l.a.cfg = Config{}
	if l.a.ConfigPath == "" {
		return nil
	}
	f, err := os.Open(l.a.ConfigPath)
	if err != nil {
		return stages.Wrap(StageLoadConfig, ExitConfig, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return stages.Errorf(StageLoadConfig, ExitConfig, "%s:%d: want key = value, got %q", l.a.ConfigPath, n, line)
		}
		l.a.cfg[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return stages.Wrap(StageLoadConfig, ExitConfig, sc.Err())
}

// health polls App.Health before notify.
type health struct{ a *App }

func (*health) Name() string { return StageHealth }

func (h *health) Run(s *stages.State) error {
	if h.a.Health == nil {
		return nil
	}
	timeout := h.a.HealthTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		err := h.a.Health()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return stages.Errorf(StageHealth, stages.ExitSoftware, "not healthy after %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ErrUnhealthy is a convenient error for Health functions.
var ErrUnhealthy = errors.New("unhealthy")
