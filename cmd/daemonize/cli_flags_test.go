package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
)

// TestInterspersedOff: the program's own flags are never daemonize's,
// even ones daemonize knows.
func TestInterspersedOff(t *testing.T) {
	c, err := parseArgs([]string{"-p", "/x.pid", "/bin/prog", "-v", "--stop", "-p", "/y"})
	if err != nil {
		t.Fatal(err)
	}
	if c.verbose || c.stop || c.pidfile != "/x.pid" || !slices.Equal(c.prog.Argv, []string{"/bin/prog", "-v", "--stop", "-p", "/y"}) {
		t.Errorf("verbose %v stop %v pidfile %q argv %q", c.verbose, c.stop, c.pidfile, c.prog.Argv)
	}
}

func TestReadinessFlags(t *testing.T) {
	c, err := parseArgs([]string{"--notify", "/bin/true"})
	if err != nil || !c.notify {
		t.Errorf("--notify: %v %v", c, err)
	}
	c, err = parseArgs([]string{"--ready-fd", "5", "/bin/true"})
	if err != nil || c.readyFD != 5 {
		t.Errorf("--ready-fd 5: %v", err)
	}
	c, err = parseArgs([]string{"--ready-fd=010", "/bin/true"})
	if err != nil || c.readyFD != 10 {
		t.Errorf("--ready-fd=010 (decimal): %v %v", c, err)
	}
	c, err = parseArgs([]string{"--ready-after=1.5s", "--timeout", "10s", "/bin/true"})
	if err != nil || c.readyAfter != 1500*time.Millisecond {
		t.Errorf("--ready-after: %v", err)
	}
	c, err = parseArgs([]string{"--notify=false", "--ready-fd", "3", "/bin/true"})
	if err != nil || c.notify || c.readyFD != 3 {
		t.Errorf("--notify=false --ready-fd 3: %v", err)
	}
	if c, _ := parseArgs([]string{"/bin/true"}); c.notify || c.readyFD != 0 || c.readyAfter != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestCapFlag(t *testing.T) {
	c, err := parseArgs([]string{"--cap", "net_bind_service", "--cap=net_raw,sys_time", "-u", "nobody", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.caps, []string{"net_bind_service", "net_raw", "sys_time"}) {
		t.Errorf("caps %q", c.caps)
	}
	if !slices.ContainsFunc(c.options(), func(o blivet.Option) bool { return strings.HasPrefix(fmt.Sprint(o), "WithAmbientCaps(") }) {
		t.Errorf("options %v: no WithAmbientCaps", c.options())
	}
}

func TestControlParse(t *testing.T) {
	c, err := parseArgs([]string{"--stop", "-p", "/run/x.pid"})
	if err != nil || !c.isControl() || !c.stop || c.timeout != defaultStopTimeout || c.signal != 0 {
		t.Fatalf("--stop: %+v %v", c, err)
	}
	c, err = parseArgs([]string{"--stop", "--timeout", "0", "-l", "/run/x.lock"})
	if err != nil || c.timeout != 0 || c.lockfile != "/run/x.lock" {
		t.Errorf("--stop --timeout 0: %+v %v", c, err)
	}
	c, err = parseArgs([]string{"--status", "-p", "/x", "-l", "/x"})
	if err != nil || !c.status || c.lockfile != "" || c.pidfile != "/x" {
		t.Errorf("--status -p /x -l /x: %+v %v", c, err)
	}
	for in, want := range map[string]syscall.Signal{
		"HUP": syscall.SIGHUP, "SIGHUP": syscall.SIGHUP, "hup": syscall.SIGHUP, "sigusr1": syscall.SIGUSR1,
		"15": syscall.SIGTERM, "KILL": syscall.SIGKILL,
	} {
		c, err := parseArgs([]string{"--signal", in, "-p", "/x"})
		if err != nil || c.signal != want || !c.isControl() {
			t.Errorf("--signal %s: %v %v, want %v", in, c, err, want)
		}
	}
	if c, err := parseArgs([]string{"--stop", "--signal", "INT", "-p", "/x"}); err != nil || c.signal != syscall.SIGINT || !c.stop {
		t.Errorf("--stop --signal INT: %v", err)
	}
	if c, err := parseArgs([]string{"--help", "--stop"}); err != nil || c.isControl() {
		t.Errorf("--help wins: %v", err)
	}
}

func TestNewUsageErrors(t *testing.T) {
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDS", "2")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--notify", "--ready-fd", "3", "/bin/true"}, "mutually exclusive"},
		{[]string{"--ready-fd", "7", "--ready-after", "1s", "/bin/true"}, "mutually exclusive"},
		{[]string{"--notify", "--ready-after", "1s", "/bin/true"}, "mutually exclusive"},
		{[]string{"--ready-fd", "2", "/bin/true"}, "not 3 or more"},
		{[]string{"--ready-fd", "0", "/bin/true"}, "not 3 or more"},
		{[]string{"--ready-fd", "-1", "/bin/true"}, "not 3 or more"},
		{[]string{"--ready-fd", "x", "/bin/true"}, `invalid argument "x" for --ready-fd: not a decimal number`},
		{[]string{"--ready-fd", "0x10", "/bin/true"}, "not a decimal number"},
		{[]string{"--ready-fd", "99999999999999999999", "/bin/true"}, "out of range"},
		{[]string{"--ready-fd", "4", "/bin/true"}, "socket-activation"},
		{[]string{"--ready-fd", "999999999", "/bin/true"}, "open-file limit"},
		{[]string{"--ready-after", "0", "/bin/true"}, "positive"},
		{[]string{"--ready-after", "-1s", "/bin/true"}, "positive"},
		{[]string{"--ready-after", "2s", "--timeout", "1s", "/bin/true"}, "shorter than --timeout"},
		{[]string{"-f", "--notify", "/bin/true"}, "foreground"},
		{[]string{"--cap", "", "/bin/true"}, "--cap"},
		{[]string{"--status"}, "needs -p/--pidfile or -l/--lock"},
		{[]string{"--stop", "-p", "/x", "/bin/true"}, "takes no program"},
		{[]string{"--status", "--stop", "-p", "/x"}, "conflicts"},
		{[]string{"--status", "--signal", "HUP", "-p", "/x"}, "conflicts"},
		{[]string{"--status", "-p", "/x", "-o", "/y"}, "does not take -o/--stdout"},
		{[]string{"--status", "-a", "-p", "/x", "--cap", "x", "-a"}, "does not take -a/--append, --cap"}, // command-line order, once each
		{[]string{"--signal", "HUP", "-p", "/x", "--timeout", "1s"}, "does not take --timeout"},
		{[]string{"--stop", "-p", "/x", "--no-lock"}, "does not take --no-lock"},
		{[]string{"--stop", "-p", "/x", "--notify"}, "does not take --notify"},
		{[]string{"--stop", "-p", "/x", "--timeout", "-1s"}, "negative"},
		{[]string{"--stop", "-p", "rel.pid"}, "absolute"},
		{[]string{"--signal", "NOPE", "-p", "/x"}, "not a signal"},
		{[]string{"--signal", "0", "-p", "/x"}, "not a signal"},
		{[]string{"--signal", "-p", "/x"}, "not a signal"},
		{[]string{"--signal"}, "needs an argument"},
		{[]string{"-a=false", "/bin/true"}, "unknown option -= (in -a=false)"},
		{[]string{"--no-lock", "-p", "/x", "-l", "/x", "/bin/true"}, "conflicts"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.args)
		var ue *usageError
		if !errors.As(err, &ue) || blivet.ExitCodeOf(err) != blivet.ExitUsage {
			t.Errorf("%q: got %v, want a usage error (64)", tt.args, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %q does not mention %q", tt.args, err, tt.want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: setting("vcs.revision", "abc")}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: setting(
			"vcs", "git", "vcs.revision", "84c110e0123", "vcs.time", "2026-12-02T03:00:00Z", "vcs.modified", "false")},
			"devel git 84c110e0123 2026-12-02T03:00:00Z"},
		{debug.BuildInfo{Settings: setting("vcs", "git", "vcs.revision", "84c110e", "vcs.time", "2026-12-02T03:00:00Z", "vcs.modified", "true")},
			"devel git 84c110e 2026-12-02T03:00:00Z+dirty"},
	}
	for _, tt := range tests {
		if got := versionOf(&tt.bi); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.bi, got, tt.want)
		}
	}
}

