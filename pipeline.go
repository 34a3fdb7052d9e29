package blivet

import (
	"errors"
	"os"

	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/chdir"
	"github.com/blivet-go/blivet/stages/closefds"
	"github.com/blivet-go/blivet/stages/env"
	"github.com/blivet-go/blivet/stages/fork"
	"github.com/blivet-go/blivet/stages/output"
	"github.com/blivet-go/blivet/stages/setsid"
	"github.com/blivet-go/blivet/stages/signals"
	"github.com/blivet-go/blivet/stages/stdio"
	"github.com/blivet-go/blivet/stages/umask"
)

// DefaultStages returns the default pipeline. Each stage runs in the first
// generation that reaches it; a Launcher (fork) ends its generation:
//
//	launcher      signals   clean signal state for every later generation
//	launcher      fork      starts the intermediate: raw, running the plan
//	                        of every Planner after it, or by re-executing
//	intermediate  setsid    a new session, no controlling terminal
//	intermediate  fork2     starts the daemon, not a session leader
//	daemon        umask, chdir, stdio, pidfile, env, output, closefds
//	daemon        privdrop  a Dropper: Daemonize returns before it unless
//	                        WithAutoNotify (the split)
//	daemon        notify    a Final stage: tells the launcher "ready"
//
// Hooks (WithHookBefore, WithHookAfter) run next to their stage, in the
// same generation; a hook, or a stage that is not a Planner, ends a plan.
func DefaultStages() []Stage {
	return []Stage{
		signals.New(), fork.First(), setsid.New(), fork.Second(),
		umask.New(), chdir.New(), stdio.New(), pidfile.New(), env.New(),
		output.New(), closefds.New(), privdrop.New(), notify.New(),
	}
}

// step is one entry of the flattened pipeline: a stage (with its roles)
// or a hook.
type step struct {
	slot
	hook  *hookSpec
	owner string // the stage this step belongs to
}

type pipeline struct {
	steps       []step
	fingerprint string
	split       int // Daemonize stops here without WithAutoNotify
	finalAt     int // DropPrivileges stops here: the first Final stage's first step
}

// run runs steps from c.pos up to (not including) stop. fromDaemonize
// selects what a failure does in a detached generation: report and exit
// (Daemonize) or return the error (Context methods); fatal errors always
// end the process.
func (c *Context) run(stop int, fromDaemonize bool) error {
	st := c.state
	for c.pos < stop {
		i := c.pos
		st.NextStep = i + 1
		var err error
		if p, n := c.plan(i, stop); p != nil {
			err = c.runPlanned(i, p, n)
		} else {
			err = c.runStep(c.p.steps[i], nil)
			c.pos = i + 1
		}
		if err != nil {
			var e *Error
			errors.As(err, &e)
			return c.fail(e, fromDaemonize || e.Fatal)
		}
		if st.Outcome != nil {
			if st.Role == RoleIntermediate {
				c.exit(0) // the daemon is started: let init adopt it
			}
			return nil
		}
	}
	return nil
}

// plan asks the stages after the Launcher at step i (up to stop) to plan
// their steps. It returns nil when step i is not a Launcher that can run a
// plan or no step after it can be planned; else the plan and how many
// steps after i it covers.
func (c *Context) plan(i, stop int) (*stages.Plan, int) {
	l, ok := c.p.steps[i].stage.(stages.Launcher)
	if !ok || !l.Plannable(c.state) {
		return nil, 0
	}
	st := c.state
	for _, final := range c.planForms(i, stop) {
		env := wire.Environ(os.Environ(), nil) // stages edit it in place
		// Room for a whole plan at once: an Op is large, and growing
		// the slice step by step costs fresh heap before the fork.
		p := &stages.Plan{Env: env, KeepFDs: st.KeepFDs, Final: final, Ops: make([]stages.Op, 0, planRoom)}
		paths, files := len(st.ChownPaths), len(st.ChownFiles) // undone with an abandoned plan
		n, dropPlanned := 0, false
		for j := i + 1; j < stop; j, n = j+1, n+1 {
			s := c.p.steps[j]
			pl, ok := s.stage.(stages.Planner)
			if !ok || s.hook != nil || (s.final && !dropPlanned && st.PrivilegesPending()) {
				break
			}
			before := len(p.Ops)
			if pl.Plan(st, p) != nil {
				p.Ops = p.Ops[:before]
				break
			}
			for k := before; k < len(p.Ops); k++ {
				p.Ops[k].Stage, p.Ops[k].Step = s.name(), j
			}
			dropPlanned = dropPlanned || s.drop
			if s.final && final {
				return p, n + 1
			}
		}
		if !final && n > 0 {
			p.Resume = i + 1 + n
			return p, n
		}
		abandon(p, st, paths, files)
	}
	return nil, 0
}

// planRoom is the capacity a plan's steps start with: room for the
// common plans (the command's with a pidfile and outputs has about a
// dozen steps); a longer one grows as a slice does.
const planRoom = 16

// runPlanned runs the Launcher at step i with plan p covering n steps.
func (c *Context) runPlanned(i int, p *stages.Plan, n int) error {
	err := c.runStep(c.p.steps[i], p)
	c.pos = i + 1 + n
	if err == nil && c.state.Outcome != nil {
		c.reportPlanned(c.p.steps[i+1:i+1+n], p, c.state.Outcome.Err)
	}
	return err
}
