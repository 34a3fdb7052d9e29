// Package notify is the readiness pipe between a daemon and the process
// that launched it, and the pipeline stage that says "ready".
//
// The launcher creates a pipe and keeps its read end; the write end travels
// through every re-execution to the daemon. The daemon writes one of a few
// line records, each starting with "blivet:":
//
//	blivet:pid 1234                  the daemon's PID (sent by the intermediate)
//	blivet:ready                     the daemon is up: the launcher exits 0
//	blivet:error 73 pidfile "msg"    a failure: the launcher prints it, exits 73
//	blivet:exec                      exec pending: the next EOF means success
//
// Anything else on the pipe is crash output (a Go panic carried by
// runtime/debug.SetCrashOutput) and is shown by the launcher. End of file
// without "ready" (or "exec" first) means the daemon died, exited or
// returned before it was ready: the launcher reports it and exits 70, never 0.
package notify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/systemd"
)

const (
	prefix    = "blivet:"
	recPID    = "pid"
	recReady  = "ready"
	recError  = "error"
	recExec   = "exec"
	stageName = "notify"
)

// Pipe is the daemon's end of the readiness pipe. It implements stages.Line.
type Pipe struct {
	mu   sync.Mutex
	f    *os.File
	done bool
}

var _ stages.Line = (*Pipe)(nil)

// NewPipe wraps the pipe's write end f.
func NewPipe(f *os.File) *Pipe { return &Pipe{f: f} }

// File returns the write end, or nil once the line is closed.
func (p *Pipe) File() *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	return p.f
}

func (p *Pipe) send(rec string, final bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return stages.Errorf(stageName, stages.ExitSoftware, "the launcher was already told the outcome")
	}
	_, err := p.f.Write([]byte(prefix + rec + "\n"))
	if final {
		p.done = true
		debug.SetCrashOutput(nil, debug.CrashOptions{})
		p.f.Close()
	}
	if err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return stages.Errorf(stageName, stages.ExitOSErr, "the launcher is gone: %w", err)
		}
		return stages.Wrap(stageName, stages.ExitOSErr, err)
	}
	return nil
}

// Ready tells the launcher the daemon is up and closes the line.
func (p *Pipe) Ready() error { return p.send(recReady, true) }

// Fail reports e to the launcher and closes the line.
func (p *Pipe) Fail(e *stages.Error) error {
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
	}
	stage := e.Stage
	if stage == "" {
		stage = "-"
	}
	return p.send(fmt.Sprintf("%s %d %s %s", recError, e.Code, strconv.Quote(stage), strconv.Quote(msg)), true)
}

// ExecPending tells the launcher that the next end of file means the
// program was exec'd. The line stays open; exec closes it (close-on-exec).
func (p *Pipe) ExecPending() error { return p.send(recExec, false) }

// ReportPID tells the launcher the daemon's PID.
func (p *Pipe) ReportPID(pid int) error { return p.send(recPID+" "+strconv.Itoa(pid), false) }

// CarryCrashOutput makes a fatal panic's report go to the launcher too,
// until the line is closed.
func (p *Pipe) CarryCrashOutput() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		_ = debug.SetCrashOutput(p.f, debug.CrashOptions{})
	}
}

// Close closes the line without a message: the launcher sees EOF.
func (p *Pipe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	debug.SetCrashOutput(nil, debug.CrashOptions{})
	return p.f.Close()
}

// Await reads the launcher's end r until the outcome is known: ready, a
// reported error, end of file, or timeout (0 waits for ever). pidHint is
// signalled on timeout if the daemon never reported its own PID.
func Await(r io.Reader, timeout time.Duration, pidHint int) stages.Outcome {
	var (
		mu  sync.Mutex
		pid int
	)
	done := make(chan stages.Outcome, 1)
	go func() {
		br := bufio.NewReader(r)
		var crash strings.Builder
		execPending := false
		for {
			line, err := br.ReadString('\n')
			if rec, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), prefix); ok && strings.HasSuffix(line, "\n") {
				kind, rest, _ := strings.Cut(rec, " ")
				switch kind {
				case recPID:
					n, _ := strconv.Atoi(rest)
					mu.Lock()
					pid = n
					mu.Unlock()
				case recReady:
					done <- stages.Outcome{PID: pidOf(&mu, &pid)}
					return
				case recExec:
					execPending = true
				case recError:
					done <- stages.Outcome{PID: pidOf(&mu, &pid), Err: parseError(rest)}
					return
				default:
					crash.WriteString(line)
				}
			} else {
				crash.WriteString(line)
			}
			if err != nil {
				p := pidOf(&mu, &pid)
				if execPending && crash.Len() == 0 {
					done <- stages.Outcome{PID: p}
					return
				}
				msg := "the daemon exited before it was ready"
				if c := strings.TrimSpace(crash.String()); c != "" {
					msg += ":\n" + c
				}
				done <- stages.Outcome{PID: p, Err: stages.Errorf("daemon", stages.ExitSoftware, "%s", msg)}
				return
			}
		}
	}()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	var out stages.Outcome
	select {
	case out = <-done:
	case <-timer:
		p := pidOf(&mu, &pid)
		out = stages.Outcome{PID: p, Err: stages.Errorf("daemon", stages.ExitTempFail,
			"not ready after %v; %s", timeout, terminate(p, pidHint))}
	}
	out.ExitCode = stages.ExitCodeOf(out.Err)
	return out
}

