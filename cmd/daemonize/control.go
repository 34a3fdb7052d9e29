package main

// Status and stop, by the lock and never by a bare number.
//
// --status, --stop and --signal ask the kernel which process holds the
// single-instance lock (pidfile.Probe reads /proc/locks on Linux) and act
// on that process only. The number written in the pidfile is used as a
// cross-check and never signalled on its own: a stale pidfile's number may
// by now belong to an unrelated process.
//
// The kernel names the process that took the lock. That process may have
// exited while a child it forked keeps the locked file open (the lock then
// stays held), and its PID may have been reused since. So, on Linux, a PID
// is signalled only once /proc/PID/fdinfo shows that one of its
// descriptors owns the lock, through a pidfd so the PID cannot be reused
// between the check and the signal.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/pidfile"
	"golang.org/x/sys/unix"
)

// The LSB init-script status codes --status exits with (and --signal when
// nothing runs).
const (
	lsbRunning = 0 // a live process holds the lock
	lsbStale   = 1 // the pidfile exists but nobody holds the lock
	lsbStopped = 3 // no pidfile (or, with -l alone, no holder)
	lsbUnknown = 4 // cannot tell
)

// Defaults of --stop.
const (
	defaultStopTimeout = 10 * time.Second // SIGTERM, then SIGKILL after this
	killGrace          = 5 * time.Second  // after SIGKILL, wait this long for the release
	pollInterval       = 10 * time.Millisecond
)

// isControl reports whether the command line asks for --status, --stop or
// --signal rather than a launch.
func (c *cli) isControl() bool {
	return !c.help && !c.version && (c.status || c.stop || c.signal != 0)
}

// action names the control action in messages.
func (c *cli) action() string {
	switch {
	case c.status:
		return "--status"
	case c.stop:
		return "--stop"
	}
	return "--signal"
}

// controlFlags are the options a control action takes (besides itself):
// --timeout with --stop only.
var controlFlags = map[string]bool{"pidfile": true, "lock": true, "verbose": true, "status": true, "stop": true, "signal": true}

// checkControl validates a --status, --stop or --signal command line.
func (c *cli) checkControl(fs *flagSet, rest []string) error {
	act := c.action()
	if c.status && (c.stop || c.signal != 0) {
		other := "--stop"
		if !c.stop {
			other = "--signal"
		}
		return usagef("--status conflicts with %s", other)
	}
	if len(rest) > 0 {
		return usagef("%s takes no program (got %q)", act, rest[0])
	}
	var bad []string
	for _, o := range fs.given {
		if controlFlags[o.long] || (o.long == "timeout" && c.stop) {
			continue
		}
		bad = append(bad, o.name())
	}
	if len(bad) > 0 {
		return usagef("%s does not take %s", act, strings.Join(bad, ", "))
	}
	if c.pidfile == "" && c.lockfile == "" {
		return usagef("%s needs -p/--pidfile or -l/--lock: it works by the lock", act)
	}
	if c.stop {
		switch {
		case !c.timeoutSet:
			c.timeout = defaultStopTimeout
		case c.timeout < 0:
			return usagef("--timeout: negative duration %v", c.timeout)
		}
	}
	return nil
}

// parseSignal reads a signal as a name (HUP, SIGHUP, hup) or a number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		sig := syscall.Signal(n)
		if n > 0 && (unix.SignalName(sig) != "" || (runtime.GOOS == "linux" && n <= 64)) {
			return sig, nil
		}
		return 0, usagef("--signal: %d is not a signal number", n)
	}
	name := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, usagef("--signal: %q is not a signal name or number (such as HUP, SIGUSR1 or 10)", s)
}

// signalName returns SIGHUP for syscall.SIGHUP, "signal 40" for signals
// without a name.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// lockState is what daemonize knows about the lock and the pidfile.
type lockState struct {
	lockPath      string // where the lock is: -l, else the pidfile
	lockExists    bool
	held          bool
	kernelPID     int  // the PID /proc/locks names; 0 when not visible
	pidfileExists bool // -p given and the file exists
	filePID       int  // the number in the pidfile; 0 when none or unreadable
}

