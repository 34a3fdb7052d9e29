// Package handover starts the next process generation: a clean
// re-execution of the program (or, for the daemonize command, of another
// program) with the marker of package wire in its environment, the
// readiness pipe at a known fd and a clean signal state.
package handover

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/blivet-go/blivet/internal/sys"
	"golang.org/x/sys/unix"
)

// prepareSignals makes the child of the next fork or exec start with no
// ignored signal and an empty mask. Exec resets caught signals to their
// default but keeps ignored ones and the mask of the execing thread, so:
// every ignored signal gets Go's handler for the moment (signal.Notify),
// which the runtime resets to SIG_DFL in the child after fork and the
// kernel resets at exec; and the calling thread's mask is emptied. The
// caller must hold runtime.LockOSThread; done undoes both.
func prepareSignals() (done func(), err error) {
	ign, err := sys.IgnoredSignals()
	if err != nil || runtime.GOOS != "linux" {
		ign = sys.Signals() // cannot see every SIG_IGN here: catch them all
	}
	var ch chan os.Signal
	if len(ign) > 0 {
		ch = make(chan os.Signal, 1)
		sigs := make([]os.Signal, len(ign))
		for i, s := range ign {
			sigs[i] = s
		}
		signal.Notify(ch, sigs...)
	}
	restore, err := sys.ClearThreadSigmask()
	return func() {
		restore()
		if ch != nil {
			signal.Stop(ch)
		}
	}, err
}

// Spawn starts path with argv and env, the child's fd i being files[i]
// (-1 closes it). With resetSignals, the child starts with an empty signal
// mask and nothing ignored. With siblingOfCaller (Linux), the child becomes
// a child of the caller's parent (CLONE_PARENT), so a launcher can wait for
// its grandchild. It returns the child's PID.
func Spawn(path string, argv, env []string, files []int, resetSignals, siblingOfCaller bool) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = uintptr(f)
	}
	attr := &syscall.ProcAttr{Env: env, Files: fds, Sys: sysProcAttr(siblingOfCaller)}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if resetSignals {
		done, err := prepareSignals()
		defer done()
		if err != nil {
			return 0, err
		}
	}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, &os.PathError{Op: "re-execute", Path: path, Err: err}
	}
	return pid, nil
}

// Exec replaces the process with path (same PID). With resetSignals the
// new image starts with an empty signal mask and nothing ignored. It
// returns only on failure.
func Exec(path string, argv, env []string, resetSignals bool) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if resetSignals {
		done, err := prepareSignals()
		defer done()
		if err != nil {
			return err
		}
	}
	return syscall.Exec(path, argv, env)
}

// IsPipeWriter reports whether fd is the write end of a pipe.
func IsPipeWriter(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_ACCMODE == unix.O_WRONLY
}
