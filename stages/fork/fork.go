// Package fork provides the two forks of the double fork.
//
// A Go program cannot fork(2) without exec: the runtime is multithreaded
// from its first instruction. So the fork stages work in one of two forms.
//
// Planned (Linux on amd64 and arm64, the usual case): the first fork stage
// is the pipeline's Launcher. The stages after it describe their steps as
// a plan (see stages.Plan); the launcher forks a child without a Go
// runtime (package internal/rawfork) that calls setsid, forks again (the
// second fork stage's step) and runs the plan in the grandchild, which
// ends by executing the program: the daemonize command's program, or this
// program again, resuming the pipeline where the plan stopped. One Go
// start per launch is saved for each generation the plan covers.
//
// Re-executed (other platforms, or when a hook or a stage without a raw
// form follows the first fork directly): each fork re-executes the running
// binary with the readiness pipe as an inherited fd and a handover marker
// (package internal/wire) in its environment. The new generation runs main
// up to Daemonize again, rebuilds the same pipeline and resumes right
// after the fork stage that started it.
//
// Either way the launcher waits for the daemon's outcome on the readiness
// pipe, and after a failure returns only once the daemon is gone (every
// thread, within 5 seconds). The daemon is never the launcher's child.
// When the launcher waits for the readiness of a program the daemon
// executes (State.AfterExec), the planned intermediate stays the daemon's
// parent until the launcher is done, to tell it how the program ended;
// the launcher then ends it and init adopts the daemon. Both stages are
// no-ops in foreground mode.
package fork

import (
	"fmt"
	"os"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/rawfork"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/stages"
)

// Names of the two stages.
const (
	NameFirst  = "fork"
	NameSecond = "fork2"
)

// Stage is one of the two fork stages.
type Stage struct{ second bool }

var (
	_ stages.Launcher = (*Stage)(nil)
	_ stages.Planner  = (*Stage)(nil)
)

// Forks marks the stage as one that starts a new process generation.
func (*Stage) Forks() {}

// First returns the launcher's fork stage, named "fork".
func First() *Stage { return &Stage{} }

// Second returns the intermediate's fork stage, named "fork2".
func Second() *Stage { return &Stage{second: true} }

// Name returns "fork" or "fork2".
func (st *Stage) Name() string {
	if st.second {
		return NameSecond
	}
	return NameFirst
}

// Run re-executes the program as the next generation.
func (st *Stage) Run(s *stages.State) error {
	if s.Config.Foreground {
		return nil
	}
	if st.second {
		return st.spawnDaemon(s)
	}
	return st.spawnIntermediate(s)
}

// ReexecEnv, set to 1 in the launcher's environment, makes the launch
// re-execute the program for every generation even where a plan could
// run: for tests that compare both forms, and for debugging. The launcher
// removes it from its environment.
const ReexecEnv = "BLIVET_REEXEC"

// Plannable reports whether Launch can run a plan: the first fork stage,
// in daemon mode, where raw children are supported, unless ReexecEnv
// says otherwise.
func (st *Stage) Plannable(s *stages.State) bool {
	forced := os.Getenv(ReexecEnv) == "1"
	os.Unsetenv(ReexecEnv)
	return !forced && !st.second && !s.Config.Foreground && s.Role == stages.RoleLauncher && rawfork.Supported()
}

// Plan adds the second fork's step: the intermediate forks the daemon and
// exits. The first fork stage has no step of its own (it is the fork that
// starts the plan) and declines.
func (st *Stage) Plan(s *stages.State, p *stages.Plan) error {
	if !st.second || s.Config.Foreground {
		return stages.ErrNoRawForm
	}
	p.Add(stages.Op{Kind: stages.OpFork})
	return nil
}