// TestOptionForms: the getopt(3) forms of every kind of option.
func TestOptionForms(t *testing.T) {
	c, err := parseArgs([]string{"-fv", "-p/a.pid", "-l", "/b.lock", "--chdir=/tmp", "--stdout", "/o", "-aE", "A=1,2",
		"--env=B=3", "--cap=net_raw,sys_time", "--timeout=1s", "--append=false", "--", "-prog", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.foreground || !c.verbose || c.pidfile != "/a.pid" || c.lockfile != "/b.lock" || c.dir != "/tmp" || c.stdout != "/o" ||
		c.appendOut || !slices.Equal(c.env, []string{"A=1,2", "B=3"}) || !slices.Equal(c.caps, []string{"net_raw", "sys_time"}) ||
		c.timeout != time.Second || !slices.Equal(c.prog.Argv, []string{"-prog", "-x"}) {
		t.Errorf("parsed %+v, argv %q", c, c.prog.Argv)
	}
	// An option's argument is taken whole, even when it looks like an option.
	if c, err := parseArgs([]string{"-p", "--", "/bin/true"}); err == nil || c != nil {
		t.Errorf("-p -- /bin/true: %v (the pidfile is \"--\", which is not absolute)", err)
	}
	if c, err := parseArgs([]string{"-u", "-v", "/bin/true"}); err != nil || c.user != "-v" || c.verbose {
		t.Errorf("-u -v: user %q verbose %v, %v", c.user, c.verbose, err)
	}
	for _, on := range []string{"true", "T", "on", "1", "yes"} {
		if c, err := parseArgs([]string{"--verbose=" + on, "/bin/true"}); err != nil || !c.verbose {
			t.Errorf("--verbose=%s: %v", on, err)
		}
	}
	if _, err := parseArgs([]string{"--timeout", "10", "/bin/true"}); err == nil || !strings.Contains(err.Error(), `invalid argument "10" for --timeout: not a duration`) {
		t.Errorf("--timeout 10: %v", err)
	}
	if _, err := parseArgs([]string{"-é", "/bin/true"}); err == nil || !strings.Contains(err.Error(), "unknown option -é") {
		t.Errorf("-é: %v", err)
	}
}