// probeLock probes the lock and reads the pidfile. Its errors mean that
// daemonize cannot tell whether the program runs.
func (c *cli) probeLock() (lockState, error) {
	ls := lockState{lockPath: c.lockfile}
	if ls.lockPath == "" {
		ls.lockPath = c.pidfile
	}
	st, err := pidfile.Probe(ls.lockPath)
	if err != nil {
		return ls, err
	}
	ls.lockExists, ls.held, ls.kernelPID = st.Exists, st.Held, st.PID
	if c.pidfile != "" {
		if _, err := os.Stat(c.pidfile); err == nil {
			ls.pidfileExists = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			return ls, err
		}
		if data, err := os.ReadFile(c.pidfile); err == nil {
			ls.filePID = readPID(data)
		}
	}
	return ls, nil
}

// readPID returns the decimal PID on the first line of data, 0 if none.
func readPID(data []byte) int {
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// errHolderUnknown: the lock is held, but by no process daemonize can
// name and verify (another PID namespace, several candidates, a system
// without /proc/PID/fdinfo).
var errHolderUnknown = errors.New("cannot identify the process that holds the lock")

// holder returns the process that holds the lock, verified (see the top of
// this file): the PID the kernel names if it holds the lock, else the
// pidfile's PID if that one does, else the only process that does.
func (ls lockState) holder() (int, error) {
	for _, pid := range []int{ls.kernelPID, ls.filePID} {
		if pid <= 0 {
			continue
		}
		ok, err := holdsLock(pid, ls.lockPath)
		if errors.Is(err, errors.ErrUnsupported) {
			// No way to look inside processes: trust the kernel's PID
			// only when the pidfile names the same one.
			if ls.kernelPID > 0 && ls.kernelPID == ls.filePID {
				return ls.kernelPID, nil
			}
			return 0, errHolderUnknown
		}
		if err != nil {
			return 0, err
		}
		if ok {
			return pid, nil
		}
	}
	pids, err := lockHolders(ls.lockPath)
	if err != nil {
		return 0, err
	}
	if len(pids) == 1 {
		return pids[0], nil
	}
	if len(pids) > 1 {
		return 0, fmt.Errorf("%w: processes %v share it, and neither the kernel nor the pidfile names one of them", errHolderUnknown, pids)
	}
	return 0, errHolderUnknown
}

// controlExit maps an error of --stop or --signal to an exit code:
// 77 for permission, 69 for a holder that cannot be named, 71 otherwise.
func controlExit(err error) int {
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EPERM):
		return blivet.ExitNoPerm
	case errors.Is(err, errHolderUnknown):
		return blivet.ExitUnavailable
	}
	return blivet.ExitOSErr
}

// runControl runs --status, --stop or --signal and returns the exit code.
func runControl(c *cli, stdout, stderr io.Writer) int {
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "daemonize: "+format+"\n", args...) }
	verbose := func(format string, args ...any) {
		if c.verbose {
			say(format, args...)
		}
	}
	act := c.action()
	ls, err := c.probeLock()
	if err != nil {
		say("%s: cannot tell whether it runs: %v", act, err)
		if c.status {
			return lsbUnknown
		}
		return controlExit(err)
	}
	if !ls.held {
		code, what := lsbStopped, "not running"
		if ls.pidfileExists || (ls.lockExists && c.lockfile == "") {
			code, what = lsbStale, "not running (stale pidfile "+c.pidfile
			if ls.filePID > 0 {
				what += ", PID " + strconv.Itoa(ls.filePID) + " not signalled"
			}
			what += ")"
		}
		switch {
		case c.stop:
			verbose("%s: %s: nothing holds the lock on %s", act, what, ls.lockPath)
			return 0
		case c.status:
			say("%s", what)
		default:
			say("%s: %s: nothing holds the lock on %s", act, what, ls.lockPath)
		}
		return code
	}
	if c.status {
		pid, err := ls.holder()
		switch {
		case err == nil:
		case ls.kernelPID > 0 && !errors.Is(err, errHolderUnknown):
			// The kernel's PID could not be checked (another user's
			// process): report it as the kernel names it.
			pid = ls.kernelPID
			verbose("PID %d not verified: %v", pid, err)
		case ls.kernelPID == 0 && ls.filePID > 0:
			pid = ls.filePID // the holder is invisible here (another PID namespace)
			verbose("the holder is not visible here; the pidfile says %d", pid)
		default:
			say("running: the lock on %s is held, but %v", ls.lockPath, err)
			return lsbRunning
		}
		if ls.filePID > 0 && ls.filePID != pid {
			say("warning: the pidfile says %d, but PID %d holds the lock", ls.filePID, pid)
		}
		fmt.Fprintln(stdout, pid)
		return lsbRunning
	}
	sig := c.signal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if !c.stop {
		pid, err := ls.holder()
		var p *proc
		if err == nil {
			p, err = pinHolder(pid, ls.lockPath)
		}
		if err == nil {
			err = p.signal(sig)
			p.close()
		}
		if err != nil {
			say("%s %s: %v", act, signalName(sig), err)
			return controlExit(err)
		}
		verbose("sent %s to PID %d (holds the lock on %s)", signalName(sig), pid, ls.lockPath)
		return 0
	}
	return c.stopHolder(ls, sig, say, verbose)
}

