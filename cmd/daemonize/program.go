package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// defaultPath is the search path when PATH is unset, as in glibc's execvp(3).
const defaultPath = "/bin:/usr/bin"

// program is the command daemonize runs.
type program struct {
	argv []string // as given: argv[0] is what the program sees
	path string   // absolute path when argv[0] contains a slash; "" means search PATH at exec time
}

// newProgram resolves the program part of the command line. A name with a
// slash is made absolute now (it must still run after -c); a bare name is
// looked up in PATH when it is exec'd, after -E and -u applied.
func newProgram(argv []string) (program, error) {
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return program{}, usagef("program arguments must not contain NUL bytes")
		}
	}
	p := program{argv: argv}
	name := argv[0]
	if name == "" {
		return program{}, usagef("empty program name")
	}
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return program{}, usagef("program %s: %v", name, err)
		}
		p.path = abs
	}
	return p, nil
}

func noInput(format string, args ...any) error {
	return stages.Errorf("program", stages.ExitNoInput, format, args...)
}

// check verifies, before anything is forked, that a program given by path
// exists, is a regular file and is executable (66 otherwise).
func (p program) check() error {
	if p.path == "" {
		return nil // searched in PATH at exec time
	}
	st, err := os.Stat(p.path)
	switch {
	case err != nil:
		return noInput("%v", err)
	case !st.Mode().IsRegular():
		return noInput("%s is not a regular file", p.path)
	}
	if err := unix.Access(p.path, unix.X_OK); err != nil {
		return noInput("%s is not executable: %v", p.path, err)
	}
	return nil
}

// execErr maps a failed execve(2) to the exit-code table: a program not
// found or not executable (a missing script interpreter included) is 66,
// anything else 71.
func execErr(what string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES:
			return stages.Errorf("exec", stages.ExitNoInput, "%s: %w", what, err)
		}
	}
	return stages.Errorf("exec", stages.ExitOSErr, "%s: %w", what, err)
}

// execve replaces the process with path, starting it with a clean signal
// state. A file without a recognised format (ENOEXEC: a script without
// "#!") runs through /bin/sh, as execvp(3) does. It returns only on failure.
func execve(path string, argv, env []string) error {
	err := handover.Exec(path, argv, env, true)
	if errors.Is(err, syscall.ENOEXEC) {
		sh := append([]string{"/bin/sh", path}, argv[1:]...)
		err = handover.Exec("/bin/sh", sh, env, true)
	}
	return err
}

// exec runs the program in place of this process, like execvp(3): a bare
// name is searched in PATH (defaultPath when unset), skipping directories
// where it is missing or not executable. It returns only on failure.
func (p program) exec(env []string) error {
	if p.path != "" {
		err := execve(p.path, p.argv, env)
		if errors.Is(err, syscall.ENOENT) {
			if _, serr := os.Stat(p.path); serr == nil {
				return execErr(p.path+": its #! interpreter", err)
			}
		}
		return execErr(p.path, err)
	}
	name := p.argv[0]
	var denied error
	for _, cand := range p.candidates(envList(env)) {
		err := execve(cand, p.argv, env)
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			return execErr(name, err)
		}
		switch errno {
		case syscall.EACCES:
			denied = err
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE, syscall.ENODEV, syscall.ETIMEDOUT:
		default:
			return execErr(cand, err)
		}
	}
	if denied != nil {
		return execErr(name+" (in PATH)", denied)
	}
	return execErr(fmt.Sprintf("%s not found in PATH %q", name, envList(env).searchPath()), syscall.ENOENT)
}

// checkStage verifies the program before the first fork and prints the
// configuration under -v. It runs in the launcher (or the foreground
// process) only.
type checkStage struct {
	c      *cli
	stderr io.Writer
}

var _ blivet.Stage = (*checkStage)(nil)

func (*checkStage) Name() string { return "program" }

func (st *checkStage) Run(*stages.State) error {
	if st.c.verbose {
		st.c.describe(st.stderr)
	}
	return st.c.prog.check()
}

// execStage replaces the notify stage: instead of saying "ready", the
// daemon becomes the program. It runs last, after the privilege drop.
type execStage struct {
	prog   program
	notify *string // NOTIFY_SOCKET as daemonize found it; nil when unset
}

var _ blivet.Stage = (*execStage)(nil)

func (*execStage) Name() string { return "exec" }

// Run execs the program. It refuses while a configured privilege drop
// has not run. The lock stays open and locked across exec; the readiness
// pipe does not (close-on-exec), so the launcher sees end of file once the
// exec succeeded, after the "exec pending" record sent just before it.
func (st *execStage) Run(s *stages.State) error {
	if s.PrivilegesPending() {
		return stages.Errorf("exec", stages.ExitSoftware,
			"refusing to run the program before the privilege drop (user %q, group %q)", s.Config.User, s.Config.Group)
	}
	if s.LockFile != nil {
		// The program inherits the lock: it is held as long as the program
		// (or a child that inherits the fd) runs.
		if _, err := unix.FcntlInt(s.LockFile.Fd(), unix.F_SETFD, 0); err != nil {
			return stages.Errorf("exec", stages.ExitOSErr, "keeping the lock across exec: %w", os.NewSyscallError("fcntl", err))
		}
	}
	// The program is the one that notifies the service manager: it gets
	// NOTIFY_SOCKET as daemonize found it, even if a stage took it.
	switch {
	case st.notify != nil:
		os.Setenv("NOTIFY_SOCKET", *st.notify)
	case s.NotifySocket != "":
		os.Setenv("NOTIFY_SOCKET", s.NotifySocket)
	}
	if s.ListenFDs > 0 {
		// Socket activation: the fds are still at 3.., now addressed to
		// this PID, which the program keeps.
		os.Setenv("LISTEN_FDS", strconv.Itoa(s.ListenFDs))
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		if len(s.ListenNames) > 0 {
			os.Setenv("LISTEN_FDNAMES", strings.Join(s.ListenNames, ":"))
		} else {
			os.Unsetenv("LISTEN_FDNAMES")
		}
	}
	if s.Line != nil {
		if err := s.Line.ExecPending(); err != nil {
			return err
		}
	}
	return st.prog.exec(os.Environ())
}
