package program

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/stages"
)

// Readiness says how the launcher learns that a program it did not write
// is ready. At most one of Notify, FD and After may be set; with none, the
// program is "ready" once it has been executed.
//
// With any of them the launcher exits 0 only once the program is ready.
// If the program ends first, the launcher fails with 70 saying how it
// ended ("exited with status 3", "killed by SIGSEGV"), and the pidfile is
// removed. If it reports a failure while running (ERRNO=, STOPPING=1, the
// fd closed without a newline: 70) or is not ready at the launcher's
// timeout (Config.ReadyTimeout, counted from the exec: 75), it gets
// SIGTERM (SIGKILL 5s later if it is still running), and the pidfile is
// removed once it has ended. This
// works after the double fork, although the launcher is never the
// program's parent: where the launch is planned (Linux) the
// intermediate stays the program's parent until the launcher is done and
// reports how it ended; elsewhere the end is polled and how it ended is
// not known.
type Readiness struct {
	// Notify: the program speaks the sd_notify protocol (sd_notify(3)).
	// The launcher makes a notification socket for this launch only and
	// passes it as NOTIFY_SOCKET; READY=1 from the program (or a process
	// it started) means ready, EXTEND_TIMEOUT_USEC= moves the deadline,
	// ERRNO= or STOPPING=1 before ready is a failure, STATUS= lines go to
	// Status. Once the wait is over the socket is closed: later messages
	// fail at once (never block) and never fail the launch.
	Notify bool
	// FD, when 3 or more: the s6 convention. The program gets the write
	// end of a pipe as fd FD and is ready when it writes a newline there.
	FD int
	// After: the program is ready once it is still running after this
	// long (supervisord's startsecs), for programs that speak no protocol.
	After time.Duration
	// Status, when not nil, gets the program's STATUS= lines.
	Status io.Writer
}

func (r Readiness) isZero() bool { return !r.Notify && r.FD < 3 && r.After <= 0 }

// prepare sets up the launcher's side before the fork.
func (r Readiness) prepare(s *stages.State) error {
	var wait func(pid int, deadline time.Time, ended <-chan struct{}) error
	switch {
	case r.Notify:
		w, err := r.listen()
		if err != nil {
			return err
		}
		wait = w
	case r.FD >= 3:
		rd, wr, err := os.Pipe()
		if err != nil {
			return stages.Wrap(CheckName, stages.ExitOSErr, err)
		}
		if s.PassFDs == nil {
			s.PassFDs = map[int]*os.File{}
		}
		s.PassFDs[r.FD] = wr
		s.KeepFDs = append(s.KeepFDs, r.FD)
		wait = func(pid int, deadline time.Time, ended <-chan struct{}) error {
			return awaitLine(rd, r.FD, deadline, ended)
		}
	default:
		d := r.After
		wait = func(pid int, deadline time.Time, ended <-chan struct{}) error {
			timeout, stop := deadlineTimer(deadline)
			defer stop()
			select {
			case <-time.After(d):
				select {
				case <-ended:
					return errEnded
				default:
					return nil
				}
			case <-ended:
				return errEnded
			case <-timeout:
				return errTimeout
			}
		}
	}
	c := s.Config
	s.AfterExec = func(pid int, deadline <-chan time.Time, ended <-chan struct{}, how func() string) error {
		_ = deadline // the wait keeps its own, movable deadline
		var dl time.Time
		if c.ReadyTimeout > 0 {
			dl = time.Now().Add(c.ReadyTimeout)
		}
		err := wait(pid, dl, ended)
		if err == nil {
			return nil
		}
		if err == errTimeout {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			err = stages.Errorf("program", stages.ExitTempFail, "not ready after %v; sent SIGTERM to the program, PID %d", c.ReadyTimeout, pid)
		} else if err == errEnded {
			msg := "the program ended before it was ready"
			if h := how(); strings.HasPrefix(h, "killed") {
				msg = "the program was " + h + " before it was ready"
			} else if h != "" {
				msg = "the program " + h + " before it was ready"
			}
			err = stages.Errorf("program", stages.ExitSoftware, "%s", msg)
		} else {
			// A failure the program reported (ERRNO=, STOPPING=1, its
			// readiness fd closed without a newline) while it may still
			// run: stop it, as at the timeout, so a failed launch leaves
			// nothing running.
			select {
			case <-ended:
			default:
				_ = syscall.Kill(pid, syscall.SIGTERM)
				err = stages.Errorf("program", stages.ExitCodeOf(err), "%s; sent SIGTERM to the program, PID %d", strings.TrimPrefix(err.Error(), "program: "), pid)
			}
		}
		select {
		case <-ended:
		case <-time.After(stopGrace):
			// SIGTERM ignored: a failed launch leaves nothing running.
			_ = syscall.Kill(pid, syscall.SIGKILL)
			err = stages.Errorf("program", stages.ExitCodeOf(err), "%s; it ignored SIGTERM for %v: sent SIGKILL",
				strings.TrimPrefix(err.Error(), "program: "), stopGrace)
			select {
			case <-ended:
			case <-time.After(stopGrace):
				return err // unkillable (in uninterruptible sleep): its pidfile stays true
			}
		}
		// Its pidfile, if it still names it, goes with the launcher's
		// handling of every failed launch (blivet's launcherDone).
		return err
	}
	return nil
}

// stopGrace is how long a program that failed to get ready has between
// SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

var (
	errEnded   = errors.New("ended")
	errTimeout = errors.New("timeout")
)

