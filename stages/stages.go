// Package stages defines the vocabulary of blivet's pipeline: the Stage
// interface, the State every stage and hook runs against, the resolved
// Config, and the Error type with its exit codes.
//
// Each default stage lives in its own package below this one
// (stages/fork, stages/setsid, ...), plus pidfile, privdrop and notify at
// the top of the module. A custom stage only has to implement Stage:
//
//	type loadConfig struct{}
//
//	func (loadConfig) Name() string                  { return "load-config" }
//	func (loadConfig) Run(s *stages.State) error     { ... }
//
// and is placed with blivet.WithStageBefore("chdir", loadConfig{}).
package stages

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"go.uber.org/multierr"
)

// Stage is one step of the daemonization pipeline.
//
// Run executes in whichever process generation reaches the stage (see
// Role). It must not assume it runs in the process that ran the previous
// stage: the fork stages re-execute the program, and the new generation
// resumes right after them with a fresh State rebuilt from the same options.
type Stage interface {
	// Name identifies the stage for ordering options, hooks and errors.
	// It must be unique within a pipeline.
	Name() string
	// Run performs the stage. An error aborts the pipeline; wrap it in an
	// *Error to choose its exit code (otherwise it is 70).
	Run(s *State) error
}

// Role tells which process generation is running a stage.
type Role int

// The process generations.
const (
	// RoleLauncher is the process the user started: it validates, runs the
	// stages up to the first fork, then waits for the daemon's outcome.
	RoleLauncher Role = iota
	// RoleIntermediate is the first re-executed child: it starts a new
	// session and re-executes once more, then exits.
	RoleIntermediate
	// RoleDaemon is the final process: not a session leader, adopted by
	// init, it runs every remaining stage and gets the *Context.
	RoleDaemon
	// RoleForeground is the calling process in foreground mode: no forks.
	RoleForeground
)

func (r Role) String() string {
	switch r {
	case RoleLauncher:
		return "launcher"
	case RoleIntermediate:
		return "intermediate"
	case RoleDaemon:
		return "daemon"
	case RoleForeground:
		return "foreground"
	}
	return "unknown"
}

// EnvVar is one configured environment variable.
type EnvVar struct{ Key, Value string }

// Config is the resolved, validated configuration every stage reads.
// Stages must treat it as read-only.
type Config struct {
	Foreground     bool          // no forks, no setsid, no pipe
	Dir            string        // working directory; "/" by default
	Umask          int           // file mode creation mask; 0o022 by default
	Stdout, Stderr string        // output files; "" means /dev/null (inherited in foreground)
	Append         bool          // append to output files instead of truncating
	Env            []EnvVar      // applied in order; later duplicates win
	CloseFDs       bool          // mark inherited fds close-on-exec; true by default
	KeepFDs        []int         // inherited fds that survive closing
	AutoNotify     bool          // Daemonize runs privdrop and notify itself
	LauncherReturn bool          // Daemonize returns in the launcher instead of exiting
	ReadyTimeout   time.Duration // 0: wait for ever

	Pidfile         string // "" means no pidfile
	Lockfile        string // separate lockfile; "" means the pidfile locks itself
	NoLock          bool   // write the pidfile without any lock
	CleanupOnSignal bool   // remove the pidfile on SIGTERM/SIGINT

	User, Group string   // privilege drop target; "" means unchanged
	ChownPaths  bool     // chown output files and the lockfile before the drop
	AmbientCaps []string // Linux capabilities kept across the drop to User (names, see privdrop.ParseCapabilities)

	Listeners []ListenerSpec // named listening sockets (the listen stage)
}

// ListenerSpec is one named listening socket of the configuration
// (blivet.WithListener).
type ListenerSpec struct{ Name, Network, Address string }

// Socket is a named socket a generation holds: bound by the listen stage
// or inherited from the previous generation of an upgrade.
type Socket struct {
	ListenerSpec
	// File is the socket, open for the life of the process.
	File *os.File
}

// Inherited is what the previous generation of an upgrade
// (blivet's Context.Upgrade) handed to this one.
type Inherited struct {
	// PID is the previous generation's PID.
	PID int
	// LockFD is the open, locked lockfile shared with the previous
	// generation, or -1.
	LockFD int
	// Sockets are the named sockets of the previous generation.
	Sockets []Socket
	// Dropped is true when the previous generation had dropped its
	// privileges: this one already runs as the target and only verifies.
	Dropped bool
}

// LockPath returns the file that carries the single-instance lock, or ""
// when there is none.
func (c *Config) LockPath() string {
	switch {
	case c.NoLock:
		return ""
	case c.Lockfile != "":
		return c.Lockfile
	default:
		return c.Pidfile
	}
}

// DropConfigured reports whether a privilege drop is configured.
func (c *Config) DropConfigured() bool { return c.User != "" || c.Group != "" }

// Line is the daemon's end of the readiness pipe to the launcher. The
// notify package implements it; fakes implement it in tests.
type Line interface {
	// Ready tells the launcher the daemon is up; the launcher exits 0.
	Ready() error
	// Fail reports err to the launcher, which prints it and exits with its code.
	Fail(err *Error) error
	// ExecPending tells the launcher that the next end-of-file means the
	// program was exec'd (CLI).
	ExecPending() error
	// ReportPID tells the launcher the daemon's PID (sent by the intermediate).
	ReportPID(pid int) error
	// File returns the pipe's write end, or nil when there is none.
	File() *os.File
	// Close closes the line without a message.
	Close() error
}

// Outcome is what the launcher learned about the daemon.
type Outcome struct {
	PID      int   // the daemon's PID, 0 if it never got that far
	ExitCode int   // 0 when the daemon said ready
	Err      error // the reported failure, nil when ready; an *Error
}

