// Package fork provides the two re-execution stages of the double fork.
//
// A Go program cannot fork(2) without exec: the runtime is multithreaded
// from its first instruction. "Fork" here re-executes the running binary
// (/proc/self/exe on Linux, os.Executable elsewhere) with the readiness
// pipe as an inherited fd and a handover marker in its environment. The new
// generation runs main up to Daemonize again, rebuilds the same pipeline and
// resumes right after the fork stage that started it.
//
//   - First ("fork") runs in the launcher: it creates the readiness pipe,
//     starts the intermediate and waits for the daemon's outcome.
//   - Second ("fork2") runs in the intermediate, after setsid: it starts the
//     daemon (a session member, not its leader), reports the daemon's PID
//     and lets the intermediate exit, so init adopts the daemon.
//
// On Linux, when fork, setsid and fork2 are the default stages in a row
// with no hooks between them (State.DirectDaemonStep), the first fork
// stage performs all three at once: a raw intermediate (package
// internal/rawfork) calls setsid and starts the daemon without a Go runtime
// of its own, saving one program start per launch.
//
// Both are no-ops in foreground mode.
package fork

import (
	"os"
	"slices"
	"syscall"

	"github.com/blivet-go/blivet/internal/handover"
	"github.com/blivet-go/blivet/internal/rawfork"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/stages"
)

// Stage is one of the two fork stages.
type Stage struct{ second bool }

var _ stages.Stage = (*Stage)(nil)

// First returns the launcher's fork stage, named "fork".
func First() *Stage { return &Stage{} }

// Second returns the intermediate's fork stage, named "fork2".
func Second() *Stage { return &Stage{second: true} }

// Name returns "fork" or "fork2".
func (st *Stage) Name() string {
	if st.second {
		return "fork2"
	}
	return "fork"
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
	r, w, err := os.Pipe()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	files, at := Layout([3]int{int(null.Fd()), int(null.Fd()), 2}, s.KeepFDs, int(w.Fd()))
	var pid int
	if s.DirectDaemonStep > 0 && rawfork.Supported() {
		// Fast path: setsid and the second fork happen in a raw child,
		// without starting a Go runtime for the intermediate.
		m := handover.Marker{Role: "daemon", Next: s.DirectDaemonStep, FD: at, Pipeline: s.Fingerprint, Exe: exe,
			ListenFDs: s.ListenFDs, ListenNames: s.ListenNames}
		pid, err = rawfork.DoubleFork(path, os.Args, handover.Environ(os.Environ(), &m), files, int(w.Fd()), at, s.Config.CloseFDs, s.ResetSignals)
	} else {
		m := handover.Marker{Role: "intermediate", Next: s.NextStep, FD: at, Pipeline: s.Fingerprint, Exe: exe,
			ListenFDs: s.ListenFDs, ListenNames: s.ListenNames}
		pid, err = handover.Spawn(path, os.Args, handover.Environ(os.Environ(), &m), files, s.ResetSignals)
	}
	w.Close()
	null.Close()
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	out := notify.Await(r, s.Config.ReadyTimeout, pid)
	// Reap the intermediate: it exits as soon as the daemon is started.
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	s.Outcome = &out
	return nil
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
	m := handover.Marker{Role: "daemon", Next: s.NextStep, FD: at, Pipeline: s.Fingerprint, Exe: exe,
		ListenFDs: s.ListenFDs, ListenNames: s.ListenNames}
	pid, err := handover.Spawn(path, os.Args, handover.Environ(os.Environ(), &m), files, s.ResetSignals)
	if err != nil {
		return stages.Wrap(st.Name(), stages.ExitOSErr, err)
	}
	if err := s.Line.ReportPID(pid); err != nil {
		return err
	}
	s.Outcome = &stages.Outcome{PID: pid}
	return nil
}
