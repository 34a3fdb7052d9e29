// Package systemd holds only tests: they check that the units and init
// scripts shipped in this directory run only what the README builds or
// what their comments name as a placeholder, that their command lines
// parse, and that systemd-analyze verify accepts every unit.
//
// Running the units under a real systemd as PID 1 is the manual check in
// README.md ("Checking the units under a real systemd").
package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// placeholder is the program the daemonize-* units wrap: it stands for the
// user's own program, and every file that uses it must say so.
const placeholder = "/usr/local/bin/myprog"

// placeholderNote is what a unit's comment and the README must say.
const placeholderNote = placeholder + " --serve is a placeholder"

// systemTools are the system binaries the units may run, with the Debian
// package that ships them.
var systemTools = map[string]string{"/bin/kill": "procps"}

// scripts are the shipped init scripts.
var scripts = []string{"openrc-hello", "sysv-hello"}

// unitFiles returns the shipped unit files, sorted.
func unitFiles(t *testing.T) []string {
	t.Helper()
	var units []string
	for _, pat := range []string{"*.service", "*.socket"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, m...)
	}
	sort.Strings(units)
	if len(units) < 6 {
		t.Fatalf("found only %d units (%v): run the test in examples/systemd", len(units), units)
	}
	return units
}

// readmeBuilds returns the binaries README.md builds: install path ->
// package, from its "go build -o PATH PACKAGE" lines.
func readmeBuilds(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	builds := map[string]string{}
	re := regexp.MustCompile(`(?m)^\s+go build -o (/\S+) (\./\S+)\s*$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		builds[m[1]] = m[2]
	}
	if len(builds) == 0 {
		t.Fatal(`README.md has no "go build -o PATH ./PACKAGE" line`)
	}
	return builds
}

// command is one program a unit runs, with its arguments.
type command struct {
	unit, key string
	argv      []string
}

// unitCommands returns the commands of every Exec*= line of unit; for a
// daemonize command line, the program after "--" is a command too.
func unitCommands(t *testing.T, unit string) []command {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []command
	for _, line := range strings.Split(string(b), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(key, "Exec") {
			continue
		}
		argv := strings.Fields(value)
		if len(argv) == 0 {
			t.Errorf("%s: empty %s=", unit, key)
			continue
		}
		argv[0] = strings.TrimLeft(argv[0], "@-:+!|")
		cmds = append(cmds, command{unit, key, argv})
		if filepath.Base(argv[0]) != "daemonize" {
			continue
		}
		for i, a := range argv {
			if a == "--" && i+1 < len(argv) {
				cmds = append(cmds, command{unit, key + " (program)", argv[i+1:]})
				break
			}
		}
	}
	return cmds
}

// checkPath says why path may not be run by a shipped file whose text is
// text, or returns "" when it may: README.md builds it, it is the
// placeholder and text says so, or it is a known system tool.
func checkPath(path, text string, builds map[string]string) string {
	switch {
	case builds[path] != "":
		return ""
	case path == placeholder:
		if !mentions(text, placeholderNote) {
			return "the placeholder " + placeholder + ` without the comment "` + placeholderNote + `"`
		}
		return ""
	case systemTools[path] != "":
		return ""
	}
	return path + " is neither built by README.md, nor the documented placeholder, nor a known system tool"
}

// mentions reports whether text says phrase, across line breaks, comment
// markers and Markdown code quotes.
func mentions(text, phrase string) bool {
	text = strings.NewReplacer("`", "", "\n#", "\n").Replace(text)
	return strings.Contains(strings.Join(strings.Fields(text), " "), phrase)
}

func TestCheckPathRejects(t *testing.T) {
	builds := map[string]string{"/usr/local/bin/daemonize": "./cmd/daemonize"}
	for _, c := range []struct{ path, text string }{
		{"/usr/local/bin/nonesuch", ""},
		{placeholder, "# runs " + placeholder},
		{"/usr/bin/kill", ""},
	} {
		if checkPath(c.path, c.text, builds) == "" {
			t.Errorf("checkPath(%q, %q) accepted it", c.path, c.text)
		}
	}
	if why := checkPath(placeholder, "# "+placeholderNote+": put yours there", builds); why != "" {
		t.Errorf("documented placeholder rejected: %s", why)
	}
}

// TestUnitPaths: every command a unit runs (the program daemonize wraps
// included), and every /usr/local/bin path a shipped file names, is built
// by README.md or is the placeholder its comment documents.
func TestUnitPaths(t *testing.T) {
	builds := readmeBuilds(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !mentions(string(readme), placeholderNote) {
		t.Errorf("README.md does not say %q", placeholderNote)
	}
	for _, unit := range unitFiles(t) {
		text, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range unitCommands(t, unit) {
			if why := checkPath(c.argv[0], string(text), builds); why != "" {
				t.Errorf("%s %s: %s", c.unit, c.key, why)
			}
		}
	}
	for _, f := range append(unitFiles(t), append(scripts, "hello/main.go")...) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range regexp.MustCompile(`/usr/local/bin/[\w.-]+`).FindAllString(string(text), -1) {
			if why := checkPath(p, string(text), builds); why != "" {
				t.Errorf("%s: %s", f, why)
			}
		}
	}
	for path, pkg := range systemTools {
		if _, err := os.Stat(path); err != nil && runtime.GOOS == "linux" {
			t.Errorf("system tool %s (Debian package %s): %v", path, pkg, err)
		}
	}
}

// TestScriptsParse: the init scripts are valid sh, nspawn-check valid bash.
func TestScriptsParse(t *testing.T) {
	type script struct{ shell, file string }
	checks := []script{{"bash", "nspawn-check"}}
	for _, s := range scripts {
		checks = append(checks, script{"sh", s})
	}
	for _, c := range checks {
		shell, err := exec.LookPath(c.shell)
		if err != nil {
			t.Logf("no %s in PATH: %s is not checked", c.shell, c.file)
			continue
		}
		if out, err := exec.Command(shell, "-n", c.file).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", c.shell, c.file, err, out)
		}
	}
}

