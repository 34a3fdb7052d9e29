package blivet

import (
	"errors"
	"fmt"
	"hash/fnv"
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

// step is one entry of the flattened pipeline: a stage or a hook.
type step struct {
	stage Stage
	hook  *hookSpec
	owner string // the stage this step belongs to
}

func (s step) name() string {
	if s.hook != nil {
		return s.hook.name()
	}
	return s.stage.Name()
}

type pipeline struct {
	steps       []step
	fingerprint string
	split       int // Daemonize stops here without WithAutoNotify
	finalAt     int // DropPrivileges stops here: the first Final stage's first step
}

// build applies the stage edits and hooks to the default pipeline.
func build(c *config) (*pipeline, error) {
	list, err := applyEdits(withListenStage(DefaultStages(), c), c.edits)
	if err == nil {
		err = checkHooks(list, c.hooks)
	}
	if err != nil {
		return nil, err
	}
	p := &pipeline{}
	h := fnv.New64a()
	for _, st := range list {
		for _, when := range []string{"before", "stage", "after"} {
			for i := range c.hooks {
				if hk := &c.hooks[i]; hk.stage == st.Name() && hk.when == when {
					p.steps = append(p.steps, step{hook: hk, owner: st.Name()})
					fmt.Fprintln(h, hk.name())
				}
			}
			if when == "stage" {
				p.steps = append(p.steps, step{stage: st, owner: st.Name()})
				fmt.Fprintf(h, "stage %s %T\n", st.Name(), st)
			}
		}
	}
	p.fingerprint = fmt.Sprintf("%016x", h.Sum64())
	p.split = p.firstWith(func(st Stage) bool { _, ok := st.(stages.Dropper); return ok })
	p.finalAt = p.firstWith(func(st Stage) bool { _, ok := st.(stages.Final); return ok })
	p.split = min(p.split, p.finalAt)
	return p, nil
}

// firstWith returns the first step (its before-hooks included) of the
// first stage for which is is true, or len(p.steps).
func (p *pipeline) firstWith(is func(Stage) bool) int {
	for i, s := range p.steps {
		if s.stage != nil && is(s.stage) {
			for i > 0 && p.steps[i-1].hook != nil && p.steps[i-1].owner == s.owner {
				i--
			}
			return i
		}
	}
	return len(p.steps)
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
	for _, final := range []bool{true, false} {
		p := &stages.Plan{Env: wire.Environ(os.Environ(), nil), KeepFDs: c.state.KeepFDs, Final: final}
		n, dropPlanned := 0, false
		for j := i + 1; j < stop; j, n = j+1, n+1 {
			s := c.p.steps[j]
			pl, ok := s.stage.(stages.Planner)
			if !ok || s.hook != nil || (!dropPlanned && stages.RefuseBeforeDrop(c.state, s.stage) != nil) {
				break
			}
			before := len(p.Ops)
			if pl.Plan(c.state, p) != nil {
				p.Ops = p.Ops[:before]
				break
			}
			for k := before; k < len(p.Ops); k++ {
				p.Ops[k].Stage, p.Ops[k].Step = s.name(), j
			}
			_, drop := s.stage.(stages.Dropper)
			dropPlanned = dropPlanned || drop
			if _, isFinal := s.stage.(stages.Final); isFinal && final {
				return p, n + 1
			}
		}
		if !final && n > 0 {
			p.Resume = i + 1 + n
			return p, n
		}
		p.Done()
	}
	return nil, 0
}

// runPlanned runs the Launcher at step i with plan p covering n steps, and
// reports each planned step to the observer with what came of it.
func (c *Context) runPlanned(i int, p *stages.Plan, n int) error {
	err := c.runStep(c.p.steps[i], p)
	c.pos = i + 1 + n
	if out := c.state.Outcome; c.observer != nil && err == nil && out != nil {
		var failed *Error
		errors.As(out.Err, &failed)
		role := RoleIntermediate
		for j := i + 1; j <= i+n; j++ {
			s := c.p.steps[j]
			ev := Event{Kind: StageRan, Name: s.name(), Stage: s.owner, Role: role, Planned: true}
			if failed != nil && failed.Stage == s.name() {
				ev.Err = failed
			}
			c.observer(ev)
			if ev.Err != nil {
				break
			}
			if _, ok := s.stage.(stages.Planner); ok && isForkStep(p, j) {
				role = RoleDaemon
			}
		}
	}
	return err
}

func isForkStep(p *stages.Plan, step int) bool {
	for _, op := range p.Ops {
		if op.Step == step && op.Kind == stages.OpFork {
			return true
		}
	}
	return false
}
