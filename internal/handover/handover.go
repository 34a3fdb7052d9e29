// Package handover carries a pipeline run from one process generation to
// the next: the marker a parent puts in its child's environment, and the
// clean re-execution that starts the child.
//
// The marker names the generation the child plays, the pipeline step it
// resumes at, the fd of the readiness pipe, a fingerprint of the pipeline
// and the identity of the executable. The child reads it and removes it
// from its environment before anything else, and refuses to go on when it
// does not match what the child finds (a forged or stale marker, another
// binary, a different pipeline).
package handover

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/blivet-go/blivet/internal/sys"
	"golang.org/x/sys/unix"
)

// EnvKey is the environment variable that carries the marker.
const EnvKey = "BLIVET_HANDOVER"

const version = "blivet1"

// Marker is what a parent generation hands to its child.
type Marker struct {
	Role     string    // "intermediate", "daemon" or "foreground"
	Next     int       // pipeline step to resume at
	FD       int       // readiness pipe write end; -1 when none
	Pipeline string    // fingerprint of the pipeline
	Exe      sys.ExeID // identity of the executable
	PID      int       // foreground re-exec in place: the PID that must read it
	// ListenFDs is how many socket-activation fds (from 3) the launcher
	// took over; ListenNames holds their names, one each.
	ListenFDs   int
	ListenNames []string
}

// Encode renders m as the value of EnvKey.
func (m Marker) Encode() string {
	names := make([]string, 0, len(m.ListenNames))
	for _, n := range m.ListenNames {
		names = append(names, url.QueryEscape(n))
	}
	return fmt.Sprintf("%s role=%s next=%d fd=%d pipeline=%s exe=%d:%d pid=%d listen=%d names=%s",
		version, m.Role, m.Next, m.FD, m.Pipeline, m.Exe.Dev, m.Exe.Ino, m.PID, m.ListenFDs, strings.Join(names, ":"))
}

// ErrForged is wrapped by every error about a marker that cannot be a
// genuine handover.
var ErrForged = errors.New("invalid " + EnvKey + " handover (was the program started by hand with a copied environment?)")

// Decode parses a marker value.
func Decode(v string) (Marker, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 || fields[0] != version {
		return Marker{}, fmt.Errorf("%w: unknown version in %q", ErrForged, v)
	}
	m := Marker{FD: -1}
	seen := 0
	names := ""
	for _, f := range fields[1:] {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return Marker{}, fmt.Errorf("%w: malformed field %q", ErrForged, f)
		}
		var err error
		switch k {
		case "role":
			m.Role = val
		case "next":
			m.Next, err = strconv.Atoi(val)
		case "fd":
			m.FD, err = strconv.Atoi(val)
		case "pipeline":
			m.Pipeline = val
		case "pid":
			m.PID, err = strconv.Atoi(val)
		case "listen":
			m.ListenFDs, err = strconv.Atoi(val)
		case "names":
			names = val
		case "exe":
			d, i, _ := strings.Cut(val, ":")
			m.Exe.Dev, err = strconv.ParseUint(d, 10, 64)
			if err == nil {
				m.Exe.Ino, err = strconv.ParseUint(i, 10, 64)
			}
		default:
			return Marker{}, fmt.Errorf("%w: unknown field %q", ErrForged, k)
		}
		if err != nil {
			return Marker{}, fmt.Errorf("%w: field %s: %v", ErrForged, k, err)
		}
		seen++
	}
	if seen != 8 {
		return Marker{}, fmt.Errorf("%w: %d of 8 fields", ErrForged, seen)
	}
	if m.ListenFDs < 0 || (m.ListenFDs == 0 && names != "") {
		return Marker{}, fmt.Errorf("%w: socket-activation fds %d, names %q", ErrForged, m.ListenFDs, names)
	}
	if m.ListenFDs > 0 {
		for _, n := range strings.Split(names, ":") {
			u, err := url.QueryUnescape(n)
			if err != nil {
				return Marker{}, fmt.Errorf("%w: socket-activation name %q: %v", ErrForged, n, err)
			}
			m.ListenNames = append(m.ListenNames, u)
		}
		if len(m.ListenNames) != m.ListenFDs {
			return Marker{}, fmt.Errorf("%w: %d socket-activation fds with %d names", ErrForged, m.ListenFDs, len(m.ListenNames))
		}
	}
	switch m.Role {
	case "intermediate", "daemon":
		if m.FD < 3 {
			return Marker{}, fmt.Errorf("%w: no readiness pipe", ErrForged)
		}
	case "foreground":
	default:
		return Marker{}, fmt.Errorf("%w: unknown role %q", ErrForged, m.Role)
	}
	return m, nil
}

// Take reads the marker from the environment and removes it, so nothing
// this process starts inherits it. ok is false when there is none.
func Take() (m Marker, ok bool, err error) {
	v, ok := os.LookupEnv(EnvKey)
	if !ok {
		return Marker{}, false, nil
	}
	os.Unsetenv(EnvKey)
	m, err = Decode(v)
	return m, true, err
}

// Verify checks the marker against this process: the executable is the one
// the parent ran, the pipeline is the same, the pipe fd is a pipe open for
// writing (and is then made close-on-exec), and an in-place re-exec is
// read by the PID that wrote it.
func (m Marker) Verify(pipeline string) error {
	_, exe, err := sys.Executable()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if exe != m.Exe {
		return fmt.Errorf("%w: the executable changed between generations (was %d:%d, now %d:%d)",
			ErrForged, m.Exe.Dev, m.Exe.Ino, exe.Dev, exe.Ino)
	}
	if m.Pipeline != pipeline {
		return fmt.Errorf("%w: the pipeline differs from the parent's (options, stages or hooks changed between generations: is the code before Daemonize deterministic?)", ErrForged)
	}
	if m.Role == "foreground" {
		if m.PID != os.Getpid() {
			return fmt.Errorf("%w: foreground handover for PID %d read by PID %d", ErrForged, m.PID, os.Getpid())
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.FD, &st); err != nil {
		return fmt.Errorf("%w: fd %d: %v", ErrForged, m.FD, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("%w: fd %d is not a pipe", ErrForged, m.FD)
	}
	fl, err := unix.FcntlInt(uintptr(m.FD), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_ACCMODE != unix.O_WRONLY {
		return fmt.Errorf("%w: fd %d is not the write end of a pipe", ErrForged, m.FD)
	}
	if _, err := unix.FcntlInt(uintptr(m.FD), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("fd %d: %w", m.FD, err)
	}
	return nil
}

// Environ returns env without any marker, plus the marker m when m.Role is set.
func Environ(env []string, m *Marker) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvKey+"=") {
			out = append(out, kv)
		}
	}
	if m != nil {
		out = append(out, EnvKey+"="+m.Encode())
	}
	return out
}

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
// mask and nothing ignored. It returns the child's PID.
func Spawn(path string, argv, env []string, files []int, resetSignals bool) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = uintptr(f)
	}
	attr := &syscall.ProcAttr{Env: env, Files: fds}
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
