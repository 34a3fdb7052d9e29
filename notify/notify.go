// Package notify is the readiness pipe between a daemon and the process
// that launched it, and the pipeline stage that says "ready".
//
// The launcher creates a pipe and keeps its read end; the write end travels
// through every re-execution to the daemon. The daemon writes records in
// the encoding of package internal/wire: its PID, "ready", an error with
// its stage and exit code, "exec pending" (the daemonize command), or a
// failed plan step of a process without a Go runtime. Anything else on the
// pipe is crash output (a Go panic carried by runtime/debug.SetCrashOutput)
// and is shown by the launcher. End of file without "ready" (or "exec
// pending" first) means the daemon died, exited or returned before it was
// ready: the launcher reports it and exits 70, never 0.
package notify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/systemd"
)

const stageName = "notify"

// Name is the notify stage's name.
const Name = stageName

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

func (p *Pipe) send(r wire.Record, final bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return stages.Errorf(stageName, stages.ExitSoftware, "the launcher was already told the outcome")
	}
	_, err := p.f.Write(wire.Encode(r))
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
func (p *Pipe) Ready() error { return p.send(wire.Record{Kind: wire.KindReady}, true) }

// Fail reports e to the launcher and closes the line.
func (p *Pipe) Fail(e *stages.Error) error {
	return p.send(wire.Record{Kind: wire.KindError, Err: e}, true)
}

// ExecPending tells the launcher that the next end of file means the
// program was exec'd. The line stays open; exec closes it (close-on-exec).
func (p *Pipe) ExecPending() error { return p.send(wire.Record{Kind: wire.KindExec}, false) }

// ReportPID tells the launcher the daemon's PID.
func (p *Pipe) ReportPID(pid int) error {
	return p.send(wire.Record{Kind: wire.KindPID, PID: pid}, false)
}

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
// signalled on timeout if the daemon never reported its own PID. It is
// Waiting{Timeout: timeout, PIDHint: pidHint}.Await(r).
func Await(r io.Reader, timeout time.Duration, pidHint int) stages.Outcome {
	return Waiting{Timeout: timeout, PIDHint: pidHint}.Await(r)
}

// Waiting is how a launcher waits for its daemon.
type Waiting struct {
	// Timeout gives up after this long (0 waits for ever): the daemon gets
	// SIGTERM and the outcome has exit code 75.
	Timeout time.Duration
	// PIDHint is signalled on timeout when the daemon never told its PID:
	// the intermediate, whose process group the daemon is in.
	PIDHint int
	// Explain turns a failed plan step (a raw record: the step's index in
	// the plan and an errno) into that stage's error; nil reports the
	// errno with exit code 71.
	Explain func(step int, errno syscall.Errno) error
	// EndOf, when set, watches the daemon's end: the channel is closed
	// when it has ended (every thread), and how then says how ("exited
	// with status 3"), or "" when that is not known. Without it the end
	// is polled and how it ended is not known.
	EndOf func(pid int) (ended <-chan struct{}, how func() string)
	// AfterExec, when set, is called once the daemon has exec'd a program
	// (exec pending, then end of file) to wait for that program's own
	// readiness; ended is closed when the program has ended, and describe
	// then says how. It returns nil once the program is ready.
	AfterExec func(pid int, deadline <-chan time.Time, ended <-chan struct{}, describe func() string) error
	// GoneWithin bounds the wait, after a failure, for the daemon to be
	// gone (every thread) before the outcome is returned; 0 means 5s.
	GoneWithin time.Duration
}

