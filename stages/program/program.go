// Package program provides the stages that make the daemon another
// program: what the daemonize command runs, and what a Go program gets
// with blivet.WithProgram.
//
// Two stages share one *Program:
//
//   - the check stage ("program"), before the first fork, in the launcher:
//     a program given by path must exist and be executable (66 otherwise,
//     before anything is forked); and it prepares the launcher's wait for
//     the program's own readiness (see Readiness);
//   - the exec stage ("exec"), a stages.Final stage that takes the place of
//     notify: instead of saying "ready", the daemon becomes the program. It
//     keeps the daemon's PID (the one in the pidfile) and the lock.
//
// The exec stage is a stages.Planner: where the whole pipeline after the
// fork can be planned, no Go process runs between the launcher and the
// program.
package program

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/stages"
)

// Names of the two stages.
const (
	CheckName = "program"
	ExecName  = "exec"
)

// DefaultPath is the search path when PATH is unset, as in glibc's
// execvp(3).
const DefaultPath = "/bin:/usr/bin"

// Shell runs a file without a known format (a script without "#!"), as
// execvp(3) does.
const Shell = "/bin/sh"

// Program is the program the daemon becomes.
type Program struct {
	// Argv is the command line; Argv[0] is what the program sees, and
	// names it: with a slash, a path (made absolute by New), otherwise a
	// name searched in PATH when it is executed (after WithEnv and the
	// privilege drop applied).
	Argv []string
	// Path is the absolute path of a program named with a slash, "" for a
	// PATH search.
	Path string
	// Ready says how the launcher learns the program is ready; the zero
	// value means once it has been executed.
	Ready Readiness
}

// New returns the program for argv. argv must not be empty and no
// argument may contain a NUL byte (64 otherwise).
func New(argv []string) (*Program, error) {
	if len(argv) == 0 {
		return nil, stages.Errorf(CheckName, stages.ExitUsage, "no program given")
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, stages.Errorf(CheckName, stages.ExitUsage, "program arguments must not contain NUL bytes")
		}
	}
	p := &Program{Argv: argv}
	name := argv[0]
	if name == "" {
		return nil, stages.Errorf(CheckName, stages.ExitUsage, "empty program name")
	}
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return nil, stages.Errorf(CheckName, stages.ExitUsage, "program %s: %v", name, err)
		}
		p.Path = abs
	}
	return p, nil
}

func noInput(format string, args ...any) error {
	return stages.Errorf(CheckName, stages.ExitNoInput, format, args...)
}

// Check verifies that a program given by path exists, is a regular file
// and is executable (66 otherwise). A name searched in PATH is checked
// when it is executed.
func (p *Program) Check() error {
	if p.Path == "" {
		return nil
	}
	var st unix.Stat_t // stat(2) into a local: no FileInfo to build
	switch err := unix.Stat(p.Path, &st); {
	case err != nil:
		return noInput("%v", &os.PathError{Op: "stat", Path: p.Path, Err: err})
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return noInput("%s is not a regular file", p.Path)
	}
	if err := unix.Access(p.Path, unix.X_OK); err != nil {
		return noInput("%s is not executable: %v", p.Path, err)
	}
	return nil
}

// searchPath is the program search path in env: PATH, or DefaultPath.
func searchPath(env []string) string {
	if v, ok := stages.GetEnv(env, "PATH"); ok {
		return v
	}
	return DefaultPath
}

// Candidates lists the paths execvp(3) would try for the program, in the
// environment env.
func (p *Program) Candidates(env []string) []string {
	if p.Path != "" {
		return []string{p.Path}
	}
	var out []string
	for _, dir := range filepath.SplitList(searchPath(env)) {
		if dir == "" {
			dir = "."
		}
		out = append(out, filepath.Join(dir, p.Argv[0]))
	}
	return out
}

// execError maps the errno of the last failed execve(2) to the exit-code
// table: a program not found or not executable (a missing script
// interpreter included) is 66, anything else 71.
func (p *Program) execError(env []string, errno syscall.Errno) error {
	what := p.Path
	switch {
	case p.Path != "" && errno == syscall.ENOENT:
		if _, err := os.Stat(p.Path); err == nil {
			what = p.Path + ": its #! interpreter"
		}
	case p.Path == "" && errno == syscall.ENOENT:
		what = fmt.Sprintf("%s not found in PATH %q", p.Argv[0], searchPath(env))
	case p.Path == "" && errno == syscall.EACCES:
		what = p.Argv[0] + " (in PATH)"
	case p.Path == "":
		what = p.Argv[0]
	}
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES:
		return stages.Errorf(ExecName, stages.ExitNoInput, "%s: %w", what, errno)
	}
	return stages.Errorf(ExecName, stages.ExitOSErr, "%s: %w", what, errno)
}