// Launch executes p in raw children and waits for the outcome. A plan that
// does not end with a program of its own ends by re-executing this one as
// the daemon, resuming at p.Resume.
func (st *Stage) Launch(s *stages.State, p *stages.Plan) error {
	started := false
	defer func() {
		p.Done()
		if !started {
			p.Failed(0) // no child got the files: undo what planning made
		}
	}()
	defer closePassed(s)
	// Without a ready timeout nothing gives up on the read: it blocks in
	// the kernel, and the end of the records wakes this thread directly.
	r, w, err := pipe(minFD(s), s.Config.ReadyTimeout > 0)
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	defer r.Close()
	if !p.Final {
		if err := st.planReexec(s, p, w); err != nil {
			w.Close()
			return err
		}
	}
	// Files passed at fixed numbers go last, once every other step has
	// used the fds it was given.
	last := p.Ops[len(p.Ops)-1]
	p.Ops = p.Ops[:len(p.Ops)-1]
	for n, f := range s.PassFDs {
		p.Add(stages.Op{Kind: stages.OpDup, Stage: st.Name(), File: f, Num: n})
	}
	p.Add(last)
	p.ResetSignals = s.ResetSignals
	// Without a ready timeout the forks share the launcher's memory and
	// this thread waits until the daemon execs: cheaper, and nothing to
	// give up on. With one, a child stuck (in chdir on a dead mount) must
	// not hold the launcher.
	opts := rawfork.Options{Vfork: s.Config.ReadyTimeout <= 0, CloseUnkept: s.Config.CloseFDs}
	var ended *os.File
	if s.AfterExec != nil {
		// The intermediate waits for the program and tells how it ended.
		var werr error
		ended, opts.Waiter, werr = pipe(minFD(s), true)
		if werr != nil {
			w.Close()
			return stages.Wrap(st.Name(), stages.ExitOSErr, werr)
		}
		defer ended.Close()
	}
	pid, err := rawfork.Start(p, w, opts)
	started = err == nil
	w.Close()
	closePassed(s)
	if opts.Waiter != nil {
		opts.Waiter.Close()
	}
	p.Done()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	wait := waiting(s, pid)
	if ended != nil {
		wait.EndOf = notify.EndFrom(ended)
	}
	wait.Explain = func(i int, errno syscall.Errno) error {
		if i < 0 || i >= len(p.Ops) {
			return nil
		}
		op := p.Ops[i]
		if op.Explain != nil {
			if err := op.Explain(errno); err != nil {
				return stages.Wrap(op.Stage, stages.ExitOSErr, err)
			}
		}
		return stages.Errorf(op.Stage, stages.ExitOSErr, "%s: %w", describe(op), errno)
	}
	out := wait.Await(r)
	if ended != nil {
		// The launcher is done with the program, ready or not (after a
		// failure Await has already waited, bounded, for its end): the
		// waiting intermediate lets it go. Reaping an intermediate still
		// waiting would hold the launcher as long as the program runs.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	reap(pid)
	if out.Err != nil {
		p.Failed(out.PID) // the daemon is gone: undo what it left behind
	}
	s.Outcome = &out
	return nil
}

// planReexec ends a plan that is not Final with the re-execution of this
// program as the next generation, reporting on w. It is kept out of
// Launch, whose frame every launch's stack must hold: the marker and steps
// it builds are large, and a launch that runs another program (the
// daemonize command) never needs them.
func (st *Stage) planReexec(s *stages.State, p *stages.Plan, w *os.File) error {
	path, exe, err := sys.Executable()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	// The re-executed program plays the generation the plan left off
	// in: the daemon after the second fork, else the intermediate.
	role := "intermediate"
	for _, op := range p.Ops {
		if op.Kind == stages.OpFork {
			role = "daemon"
		}
	}
	m := wire.NewMarker(s, role, p.Resume, int(w.Fd()), path, exe)
	// As a re-executed generation would get: stdin and stdout on
	// /dev/null, stderr kept for what the program says before
	// Daemonize (its stdio stage takes care of them after).
	null, err := sys.OpenNull()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	p.OnDone(null.Close)
	p.Add(stages.Op{Kind: stages.OpDup, Stage: st.Name(), File: null, Num: 0})
	p.Add(stages.Op{Kind: stages.OpDup, Stage: st.Name(), File: null, Num: 1})
	p.Add(stages.Op{Kind: stages.OpKeepOpen, Stage: st.Name(), File: w})
	p.Add(stages.Op{Kind: stages.OpExec, Stage: st.Name(),
		Exec: stages.Exec{Candidates: []string{path}, Argv: os.Args, Env: wire.Environ(p.Env, &m)},
		Explain: func(errno syscall.Errno) error {
			return stages.Wrap(NameFirst, stages.ExitOSErr, &os.PathError{Op: "re-execute", Path: path, Err: errno})
		}})
	return nil
}

// waiting is how the launcher waits for the daemon started through pid.
func waiting(s *stages.State, pid int) notify.Waiting {
	return notify.Waiting{Timeout: s.Config.ReadyTimeout, PIDHint: pid, AfterExec: s.AfterExec}
}

func describe(op stages.Op) string {
	switch op.Kind {
	case stages.OpSetsid:
		return "setsid"
	case stages.OpFork:
		return "fork"
	case stages.OpChdir:
		return "chdir " + op.Path
	case stages.OpDup:
		return fmt.Sprintf("dup onto fd %d", op.Num)
	case stages.OpCloexec:
		return "marking fds close-on-exec"
	}
	return fmt.Sprintf("step %d", op.Kind)
}

// pipe returns a readiness pipe whose write end is at lo or above, so no
// later dup onto 0-2 or onto a passed fd can close it. With poll the read
// end is in Go's poller (reads can be given up on); without, both ends
// block in the kernel (sys.Pipe).
func pipe(lo int, poll bool) (r, w *os.File, err error) {
	if poll {
		r, w, err = os.Pipe()
	} else {
		r, w, err = sys.Pipe()
	}
	if err != nil {
		return nil, nil, err
	}
	if int(w.Fd()) < lo {
		nfd, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD_CLOEXEC, lo)
		w.Close()
		if err != nil {
			r.Close()
			return nil, nil, os.NewSyscallError("fcntl", err)
		}
		w = os.NewFile(uintptr(nfd), "blivet-ready")
	}
	return r, w, nil
}

