// Package output provides the stage that sends stdout and stderr to files.
//
// Files are created with mode 0644 (subject to the umask), truncated unless
// Config.Append, and opened close-on-exec before being moved to fd 1 or 2.
// The same path for both shares one open file, so lines interleave in order.
// The paths are recorded for the privilege drop, which hands them to the
// target user.
package output

import (
	"os"

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
func (*Stage) Plan(s *stages.State, p *stages.Plan) error {
	if !p.Final {
		return stages.ErrNoRawForm
	}
	for _, path := range []string{s.Config.Stdout, s.Config.Stderr} {
		if st, err := os.Stat(path); path != "" && err == nil && st.Mode()&os.ModeNamedPipe != 0 {
			return stages.ErrNoRawForm
		}
	}
	opened := map[string]*os.File{}
	var chown []string
	for i, path := range []string{s.Config.Stdout, s.Config.Stderr} {
		if path == "" {
			continue
		}
		f, ok := opened[path]
		if !ok {
			var err error
			if f, err = Open(path, s.Config.Append); err != nil {
				for _, f := range opened {
					f.Close()
				}
				return stages.Wrap(Name, stages.ExitCantCreate, err)
			}
			opened[path] = f
			chown = append(chown, path)
			p.OnDone(f.Close)
		}
		p.Add(stages.Op{Kind: stages.OpDup, File: f, Num: i + 1})
	}
	s.ChownPaths = append(s.ChownPaths, chown...)
	return nil
}

// Open opens path for output, appending or truncating.
func Open(path string, appendTo bool) (*os.File, error) {
	flags := os.O_WRONLY | os.O_CREATE
	if appendTo {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	return os.OpenFile(path, flags, 0o644)
}

// Run opens the files and moves them onto fds 1 and 2.
func (*Stage) Run(s *stages.State) error {
	targets := []struct {
		path string
		fd   int
	}{{s.Config.Stdout, 1}, {s.Config.Stderr, 2}}
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
				return stages.Wrap(Name, stages.ExitCantCreate, err)
			}
			opened[t.path] = f
			s.ChownPaths = append(s.ChownPaths, t.path)
		}
		if err := sys.Dup2(int(f.Fd()), t.fd); err != nil {
			return stages.Wrap("output", stages.ExitCantCreate, os.NewSyscallError("dup2", err))
		}
	}
	return nil
}
