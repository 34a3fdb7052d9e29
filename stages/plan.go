package stages

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// A launch plan is what the stages after a fork do, written down as data so
// that a child process without a Go runtime can do it: the first fork
// stage then starts the daemon without a Go start in any later generation.
//
// Each stage that can work that way implements Planner and describes its
// own step (a umask, a directory, an fd layout, credentials with what to
// verify, an argv and environment); the runner (package blivet) asks the
// stages after the fork in order and hands the plan to the fork stage,
// which implements Launcher. The first step without a raw form (a hook, a
// stage that is not a Planner, or one that declines) ends the plan: the
// plan then ends by re-executing the program as the daemon, which resumes
// the pipeline at that step. So a stage's behaviour lives in its package in
// every form it runs in.

// ErrNoRawForm is returned by Planner.Plan when the stage cannot run as part
// of this plan: the plan ends before it and the stage runs in a Go process.
var ErrNoRawForm = errors.New("stage has no raw form in this plan")

// Planner is implemented by a stage that can describe its work as steps of
// a launch plan. Plan runs in the launcher, with the launcher's State, and
// adds the stage's steps to p; it may open files the plan hands on (they
// are closed in the launcher once the daemon started). It returns
// ErrNoRawForm to run as a Go stage instead.
type Planner interface {
	Stage
	Plan(s *State, p *Plan) error
}

// PlanChecker is implemented by a Planner that can tell, without side
// effects, whether it would plan in a plan that is (final) or is not
// Final. The runner asks every stage before planning any, so a plan that
// cannot reach its end is never begun: no stage then opens a file in the
// launcher for nothing.
type PlanChecker interface {
	CanPlan(s *State, final bool) bool
}

// Launcher is implemented by the stage that starts the next generation
// (the first fork). Launch executes p, waits for the daemon's outcome and
// sets State.Outcome. It is called instead of Run when at least one step
// after the stage was planned.
type Launcher interface {
	Stage
	// Plannable reports whether Launch can run a plan here and now.
	Plannable(s *State) bool
	Launch(s *State, p *Plan) error
}

// Final is implemented by stages that end the pipeline's Go part: what
// follows them is not the app. The runner refuses to run a Final stage
// while a configured privilege drop is pending (the daemon never reports
// ready, or runs a program, as root by mistake).
type Final interface {
	Stage
	Final()
}

// RefuseBeforeDrop is the one rule that a Final stage (saying ready, or
// running a program), here the stage named name, never runs while a
// configured privilege drop has not run: it returns an error with exit
// code 70 then, and nil otherwise. The pipeline applies it to every Final
// stage it runs or plans, and NotifyParent before anything else.
func RefuseBeforeDrop(s *State, name string) error {
	if !s.PrivilegesPending() {
		return nil
	}
	return Errorf(name, ExitSoftware,
		"refusing to report ready or run the program before the configured privilege drop (user %q, group %q): call DropPrivileges first",
		s.Config.User, s.Config.Group)
}

// Forker is implemented by the stages that start a new process generation
// (the two forks): a generation started otherwise (an upgrade's next
// generation, already detached) resumes after the last of them.
type Forker interface {
	Stage
	Forks()
}

// Dropper is implemented by the privilege-drop stage. Without
// WithAutoNotify, Daemonize returns just before the first Dropper, so the
// app can do privileged work and call DropPrivileges.
type Dropper interface {
	Stage
	DropsPrivileges()
}

// OpKind is what one plan step does.
type OpKind int

// Plan steps, run in order by the raw child.
const (
	OpSetsid   OpKind = iota + 1 // setsid(2)
	OpFork                       // fork again; the parent (intermediate) exits 0
	OpUmask                      // umask(Num)
	OpChdir                      // fchdir(File) when set, else chdir(Path)
	OpDup                        // dup File onto fd Num (clearing close-on-exec)
	OpLock                       // flock(File, LOCK_EX|LOCK_NB), then Path must still name File
	OpWritePID                   // File := own PID in decimal and "\n" (pwrite, then truncate if it was longer)
	OpKeepOpen                   // clear close-on-exec on File at its own number
	OpCloexec                    // mark every fd from 3 close-on-exec, except Keep
	OpDrop                       // setgroups(Groups), setresgid(GID), setresuid(UID) unless -1, then Verify
	OpExec                       // exec Candidates in order (execvp-like), Argv, Env; Shell on ENOEXEC
	OpTruncate                   // ftruncate(File, 0): after the lock, so a losing launch changes nothing
	OpChown                      // fchown(File, Cred.UID, Cred.GID) when it is a regular file with one name
)

// Op is one step of a plan. Explain turns the errno the raw child reports
// into the stage's own error (with its exit code); nil gives exit code 71.
type Op struct {
	Kind  OpKind
	Stage string // the stage the step belongs to
	Step  int    // its index in the pipeline (set by the runner)
	Num   int    // OpUmask: the mask; OpDup: the target fd
	Path  string // OpChdir: the directory (when File is nil); OpLock: must still name File
	// File is the open file the step uses (OpChdir, OpDup, OpLock,
	// OpWritePID, OpKeepOpen); the launcher keeps it open until the child
	// has it (Plan.Files).
	File    *os.File
	Keep    []int // OpCloexec: the fds left open across exec
	Cred    Cred  // OpDrop
	Exec    Exec  // OpExec
	Explain func(errno syscall.Errno) error
}

