// Package output provides the stage that sends stdout and stderr to files.
//
// Files are opened through package internal/safefile, under the rules of
// docs/security.md: the last path component must not be a symbolic link,
// a file with other hard links, a directory, a socket or a device other
// than /dev/null is refused (exit code 73, naming the path and the reason)
// before anything is truncated, and a named pipe is accepted (the open
// waits for a reader). Files are created with mode 0644 (subject to the
// umask), truncated through the descriptor after the checks unless
// Config.Append, and opened close-on-exec before being moved to fd 1 or 2.
// The same path for both shares one open file, so lines interleave in
// order. The paths are recorded in State.ChownPaths and, when a privilege
// drop is configured, the checked descriptors in State.ChownFiles: the
// drop hands those very files to the target user (fchown).
package output

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/safefile"
	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/stages"
)

// Stage opens the configured output files.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the output stage.
func New() *Stage { return &Stage{} }

// Name returns "output".
func (*Stage) Name() string { return Name }

// Name is the stage's name.
const Name = "output"

var _ stages.Planner = (*Stage)(nil)

// Plan opens the files in the launcher, under the same rules as Run, and
// has the daemon child move them onto fds 1 and 2. Only in a plan that
// ends with another program; a named pipe (whose open waits for a reader)
// is opened by Run in the daemon instead, where the launcher's timeout
// covers it.
func (st *Stage) Plan(s *stages.State, p *stages.Plan) error {
	if !st.CanPlan(s, p.Final) {
		return stages.ErrNoRawForm
	}
	opened := map[string]*os.File{}
	var truncates []*os.File
	for i, path := range []string{s.Config.Stdout, s.Config.Stderr} {
		if path == "" {
			continue
		}
		f, ok := opened[path]
		if !ok {
			var err error
			// Opened under the same rules, but truncated by the daemon
			// child once it holds the lock: a launch that loses the lock to
			// a running instance changes nothing of that instance's files.
			if f, err = open(path, s.Config.Append, false); err != nil {
				for _, f := range opened {
					f.Close()
				}
				return err
			}
			opened[path] = f
			p.OnDone(f.Close)
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && !s.Config.Append {
				truncates = append(truncates, f)
			}
			if err := s.HandOver(path, f); err != nil {
				return stages.Wrap(Name, stages.ExitCantCreate, err)
			}
		}
		p.Add(stages.Op{Kind: stages.OpDup, File: f, Num: i + 1})
	}
	for _, f := range truncates {
		p.Add(stages.Op{Kind: stages.OpTruncate, File: f})
	}
	return nil
}

// CanPlan reports whether Plan would plan: in a Final plan, without a
// named pipe among the outputs.
func (*Stage) CanPlan(s *stages.State, final bool) bool {
	if !final {
		return false
	}
	for i, path := range []string{s.Config.Stdout, s.Config.Stderr} {
		if path == "" || (i == 1 && path == s.Config.Stdout) {
			continue
		}
		if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeNamedPipe != 0 {
			return false
		}
	}
	return true
}

// Open opens path for output, appending or truncating, under the rules in
// the package documentation. Errors are *stages.Error values with code 73
// naming the "output" stage, the path and the reason; a refused file is
// neither truncated nor changed.
func Open(path string, appendTo bool) (*os.File, error) { return open(path, appendTo, !appendTo) }

func open(path string, appendTo, truncate bool) (*os.File, error) {
	f, err := safefile.Open(path, safefile.Spec{
		Stage:     "output",
		What:      "output file",
		Access:    unix.O_WRONLY,
		Append:    appendTo,
		Create:    true,
		Perm:      0o644,
		Truncate:  truncate,
		Allow:     safefile.Regular | safefile.FIFO | safefile.DevNull,
		BlockFIFO: true,
	})
	if err != nil {
		return nil, err
	}
	return f.OSFile(), nil
}

// Run opens the files and moves them onto fds 1 and 2.
func (*Stage) Run(s *stages.State) error {
	targets := []struct {
		path string
		fd   int
	}{{s.Config.Stdout, 1}, {s.Config.Stderr, 2}}
	keep := s.Config.DropConfigured()
	opened := map[string]*os.File{}
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	for _, t := range targets {
		if t.path == "" {
			continue
		}
		f, ok := opened[t.path]
		if !ok {
			var err error
			if f, err = Open(t.path, s.Config.Append); err != nil {
				return err
			}
			opened[t.path] = f
		}
		if err := sys.Dup2(int(f.Fd()), t.fd); err != nil {
			return stages.Wrap("output", stages.ExitCantCreate, os.NewSyscallError("dup2", err))
		}
	}
	for _, t := range targets {
		f, ok := opened[t.path]
		if !ok {
			continue
		}
		delete(opened, t.path)
		s.ChownPaths = append(s.ChownPaths, t.path)
		if keep {
			s.ChownFiles = append(s.ChownFiles, f)
		} else {
			f.Close()
		}
	}
	return nil
}