// awaitLine waits for a newline on r, the read end of the readiness fd.
func awaitLine(r *os.File, fd int, deadline time.Time, ended <-chan struct{}) error {
	got := make(chan error, 1)
	go func() {
		defer r.Close()
		line, err := bufio.NewReader(r).ReadString('\n')
		switch {
		case err == nil:
			got <- nil
		case line != "":
			got <- stages.Errorf("program", stages.ExitSoftware, "the program closed its readiness fd %d without a newline (wrote %q)", fd, line)
		default:
			got <- errEnded
		}
	}()
	timeout, stop := deadlineTimer(deadline)
	defer stop()
	select {
	case err := <-got:
		if err == errEnded {
			// Every copy of the write end is closed: the program ended, or
			// closed fd without saying ready.
			select {
			case <-ended:
			case <-time.After(100 * time.Millisecond):
				return stages.Errorf("program", stages.ExitSoftware, "the program closed its readiness fd %d without writing a newline", fd)
			}
		}
		return err
	case <-ended:
		// A newline written just before the end still counts.
		select {
		case err := <-got:
			if err == nil {
				return nil
			}
		case <-time.After(50 * time.Millisecond):
		}
		return errEnded
	case <-timeout:
		return errTimeout
	}
}

// listen makes the notification socket and sets NOTIFY_SOCKET; the
// returned function waits for READY=1.
func (r Readiness) listen() (func(pid int, deadline time.Time, ended <-chan struct{}) error, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, stages.Wrap(CheckName, stages.ExitOSErr, os.NewSyscallError("socket", err))
	}
	var b [8]byte
	// A name no other process can guess (it would let it say READY=1),
	// from the kernel's random pool: crypto/rand would cost every launch
	// its package initialisation.
	randomBytes(b[:])
	name := fmt.Sprintf("blivet-notify-%d-%x", os.Getpid(), b[:])
	var addr string
	if runtime.GOOS == "linux" {
		// An abstract socket: nothing on disk to clean up, reachable after
		// a privilege drop.
		addr = "@" + name
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: addr})
	} else {
		dir, derr := os.MkdirTemp("", "blivet-notify-")
		if derr != nil {
			unix.Close(fd)
			return nil, stages.Wrap(CheckName, stages.ExitOSErr, derr)
		}
		_ = os.Chmod(dir, 0o755)
		addr = dir + "/notify"
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: addr})
		if err == nil {
			_ = os.Chmod(addr, 0o666)
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, stages.Wrap(CheckName, stages.ExitOSErr, os.NewSyscallError("bind", err))
	}
	prev, hadPrev := os.LookupEnv("NOTIFY_SOCKET")
	os.Setenv("NOTIFY_SOCKET", addr)
	msgs := make(chan string, 16)
	stopped := make(chan struct{})
	go func() {
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			select {
			case <-stopped:
				return // woken once the wait is over
			default:
			}
			select {
			case msgs <- string(buf[:n]):
			case <-stopped:
				return
			}
		}
	}()
	return func(pid int, deadline time.Time, ended <-chan struct{}) error {
		defer func() {
			// The wait is over: the socket goes, so the program's later
			// messages fail at once (ECONNREFUSED, ignored by sd_notify
			// users) instead of filling a queue nobody reads and blocking
			// it, also in a launcher that lives on. The launcher's own
			// NOTIFY_SOCKET is restored.
			close(stopped)
			_ = unix.Shutdown(fd, unix.SHUT_RDWR)
			_ = unix.Sendto(fd, nil, unix.MSG_DONTWAIT, &unix.SockaddrUnix{Name: addr}) // wakes the reader
			gone := time.After(time.Second)
		drain:
			for {
				select {
				case _, ok := <-msgs:
					if !ok {
						break drain
					}
				case <-gone:
					break drain
				}
			}
			unix.Close(fd)
			if hadPrev {
				os.Setenv("NOTIFY_SOCKET", prev)
			} else {
				os.Unsetenv("NOTIFY_SOCKET")
			}
			if runtime.GOOS != "linux" {
				os.RemoveAll(filepath.Dir(addr))
			}
		}()
		// handle reads one message; done when the wait is over (err nil:
		// ready).
		handle := func(m string) (done bool, err error) {
			for _, line := range strings.Split(m, "\n") {
				k, v, _ := strings.Cut(line, "=")
				switch k {
				case "READY":
					if v == "1" {
						return true, nil
					}
				case "STATUS":
					if r.Status != nil {
						fmt.Fprintf(r.Status, "daemonize: status: %s\n", v)
					}
				case "ERRNO":
					n, _ := strconv.Atoi(v)
					return true, stages.Errorf("program", stages.ExitSoftware, "the program reported a failure before it was ready: ERRNO=%s (%v)", v, syscall.Errno(n))
				case "STOPPING":
					if v == "1" {
						return true, stages.Errorf("program", stages.ExitSoftware, "the program said STOPPING=1 before it was ready")
					}
				case "EXTEND_TIMEOUT_USEC":
					if us, err := strconv.ParseUint(v, 10, 63); err == nil && !deadline.IsZero() {
						if ext := time.Now().Add(time.Duration(us) * time.Microsecond); ext.After(deadline) {
							deadline = ext
						}
					}
				}
			}
			return false, nil
		}
		for {
			timeout, stop := deadlineTimer(deadline)
			select {
			case m, ok := <-msgs:
				stop()
				if !ok {
					return stages.Errorf("program", stages.ExitOSErr, "the notification socket failed")
				}
				if done, err := handle(m); done {
					return err
				}
			case <-ended:
				stop()
				// A READY=1 sent just before the end still counts: the
				// datagram may be queued, or with the reader.
				grace := time.After(50 * time.Millisecond)
				for {
					select {
					case m, ok := <-msgs:
						if !ok {
							return errEnded
						}
						if done, err := handle(m); done {
							return err
						}
					case <-grace:
						return errEnded
					}
				}
			case <-timeout:
				return errTimeout
			}
		}
	}, nil
}
