package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/blivet-go/blivet"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *cli)
	}{
		{"combined short flags", []string{"-av", "-p/run/x.pid", "/bin/true"}, func(t *testing.T, c *cli) {
			if !c.appendOut || !c.verbose || c.pidfile != "/run/x.pid" {
				t.Errorf("append %v verbose %v pidfile %q", c.appendOut, c.verbose, c.pidfile)
			}
		}},
		{"cluster ending in a value flag", []string{"-avp", "/run/x.pid", "/bin/true"}, func(t *testing.T, c *cli) {
			if !c.appendOut || !c.verbose || c.pidfile != "/run/x.pid" {
				t.Errorf("append %v verbose %v pidfile %q", c.appendOut, c.verbose, c.pidfile)
			}
		}},
		{"-p=/x reads as /x (getopt would read =/x)", []string{"-p=/x.pid", "/bin/true"}, func(t *testing.T, c *cli) {
			if c.pidfile != "/x.pid" {
				t.Errorf("pidfile %q", c.pidfile)
			}
		}},
		{"long options", []string{"--pidfile=/p", "--lock", "/l", "--chdir=/tmp", "--umask", "077", "--env=A=1", "--foreground", "/bin/true"}, func(t *testing.T, c *cli) {
			if c.pidfile != "/p" || c.lockfile != "/l" || c.dir != "/tmp" || c.umask != 0o77 || !c.foreground || !slices.Equal(c.env, []string{"A=1"}) {
				t.Errorf("%+v", c)
			}
		}},
		{"options stop at the program", []string{"-v", "/bin/echo", "-p", "--help", "--", "x"}, func(t *testing.T, c *cli) {
			if c.pidfile != "" || c.help || !slices.Equal(c.prog.Argv, []string{"/bin/echo", "-p", "--help", "--", "x"}) {
				t.Errorf("pidfile %q help %v argv %q", c.pidfile, c.help, c.prog.Argv)
			}
		}},
		{"-- ends the options", []string{"-v", "--", "-weird", "-v"}, func(t *testing.T, c *cli) {
			if !slices.Equal(c.prog.Argv, []string{"-weird", "-v"}) || c.prog.Path != "" {
				t.Errorf("argv %q path %q", c.prog.Argv, c.prog.Path)
			}
		}},
		{"bare name searched later", []string{"sleep", "1"}, func(t *testing.T, c *cli) {
			if c.prog.Path != "" || c.prog.Argv[0] != "sleep" {
				t.Errorf("%+v", c.prog)
			}
		}},
		{"relative path made absolute, argv[0] kept", []string{"./bin/x"}, func(t *testing.T, c *cli) {
			if !strings.HasPrefix(c.prog.Path, "/") || !strings.HasSuffix(c.prog.Path, "/bin/x") || c.prog.Argv[0] != "./bin/x" {
				t.Errorf("%+v", c.prog)
			}
		}},
		{"repeatable env, bare NAME, commas kept", []string{"-E", "A=1,2", "-E", "B", "-EC=", "/bin/true"}, func(t *testing.T, c *cli) {
			if !slices.Equal(c.env, []string{"A=1,2", "B", "C="}) {
				t.Errorf("env %q", c.env)
			}
		}},
		{"umask default", []string{"/bin/true"}, func(t *testing.T, c *cli) {
			if c.umask != -1 || c.dir != "/" {
				t.Errorf("umask %o dir %q", c.umask, c.dir)
			}
		}},
		{"umask 0", []string{"-m", "0", "/bin/true"}, func(t *testing.T, c *cli) {
			if c.umask != 0 {
				t.Errorf("umask %o", c.umask)
			}
		}},
		{"no-lock with pidfile", []string{"--no-lock", "-p", "/p", "/bin/true"}, func(t *testing.T, c *cli) {
			if !c.noLock {
				t.Error("noLock not set")
			}
		}},
		{"timeout", []string{"--timeout", "1.5s", "/bin/true"}, func(t *testing.T, c *cli) {
			if c.timeout.Seconds() != 1.5 {
				t.Errorf("timeout %v", c.timeout)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestDeriveStderr(t *testing.T) {
	tests := []struct{ stdout, stderr string }{
		{"/var/log/app.stdout", "/var/log/app.stderr"},
		{"/var/log/app.out", "/var/log/app.err"},
		{"/var/log/app.log", "/var/log/app.log"},
		{"/var/log/app.STDOUT", "/var/log/app.STDOUT"}, // case-sensitive
		{"/var/log/app.out.1", "/var/log/app.out.1"},   // whole path
		{"/var/log/stdout", "/var/log/stdout"},
		{"/var/log/.out", "/var/log/.err"},
	}
	for _, tt := range tests {
		c, err := parseArgs([]string{"-o", tt.stdout, "/bin/true"})
		if err != nil {
			t.Fatal(err)
		}
		if c.stderr != tt.stderr || !c.stderrDerived {
			t.Errorf("-o %s: stderr %q (derived %v), want %q", tt.stdout, c.stderr, c.stderrDerived, tt.stderr)
		}
	}
	c, err := parseArgs([]string{"-o", "/x.out", "-e", "/y", "/bin/true"})
	if err != nil || c.stderr != "/y" || c.stderrDerived {
		t.Errorf("-e given: stderr %q derived %v err %v", c.stderr, c.stderrDerived, err)
	}
}

func TestParseArgsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no program"},
		{[]string{"-v"}, "no program"},
		{[]string{"-x", "/bin/true"}, "unknown shorthand flag"},
		{[]string{"--bogus", "/bin/true"}, "unknown flag"},
		{[]string{"-test.v", "/bin/true"}, "unknown shorthand flag: 't'"},
		{[]string{"-atest.v", "/bin/true"}, "unknown shorthand flag: 't'"},
		{[]string{"-v", "-p", "-test.pid", "/bin/true"}, "absolute"}, // a value, not a flag
		{[]string{"-p-test.pid", "/bin/true"}, "absolute"},
		{[]string{"/bin/true", "-p"}, ""}, // not an error: -p belongs to the program
		{[]string{"/bin/true", "-test.v"}, ""},
		{[]string{"--pidfile", "/p", "/bin/true", "-test.v"}, ""},
		{[]string{"--", "-test.v"}, ""},
		{[]string{"-p"}, "needs an argument"},
		{[]string{"-p", "rel.pid", "/bin/true"}, "absolute"},
		{[]string{"-l", "rel", "/bin/true"}, "absolute"},
		{[]string{"-o", "out.log", "/bin/true"}, "absolute"},
		{[]string{"-e", "err.log", "/bin/true"}, "absolute"},
		{[]string{"-c", "tmp", "/bin/true"}, "absolute"},
		{[]string{"-p", "", "/bin/true"}, "empty path"},
		{[]string{"-c", "/nonexistent-dir", "/bin/true"}, "no such file"},
		{[]string{"-c", "/etc/passwd", "/bin/true"}, "not a directory"},
		{[]string{"-m", "8", "/bin/true"}, "octal"},
		{[]string{"-m", "1000", "/bin/true"}, "octal"},
		{[]string{"-m", "-1", "/bin/true"}, "octal"},
		{[]string{"-m", "0o22", "/bin/true"}, "octal"},
		{[]string{"--no-lock", "/bin/true"}, "needs a pidfile"},
		{[]string{"--no-lock", "-p", "/p", "-l", "/l", "/bin/true"}, "conflicts"},
		{[]string{"-p", "/x/a.err", "-o", "/x/a.out", "/bin/true"}, "derived"},
		{[]string{"-p", "/x/a.log", "-o", "/x/a.log", "/bin/true"}, "-o/--stdout"},
		{[]string{"-l", "/x/a.log", "-e", "/x/a.log", "/bin/true"}, "lockfile"},
		{[]string{"-E", "=x", "/bin/true"}, "NAME=VALUE"},
		{[]string{"-u", "", "/bin/true"}, "name or id"},
		{[]string{"--timeout", "-1s", "/bin/true"}, "negative"},
		{[]string{"--timeout", "soon", "/bin/true"}, "invalid argument"},
		{[]string{""}, "empty program"},
		{[]string{"/bin/echo", "a\x00b"}, "NUL"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.args)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.args, err)
			}
			continue
		}
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

func TestHelpAndVersionParse(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-v", "--help", "/bin/true"}} {
		c, err := parseArgs(args)
		if err != nil || !c.help {
			t.Errorf("%q: help %v err %v", args, c != nil && c.help, err)
		}
	}
	if c, err := parseArgs([]string{"--version"}); err != nil || !c.version {
		t.Errorf("--version: %v", err)
	}
}