// buildREADME builds every binary README.md builds, as README.md builds
// it, into dir; it returns install path -> built binary.
func buildREADME(t *testing.T, dir string) map[string]string {
	t.Helper()
	gotool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gotool); err != nil {
		if gotool, err = exec.LookPath("go"); err != nil {
			t.Skip("no go tool: cannot build the README's binaries")
		}
	}
	built := map[string]string{}
	for path, pkg := range readmeBuilds(t) {
		out := filepath.Join(dir, filepath.Base(path))
		cmd := exec.Command(gotool, "build", "-o", out, pkg)
		cmd.Dir = filepath.Join("..", "..") // README.md's commands run at the repository root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build -o %s %s (README.md's line): %v\n%s", path, pkg, err, b)
		}
		built[path] = out
	}
	return built
}

// TestUnits builds what README.md builds, checks that every command line of
// the units parses (daemonize's options, the hello flags), and runs
// systemd-analyze verify on every unit with the README's binaries
// installed.
func TestUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the README's binaries")
	}
	dir := t.TempDir()
	built := buildREADME(t, filepath.Join(dir, "bin"))
	units := unitFiles(t)

	t.Run("command lines parse", func(t *testing.T) {
		for _, unit := range units {
			for _, c := range unitCommands(t, unit) {
				bin := built[c.argv[0]]
				if bin == "" {
					continue // the placeholder, a system tool
				}
				// Options only, then a help request: daemonize stops at "--"
				// and the flag package at the first non-flag, so what
				// precedes them must parse for help to be reached.
				args := c.argv[1:]
				if i := indexOf(args, "--"); i >= 0 {
					args = args[:i]
				}
				if filepath.Base(c.argv[0]) == "daemonize" {
					args = append(args[:len(args):len(args)], "--help")
				} else {
					args = append(args[:len(args):len(args)], "-h")
				}
				cmd := exec.Command(bin, args...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Errorf("%s %s: %s %s: %v\n%s", c.unit, c.key, c.argv[0], strings.Join(args, " "), err, out.Bytes())
				}
			}
		}
	})

	// The example prints every message under one name, the one the
	// library uses: the base name of its executable.
	t.Run("hello: one program name", func(t *testing.T) {
		hello := built["/usr/local/bin/blivet-hello"]
		if hello == "" {
			t.Fatal("README.md does not build /usr/local/bin/blivet-hello")
		}
		want := filepath.Base(hello) + ": "
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"-pidfile", "relative.pid"}, 64},                         // a configuration error
			{[]string{"-foreground", "-addr", "256.0.0.1:1"}, 71},              // the program's own error
			{[]string{"-pidfile", dir + "/h.pid", "-addr", "256.0.0.1:1"}, 71}, // the daemon's error, told by the launcher
		} {
			cmd := exec.Command(hello, c.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != c.code {
				t.Errorf("blivet-hello %v: %v, want exit %d", c.args, err, c.code)
			}
			checkNames(t, c.args, stderr.String(), want)
		}
		// A log message: the greeting file is missing, the daemon goes on.
		args := []string{"-foreground", "-addr", "127.0.0.1:0", "-greeting", dir + "/missing"}
		cmd := exec.Command(hello, args...)
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make(chan string, 1)
		go func() {
			b, _ := bufio.NewReader(pipe).ReadString('\n')
			line <- b
		}()
		select {
		case l := <-line:
			checkNames(t, args, l, want)
		case <-time.After(20 * time.Second):
			t.Errorf("blivet-hello %v: no message about the greeting within 20s", args)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not in PATH (Debian package systemd): the units are not verified")
		}
		// The units as shipped, but with the README's binaries at their
		// built paths: verify checks that each ExecStart= is executable.
		udir := filepath.Join(dir, "units")
		if err := os.Mkdir(udir, 0o755); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, unit := range units {
			b, err := os.ReadFile(unit)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			for path, bin := range built {
				text = regexp.MustCompile(regexp.QuoteMeta(path)+`(\s)`).ReplaceAllString(text, bin+"$1")
			}
			p := filepath.Join(udir, unit)
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		// verify exits 0 on unknown keys and bad values ("..., ignoring"):
		// any line about these units is a failure.
		for _, line := range strings.Split(string(out), "\n") {
			for _, unit := range units {
				if strings.Contains(line, unit) || strings.Contains(line, udir) {
					t.Errorf("systemd-analyze verify: %s", line)
					break
				}
			}
		}
		t.Logf("systemd-analyze verify: %d units, output %q", len(paths), out)
	})
}

// checkNames fails unless every line of out starts with want (and there is
// one).
func checkNames(t *testing.T, args []string, out, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		t.Errorf("blivet-hello %v: no message", args)
		return
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, want) {
			t.Errorf("blivet-hello %v: message %q does not start with %q", args, l, want)
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