// minFD is the lowest fd number the launcher's own files handed to the
// daemon may have: above every number the daemon gets a file at.
func minFD(s *stages.State) int {
	lo := 3
	for _, k := range s.KeepFDs {
		lo = max(lo, k+1)
	}
	for n := range s.PassFDs {
		lo = max(lo, n+1)
	}
	return lo
}

// closePassed closes the launcher's copies of the files passed on.
func closePassed(s *stages.State) {
	for _, f := range s.PassFDs {
		f.Close()
	}
	s.PassFDs = nil
}

// Layout returns the child's fd table: 0-2 from std, every kept fd at its
// own number, and the pipe at the lowest free number from 3. It returns
// the table and the pipe's number in the child.
func Layout(std [3]int, keep []int, pipe int) ([]int, int) {
	at := 3
	for slices.Contains(keep, at) {
		at++
	}
	n := at + 1
	for _, k := range keep {
		if k+1 > n {
			n = k + 1
		}
	}
	files := make([]int, n)
	for i := range files {
		files[i] = -1
	}
	copy(files, std[:])
	for _, k := range keep {
		if k >= 3 {
			files[k] = k
		}
	}
	files[at] = pipe
	return files, at
}

func (st *Stage) spawnIntermediate(s *stages.State) error {
	if s.Role != stages.RoleLauncher {
		return stages.Errorf(st.Name(), stages.ExitSoftware, "runs in the %v, expected the launcher", s.Role)
	}
	path, exe, err := sys.Executable()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	defer closePassed(s)
	r, w, err := pipe(minFD(s), s.Config.ReadyTimeout > 0)
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	defer r.Close()
	null, err := sys.OpenNull()
	if err != nil {
		w.Close()
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	files, at := Layout([3]int{int(null.Fd()), int(null.Fd()), 2}, s.KeepFDs, int(w.Fd()))
	for n, f := range s.PassFDs {
		files[n] = int(f.Fd())
	}
	m := wire.NewMarker(s, "intermediate", s.NextStep, at, path, exe)
	pid, err := handover.Spawn(path, os.Args, wire.Environ(os.Environ(), &m), files, s.ResetSignals)
	w.Close()
	null.Close()
	closePassed(s)
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	out := waiting(s, pid).Await(r)
	reap(pid)
	s.Outcome = &out
	return nil
}

// reap collects the intermediate: it exits as soon as the daemon started.
func reap(pid int) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			return
		}
	}
}

func (st *Stage) spawnDaemon(s *stages.State) error {
	if s.Role != stages.RoleIntermediate || s.Line == nil || s.Line.File() == nil {
		return stages.Errorf(st.Name(), stages.ExitSoftware, "runs in the %v, expected the intermediate", s.Role)
	}
	pipe := int(s.Line.File().Fd())
	if s.Config.CloseFDs {
		// Nothing inherited from the launcher reaches the daemon but 0-2,
		// the kept fds and the pipe. The intermediate's runtime keeps
		// running: mark, do not close.
		if err := sys.CloexecExcept(append(slices.Clone(s.KeepFDs), pipe)); err != nil {
			return stages.Wrap(st.Name(), stages.ExitOSErr, err)
		}
	}
	path, exe, err := sys.Executable()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	files, at := Layout([3]int{0, 1, 2}, s.KeepFDs, pipe)
	m := wire.NewMarker(s, "daemon", s.NextStep, at, path, exe)
	pid, err := handover.Spawn(path, os.Args, wire.Environ(os.Environ(), &m), files, s.ResetSignals)
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	if err := s.Line.ReportPID(pid); err != nil {
		return err
	}
	s.Outcome = &stages.Outcome{PID: pid}
	return nil
}