// Await reads r until the outcome is known; see Waiting.
func (w Waiting) Await(r io.Reader) stages.Outcome {
	quit := make(chan struct{})
	defer close(quit)
	var deadline <-chan time.Time
	if w.Timeout > 0 {
		t := time.NewTimer(w.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	var (
		mu  sync.Mutex
		pid int
	)
	pidNow := func() int { mu.Lock(); defer mu.Unlock(); return pid }
	type result struct {
		err   error
		execd bool
		died  bool // end of file before ready
	}
	// read reads records until one settles the launch.
	read := func() result {
		br := bufio.NewReaderSize(r, 512) // records are short; longer lines still read whole
		var crash strings.Builder
		execPending := false
		for {
			line, err := br.ReadString('\n')
			if rec, ok := wire.Decode(strings.TrimSuffix(line, "\n")); ok && strings.HasSuffix(line, "\n") {
				switch rec.Kind {
				case wire.KindPID:
					mu.Lock()
					pid = rec.PID
					mu.Unlock()
				case wire.KindReady:
					return result{}
				case wire.KindExec:
					execPending = true
				case wire.KindError:
					return result{err: rec.Err}
				case wire.KindRaw:
					return result{err: w.explain(rec.Step, rec.Errno)}
				}
			} else {
				crash.WriteString(line)
			}
			if err != nil {
				if execPending && crash.Len() == 0 {
					return result{execd: true}
				}
				msg := "the daemon exited before it was ready"
				if c := strings.TrimSpace(crash.String()); c != "" {
					msg += ":\n" + c
				}
				return result{err: errors.New(msg), died: true}
			}
		}
	}
	var out stages.Outcome
	var ended <-chan struct{}
	var how func() string
	watch := func() {
		if ended == nil {
			ended, how = w.watchEnd(pidNow(), quit)
		}
	}
	// Without a deadline the records are read here: no goroutine to
	// hand them over (the CLI's launch reads them all at once).
	var res result
	timedOut := false
	if deadline == nil {
		res = read()
	} else {
		done := make(chan result, 1)
		go func() { done <- read() }()
		select {
		case res = <-done:
		case <-deadline:
			timedOut = true
		}
	}
	if timedOut {
		out.PID = pidNow()
		out.Err = stages.Errorf("daemon", stages.ExitTempFail, "not ready after %v; %s", w.Timeout, terminate(out.PID, w.PIDHint))
	} else {
		out.PID = pidNow()
		switch {
		case res.execd && w.AfterExec != nil:
			watch()
			out.Err = w.AfterExec(out.PID, deadline, ended, how)
		case res.died:
			watch()
			out.Err = stages.Errorf("daemon", stages.ExitSoftware, "%s", w.describeEnd(res.err.Error(), ended, how))
		default:
			out.Err = res.err
		}
	}
	if out.Err != nil {
		var e *stages.Error
		if !errors.As(out.Err, &e) {
			out.Err = stages.Wrap("daemon", stages.ExitSoftware, out.Err)
		}
		if out.PID > 0 {
			watch()
			w.awaitGone(out.PID, ended)
		}
	}
	out.ExitCode = stages.ExitCodeOf(out.Err)
	return out
}

func (w Waiting) explain(step int, errno syscall.Errno) error {
	if w.Explain != nil {
		if err := w.Explain(step, errno); err != nil {
			return err
		}
	}
	return stages.Errorf("daemon", stages.ExitOSErr, "launch step %d: %w", step, errno)
}

// watchEnd starts watching pid's end: closed when every thread of it is
// gone. how says how it ended, when that is known.
func (w Waiting) watchEnd(pid int, quit <-chan struct{}) (<-chan struct{}, func() string) {
	if w.EndOf != nil {
		return w.EndOf(pid)
	}
	ch := make(chan struct{})
	if pid <= 0 {
		close(ch)
		return ch, func() string { return "" }
	}
	go func() {
		defer close(ch)
		// Until the end, or until Await has returned (then nobody needs
		// to know, and a launcher that lives on polls no longer).
		sys.WaitGone(pid, 0, quit)
	}()
	return ch, func() string { return "" }
}

// EndFrom returns an EndOf that learns the daemon's end from r, where its
// waiting parent writes a wire "ended" record (see internal/rawfork), and
// waits for every thread to be gone.
func EndFrom(r io.Reader) func(pid int) (<-chan struct{}, func() string) {
	return func(pid int) (<-chan struct{}, func() string) {
		ch := make(chan struct{})
		var how string
		var mu sync.Mutex
		go func() {
			defer close(ch)
			line, _ := bufio.NewReader(r).ReadString('\n')
			rec, ok := wire.Decode(strings.TrimSuffix(line, "\n"))
			if !ok || rec.Kind != wire.KindEnded {
				return // the waiter was ended: the program was ready
			}
			mu.Lock()
			how = sys.DescribeStatus(rec.Status)
			mu.Unlock()
			if pid > 0 {
				sys.WaitGone(pid, 0, nil)
			}
		}()
		return ch, func() string { mu.Lock(); defer mu.Unlock(); return how }
	}
}

// describeEnd adds how the daemon ended, when it is known within a moment.
func (w Waiting) describeEnd(msg string, ended <-chan struct{}, how func() string) string {
	if w.EndOf == nil {
		return msg
	}
	select {
	case <-ended:
	case <-time.After(w.goneWithin()):
	}
	if s := how(); s != "" {
		head, tail, _ := strings.Cut(msg, ":\n")
		msg = head + " (" + s + ")"
		if tail != "" {
			msg += ":\n" + tail
		}
	}
	return msg
}

func (w Waiting) goneWithin() time.Duration {
	if w.GoneWithin > 0 {
		return w.GoneWithin
	}
	return 5 * time.Second
}

// awaitGone waits, bounded, for a daemon that failed to be gone, so the
// launcher never returns while it still runs (a service manager would kill
// it as a leftover).
func (w Waiting) awaitGone(pid int, ended <-chan struct{}) {
	select {
	case <-ended:
	case <-time.After(w.goneWithin()):
	}
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

// Stage is the notify stage: it tells the launcher the daemon is ready.
// It is a stages.Final stage: the pipeline never runs it while a
// configured privilege drop has not run, so a daemon never reports ready
// as root by mistake.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the notify stage.
func New() *Stage { return &Stage{} }

// Final marks notify as the end of the app's pipeline: it never runs
// while a configured privilege drop is pending.
func (*Stage) Final() {}

var _ stages.Final = (*Stage)(nil)

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