// State is the shared state of one process generation's run of the
// pipeline. The fork stages hand over to a new generation, which rebuilds
// State from the same options.
type State struct {
	// Config is the validated configuration.
	Config Config
	// Role is the generation running now.
	Role Role
	// Line is the line to the launcher; nil in the launcher and in foreground mode.
	Line Line
	// Outcome, when set by a stage, ends this generation's part of the
	// pipeline: the launcher returns or exits with it, the intermediate
	// exits 0.
	Outcome *Outcome

	// Fingerprint identifies the pipeline (stage names and types, hook
	// registration sites) so a re-executed generation can check it runs the
	// same pipeline as its parent.
	Fingerprint string
	// NextStep is the index of the pipeline step after the running one: a
	// re-executed generation resumes there.
	NextStep int
	// AfterExec, when set in the launcher, waits for the readiness of a
	// program the daemon executes (the daemonize command's --notify,
	// --ready-fd and --ready-after): it is called once the program runs,
	// with its PID, the launcher's deadline (nil: none), a channel closed
	// when the program has ended and a function saying how it ended. It
	// returns nil once the program is ready.
	AfterExec func(pid int, deadline <-chan time.Time, ended <-chan struct{}, how func() string) error

	// ResetSignals asks every re-execution to start the new generation with
	// an empty signal mask and no ignored signals (set by the signals stage).
	ResetSignals bool
	// KeepFDs are fds (beyond 0-2) that every stage and re-execution must
	// keep open at the same numbers: Config.KeepFDs plus socket-activation fds.
	KeepFDs []int
	// PassFDs, set in the launcher, are files the daemon gets at these fd
	// numbers (a program's readiness fd); the numbers must be in KeepFDs.
	// The launcher closes its copies once the daemon is started.
	PassFDs map[int]*os.File
	// HandedFDs are the fd numbers of PassFDs as every later generation
	// keeps them (from the handover marker).
	HandedFDs []int
	// ListenNames are the socket-activation names of KeepFDs' activation
	// fds, from LISTEN_FDNAMES.
	ListenNames []string
	// ListenFDs is how many activation fds (from 3) were handed over.
	ListenFDs int
	// NotifySocket is the service manager's notification socket (the
	// NOTIFY_SOCKET value), kept here once the notify stage has removed
	// the variable from the environment; "" when not yet taken or none.
	NotifySocket string
	// OwnFDs are fds the library itself holds (the lock) that the
	// close-on-exec stage must leave alone.
	OwnFDs []int
	// LockFile is the open, locked lockfile, if any.
	LockFile *os.File
	// ChownPaths are the files the privilege drop hands to the target user
	// (output files, a standalone lockfile; never the pidfile), by path,
	// for messages and records. A path without a descriptor in ChownFiles
	// is reopened under the rules of docs/security.md before its owner
	// changes.
	ChownPaths []string
	// ChownFiles are the open, checked descriptors of the files in
	// ChownPaths (close-on-exec; named by their path): the privilege drop
	// changes the owner through them (fchown), never by path, so the file
	// checked when it was opened is the file handed over. The drop closes
	// them (CloseChownFiles).
	ChownFiles []*os.File
	// Chowned is true once ChownPaths have been handed to the target user.
	Chowned bool
	// Dropped is true once privileges have been dropped.
	Dropped bool

	// Sockets are the named sockets of Config.Listeners this generation
	// holds (socket-activation fds are not listed: see ListenNames).
	Sockets []Socket
	// Inherited is set in a generation started by an upgrade; nil otherwise.
	Inherited *Inherited
	// Successor is the PID of the generation that replaced this one once
	// it is ready (upgrade): the pidfile, the lock and socket paths are
	// then its own, and cleanups must leave them alone.
	Successor int

	cleanups []func() error
}

// OnCleanup registers fn to run, in reverse order of registration, when the
// daemon closes its Context, reports an error, or fails in a later stage.
func (s *State) OnCleanup(fn func() error) { s.cleanups = append(s.cleanups, fn) }

// RunCleanups runs the registered cleanups once, newest first, and returns
// their errors combined (every cleanup runs regardless).
func (s *State) RunCleanups() error {
	var err error
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		err = multierr.Append(err, s.cleanups[i]())
	}
	s.cleanups = nil
	return err
}

// Detached reports whether this process is a re-executed generation that
// reports to a launcher over a pipe.
func (s *State) Detached() bool { return s.Line != nil }

// HandedOver reports whether this generation must leave the pidfile, the
// lock and socket paths to another one: a successor replaced it, or it is
// an upgrade's new generation that has not yet told the previous one it is
// ready.
func (s *State) HandedOver() bool {
	return s.Successor != 0 || (s.Inherited != nil && s.Line != nil && s.Line.File() != nil)
}

// PrivilegesPending reports whether a drop is configured but has not run.
func (s *State) PrivilegesPending() bool { return s.Config.DropConfigured() && !s.Dropped }

// CloseChownFiles closes State.ChownFiles and forgets them. The privilege
// drop calls it once the files were handed over (or not); a stage that
// replaces privdrop should call it too.
// HandOver records f, open and checked at path, as a file the privilege
// drop hands to the target user: its path in ChownPaths and, when a drop
// is configured, a close-on-exec copy of its descriptor (above 2) in
// ChownFiles, which the drop closes. The caller keeps f.
func (s *State) HandOver(path string, f *os.File) error {
	s.ChownPaths = append(s.ChownPaths, path)
	if !s.Config.DropConfigured() {
		return nil
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	s.ChownFiles = append(s.ChownFiles, os.NewFile(uintptr(fd), path))
	return nil
}

func (s *State) CloseChownFiles() {
	for _, f := range s.ChownFiles {
		_ = f.Close()
	}
	s.ChownFiles = nil
}