// stopHolder sends sig to the lock holder, waits for the lock to be
// released (polling the lock, never the PID), and after c.timeout (0:
// never) sends SIGKILL to every process it signalled that still runs, and
// to the holder, and waits killGrace more. A process that takes over the
// lock meanwhile (a child that inherited it) gets the signal too. Each
// process is pinned (a pidfd on Linux) from its check to the end, so a
// holder that becomes impossible to inspect while it exits (a Go program
// whose main thread is gone) still gets the SIGKILL, and a reused PID
// never does.
func (c *cli) stopHolder(ls lockState, sig syscall.Signal, say, verbose func(string, ...any)) int {
	start := time.Now()
	var deadline, nextLook time.Time
	if c.timeout > 0 {
		deadline = start.Add(c.timeout)
	}
	pinned := map[int]*proc{}
	defer func() {
		for _, p := range pinned {
			p.close()
		}
	}()
	sent := map[int]bool{} // PIDs sent sig
	send := func(p *proc) error {
		if sent[p.pid] {
			return nil
		}
		sent[p.pid] = true
		err := p.signal(sig)
		if errors.Is(err, syscall.ESRCH) {
			return nil // it has exited meanwhile
		}
		if err == nil {
			verbose("sent %s to PID %d (holds the lock on %s)", signalName(sig), p.pid, ls.lockPath)
		}
		return err
	}
	killed := false
	for {
		if !ls.held {
			verbose("the lock on %s was released after %v", ls.lockPath, time.Since(start).Round(time.Millisecond))
			return 0
		}
		// Look for the holder at once, then every 100ms (finding a
		// holder the kernel does not name may scan /proc).
		if now := time.Now(); len(pinned) == 0 || now.After(nextLook) {
			nextLook = now.Add(100 * time.Millisecond)
			pid, err := ls.holder()
			var p *proc
			if err == nil {
				if p = pinned[pid]; p == nil {
					p, err = pinHolder(pid, ls.lockPath)
				}
			}
			switch {
			case err == nil:
				pinned[pid] = p
				if err := send(p); err != nil {
					say("--stop: %s to PID %d: %v", signalName(sig), pid, err)
					return controlExit(err)
				}
			case len(pinned) == 0:
				say("--stop: %v", err)
				return controlExit(err)
			}
			// Once one is signalled, a holder that cannot be named is
			// one that is exiting: keep polling the lock.
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			if killed {
				say("--stop: the lock on %s is still held %v after SIGKILL", ls.lockPath, killGrace)
				return blivet.ExitTempFail
			}
			verbose("still held after %v: sending SIGKILL", c.timeout)
			sig, killed, sent = syscall.SIGKILL, true, map[int]bool{}
			for _, p := range pinned {
				if err := send(p); err != nil {
					say("--stop: SIGKILL to PID %d: %v", p.pid, err)
				}
			}
			nextLook = time.Time{}
			deadline = time.Now().Add(killGrace)
			continue
		}
		time.Sleep(pollInterval)
		st, err := pidfile.Probe(ls.lockPath)
		if err != nil {
			say("--stop: %v", err)
			return controlExit(err)
		}
		ls.held, ls.kernelPID = st.Held, st.PID
	}
}