// terminate sends SIGTERM to the daemon that did not get ready in time and
// says what it did. When the daemon has not told its PID yet (it is still
// in the code before Daemonize), the intermediate pidHint has made itself
// a session and process group leader and the daemon is in its group, even
// once the intermediate has exited (it stays a zombie until the launcher
// reaps it): the group is signalled, or the intermediate itself if it has
// not called setsid yet.
func terminate(pid, pidHint int) string {
	switch {
	case pid > 0:
		_ = syscall.Kill(pid, syscall.SIGTERM)
		return fmt.Sprintf("sent SIGTERM to the daemon, PID %d", pid)
	case pidHint > 0 && syscall.Kill(-pidHint, syscall.SIGTERM) == nil:
		return fmt.Sprintf("sent SIGTERM to the daemon's process group %d (its PID was not known yet)", pidHint)
	case pidHint > 0:
		_ = syscall.Kill(pidHint, syscall.SIGTERM)
		return fmt.Sprintf("sent SIGTERM to the intermediate, PID %d", pidHint)
	}
	return "no process to signal"
}

func pidOf(mu *sync.Mutex, pid *int) int {
	mu.Lock()
	defer mu.Unlock()
	return *pid
}

func parseError(rest string) error {
	codeStr, rest, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || code < 1 || code > 255 {
		code = stages.ExitSoftware
	}
	stage, rest, err := unquotePrefix(rest)
	if err != nil {
		return stages.Errorf("daemon", stages.ExitSoftware, "garbled error report %q", rest)
	}
	if stage == "-" {
		stage = ""
	}
	msg, _, err := unquotePrefix(strings.TrimPrefix(rest, " "))
	if err != nil {
		msg = rest
	}
	// Records from raw (runtime-less) children carry a bare errno number.
	if head, num, ok := strings.Cut(msg, "errno="); ok {
		if n, err := strconv.Atoi(num); err == nil {
			msg = head + syscall.Errno(n).Error()
		}
	}
	return &stages.Error{Stage: stage, Code: code, Err: errors.New(msg)}
}

func unquotePrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", s, err
	}
	u, err := strconv.Unquote(q)
	return u, s[len(q):], err
}

// RefuseBeforeDrop returns an error (exit code 70) while a configured
// privilege drop has not run: a daemon never reports ready as root by
// mistake.
func RefuseBeforeDrop(s *stages.State) error {
	if !s.PrivilegesPending() {
		return nil
	}
	return stages.Errorf(stageName, stages.ExitSoftware,
		"refusing to report ready before the configured privilege drop (user %q, group %q): call DropPrivileges first",
		s.Config.User, s.Config.Group)
}

// Stage is the notify stage: it tells the launcher the daemon is ready.
// It refuses while a configured privilege drop has not run, so a daemon
// never reports ready as root by mistake.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the notify stage.
func New() *Stage { return &Stage{} }

// Name returns "notify".
func (*Stage) Name() string { return stageName }

// Run tells the service manager (when NOTIFY_SOCKET is set) and then the
// launcher (if any) that the daemon is ready.
//
// Under a service manager it sends READY=1 with MAINPID set to this
// process (in daemon mode the daemon, so a Type=notify unit follows it
// with NotifyAccess=all), keeps the address in State.NotifySocket and
// removes NOTIFY_SOCKET from the environment so the daemon's children do
// not inherit it. Not running under a service manager is not an error; a
// failed send is (71), and the launcher is then not told ready. A wrapper
// whose executed program notifies itself (the daemonize CLI) replaces
// this stage.
func (*Stage) Run(s *stages.State) error {
	if err := RefuseBeforeDrop(s); err != nil {
		return err
	}
	if socket, ok := os.LookupEnv(systemd.EnvNotifySocket); ok {
		os.Unsetenv(systemd.EnvNotifySocket)
		if socket != "" {
			s.NotifySocket = socket
			if err := systemd.Send(socket, systemd.Ready+"\n"+systemd.MainPID(os.Getpid())); err != nil {
				return stages.Wrap(stageName, stages.ExitOSErr, err)
			}
		}
	}
	if s.Line == nil {
		return nil
	}
	return s.Line.Ready()
}