// exec runs the program in place of this process, like execvp(3): every
// candidate in turn, skipping one that is missing or not executable, a
// file without a known format through Shell. It returns only on failure.
func (p *Program) exec(env []string) error {
	var denied, last syscall.Errno = 0, syscall.ENOENT
	for _, cand := range p.Candidates(env) {
		err := handover.Exec(cand, p.Argv, env, true)
		if errors.Is(err, syscall.ENOEXEC) {
			err = handover.Exec(Shell, append([]string{Shell, cand}, p.Argv[1:]...), env, true)
		}
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			return stages.Wrap(ExecName, stages.ExitOSErr, err)
		}
		switch errno {
		case syscall.EACCES:
			denied = errno
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE, syscall.ENODEV, syscall.ETIMEDOUT:
			last = errno
		default:
			return p.execError(env, errno)
		}
	}
	if denied != 0 {
		return p.execError(env, denied)
	}
	return p.execError(env, last)
}

// CheckStage is the "program" stage: see the package documentation.
type CheckStage struct{ p *Program }

var _ stages.Stage = (*CheckStage)(nil)

// NewCheck returns the check stage for p, to run before the first fork.
func NewCheck(p *Program) *CheckStage { return &CheckStage{p: p} }

// Name returns "program".
func (*CheckStage) Name() string { return CheckName }

// Run checks the program and, in daemon mode in the launcher, prepares the
// wait for its readiness.
func (st *CheckStage) Run(s *stages.State) error {
	if err := st.p.Check(); err != nil {
		return err
	}
	if s.Config.Foreground || s.Role != stages.RoleLauncher || st.p.Ready.isZero() {
		return nil
	}
	return st.p.Ready.prepare(s)
}

// ExecStage is the "exec" stage: see the package documentation.
type ExecStage struct{ p *Program }

var (
	_ stages.Final   = (*ExecStage)(nil)
	_ stages.Planner = (*ExecStage)(nil)
)

// NewExec returns the exec stage for p, to replace notify.
func NewExec(p *Program) *ExecStage { return &ExecStage{p: p} }

// Name returns "exec".
func (*ExecStage) Name() string { return ExecName }

// Final marks the stage as the end of the pipeline's Go part.
func (*ExecStage) Final() {}

// environ returns env as the program gets it: socket activation addressed
// to it (LISTEN_PID is its PID, set at exec time), the readiness fd.
func programEnv(s *stages.State, env []string) []string {
	if s.NotifySocket != "" {
		env = stages.SetEnv(env, "NOTIFY_SOCKET", s.NotifySocket)
	}
	env = stages.UnsetEnv(env, "LISTEN_PID")
	if s.ListenFDs > 0 {
		env = stages.SetEnv(env, "LISTEN_FDS", strconv.Itoa(s.ListenFDs))
		if len(s.ListenNames) > 0 {
			env = stages.SetEnv(env, "LISTEN_FDNAMES", strings.Join(s.ListenNames, ":"))
		} else {
			env = stages.UnsetEnv(env, "LISTEN_FDNAMES")
		}
	}
	return env
}

// CanPlan reports whether Plan would plan: it ends a Final plan.
func (*ExecStage) CanPlan(s *stages.State, final bool) bool { return final }

// Plan ends a launch plan with the program: the daemon child execs it
// after an "exec pending" record.
func (st *ExecStage) Plan(s *stages.State, p *stages.Plan) error {
	if !st.CanPlan(s, p.Final) {
		return stages.ErrNoRawForm
	}
	env := programEnv(s, append([]string(nil), p.Env...))
	x := stages.Exec{Candidates: st.p.Candidates(env), Argv: st.p.Argv, Env: env, Shell: Shell, Announce: true}
	if s.ListenFDs > 0 {
		x.PIDVar = "LISTEN_PID"
	}
	p.Add(stages.Op{Kind: stages.OpExec, Exec: x, Explain: func(errno syscall.Errno) error { return st.p.execError(env, errno) }})
	return nil
}

// Run execs the program. The lock stays open and locked across exec; the
// readiness pipe does not (close-on-exec), so the launcher sees end of
// file once the exec succeeded, after the "exec pending" record sent just
// before it.
func (st *ExecStage) Run(s *stages.State) error {
	if s.LockFile != nil {
		// The program inherits the lock: it is held as long as the program
		// (or a child that inherits the fd) runs.
		if _, err := unix.FcntlInt(s.LockFile.Fd(), unix.F_SETFD, 0); err != nil {
			return stages.Errorf(ExecName, stages.ExitOSErr, "keeping the lock across exec: %w", os.NewSyscallError("fcntl", err))
		}
	}
	env := programEnv(s, os.Environ())
	if s.ListenFDs > 0 {
		env = append(env, "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	}
	if s.Line != nil {
		if err := s.Line.ExecPending(); err != nil {
			return err
		}
	}
	return st.p.exec(env)
}

// deadlineTimer returns a channel that fires at deadline (never for zero).
func deadlineTimer(deadline time.Time) (<-chan time.Time, func()) {
	if deadline.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(deadline))
	return t.C, func() { t.Stop() }
}