// Cred is a privilege drop: the ids to switch to and what must hold after.
type Cred struct {
	UID    int // -1: keep the uid (group-only drop)
	GID    int
	Groups []int
	// Verify lists the checks that must pass after the switch.
	Verify []CredCheck
}

// CheckKind is one verification of a privilege drop.
type CheckKind int

// Checks a drop is verified with (see package privdrop).
const (
	CheckUIDs       CheckKind = iota + 1 // real, effective, saved and filesystem uid are Want
	CheckGIDs                            // real, effective, saved and filesystem gid are Want
	CheckNoCaps                          // no permitted, effective or ambient capability
	CheckNoSetuid0                       // setuid(0) fails
	CheckNoSeteuid0                      // setresuid(-1, 0, -1) fails
	CheckNoSetgid0                       // setgid(0) fails
	CheckGroups                          // the supplementary groups are Cred.Groups
)

// CredCheck is one check with the value it wants.
type CredCheck struct {
	Kind CheckKind
	Want int
}

// Exec is the program a plan ends with.
type Exec struct {
	Candidates []string // paths tried in order; a missing or denied one moves on
	Argv       []string
	Env        []string
	Shell      string // runs a candidate without a known format (ENOEXEC); "" never
	// PIDVar names an environment variable set to the process's own PID
	// just before the exec ("LISTEN_PID"); "" for none.
	PIDVar string
	// Announce writes an "exec pending" record to the readiness pipe just
	// before the exec: the program is not a blivet generation, so the
	// pipe's end of file then means it runs.
	Announce bool
}

// Plan is a launch written down as data. The runner fills Resume and the
// fork stage's Launch executes it.
type Plan struct {
	// Ops are the steps, in pipeline order.
	Ops []Op
	// Env is the environment the plan's exec starts with; stages edit it.
	Env []string
	// KeepFDs are the fds (beyond 0-2) the daemon keeps at their numbers.
	KeepFDs []int
	// ResetSignals starts the program with no signal ignored and an empty
	// mask (otherwise only caught signals are reset, and the mask kept).
	ResetSignals bool
	// Resume is the pipeline step the re-executed daemon resumes at when
	// the plan does not end with a program of its own (Exec unset).
	Resume int
	// Final is true when the plan ends with an exec of a program that is
	// not this one: no Go generation follows, so stages that keep state in
	// the daemon's Go process may plan too.
	Final bool

	closers  []func() error
	failures []func(pid int)
}

// OnFailure registers fn to run in the launcher when the launch failed
// and the daemon is gone (pid is the failed daemon's, 0 when none
// started): undoing what a planned step left behind, like a pidfile.
func (p *Plan) OnFailure(fn func(pid int)) { p.failures = append(p.failures, fn) }

// Failed runs the OnFailure functions, newest first, once.
func (p *Plan) Failed(pid int) {
	for i := len(p.failures) - 1; i >= 0; i-- {
		p.failures[i](pid)
	}
	p.failures = nil
}

// Add appends op. The runner sets its Stage and Step once Plan returns.
func (p *Plan) Add(op Op) { p.Ops = append(p.Ops, op) }

// Setenv sets key in p.Env (see SetEnv).
func (p *Plan) Setenv(key, value string) { p.Env = SetEnv(p.Env, key, value) }

// Unsetenv removes key from p.Env.
func (p *Plan) Unsetenv(key string) { p.Env = UnsetEnv(p.Env, key) }

// Getenv returns key's value in p.Env.
func (p *Plan) Getenv(key string) (string, bool) { return GetEnv(p.Env, key) }

// SetEnv sets key in the environment list env, replacing its first entry
// in place (and dropping later ones), or appending it; it returns env.
func SetEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return append(env[:i+1], UnsetEnv(env[i+1:], key)...)
		}
	}
	return append(env, key+"="+value)
}

// UnsetEnv removes key from the environment list env, in place.
func UnsetEnv(env []string, key string) []string {
	out := env[:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return out
}

// GetEnv returns key's value in the environment list env.
func GetEnv(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// OnDone registers fn to run in the launcher once the plan was executed
// (or abandoned): closing the launcher's copies of files it handed on.
func (p *Plan) OnDone(fn func() error) { p.closers = append(p.closers, fn) }

// Done runs the OnDone functions, newest first, once.
func (p *Plan) Done() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		_ = p.closers[i]()
	}
	p.closers = nil
}

// Files returns every open file the plan refers to (the launcher must keep
// them open until the child has them).
func (p *Plan) Files() []*os.File {
	var out []*os.File
	for _, op := range p.Ops {
		if op.File != nil {
			out = append(out, op.File)
		}
	}
	return out
}
