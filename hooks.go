package blivet

import (
	"errors"
	"fmt"
	"time"

	"github.com/blivet-go/blivet/stages"
)

// HookFunc is a function fired between stages. It runs in the process
// generation that runs the stage it is attached to, against that
// generation's State. An error (or a panic) aborts the pipeline and is
// reported like a stage failure, naming the hook's registration site.
type HookFunc func(s *State) error

type hookSpec struct {
	when  string // "before" or "after"
	stage string
	fn    HookFunc
	site  string
}

func (h hookSpec) name() string {
	return fmt.Sprintf("hook %s %s (%s)", h.when, h.stage, h.site)
}

// WithHookBefore fires fn just before the stage called stage runs. Hooks
// before "privdrop" are where privileged initialisation goes (binding :80,
// opening root-owned files) with WithAutoNotify. Repeated use is additive;
// hooks on one stage fire in registration order.
func WithHookBefore(stage string, fn HookFunc) Option {
	h := hookSpec{"before", stage, fn, site(1)}
	return option(func(c *config) { c.hooks = append(c.hooks, h) }, "WithHookBefore(%s) at %s", stage, h.site)
}

// WithHookAfter fires fn right after the stage called stage. After a fork
// stage, the hook fires in the new generation (after "fork": in the
// intermediate; after "fork2": in the daemon). Repeated use is additive.
func WithHookAfter(stage string, fn HookFunc) Option {
	h := hookSpec{"after", stage, fn, site(1)}
	return option(func(c *config) { c.hooks = append(c.hooks, h) }, "WithHookAfter(%s) at %s", stage, h.site)
}

// EventKind tells what an Event reports.
type EventKind int

// Kinds of events.
const (
	StageRan EventKind = iota // a stage ran (or failed)
	HookRan                   // a hook ran (or failed)
	Launched                  // the launcher learned the outcome: PID and Err
)

func (k EventKind) String() string {
	switch k {
	case HookRan:
		return "hook"
	case Launched:
		return "launched"
	}
	return "stage"
}

// Event reports one pipeline step to the observer set with WithObserver.
type Event struct {
	Kind     EventKind
	Name     string        // the stage's name, or the hook's description
	Stage    string        // the stage the step belongs to
	Role     stages.Role   // the generation it ran in
	Err      error         // nil on success
	Duration time.Duration // how long it took; 0 for a planned step
	// PID is the daemon's PID, for Launched.
	PID int
	// Planned is true for a step the launcher planned and a process
	// without a Go runtime ran (see stages.Plan); it is reported by the
	// launcher once the outcome is known.
	Planned bool
}

func (e Event) String() string {
	s := fmt.Sprintf("[%v] %s (%v)", e.Role, e.Name, e.Duration.Round(time.Microsecond))
	if e.Kind == Launched {
		s = fmt.Sprintf("[%v] launched PID %d", e.Role, e.PID)
	}
	if e.Planned {
		s = fmt.Sprintf("[%v] %s (planned)", e.Role, e.Name)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// reportPlanned tells the observer about each planned step, once the
// launcher knows what came of them: the failed one with its error, none
// after it. Steps up to the second fork ran in the intermediate.
func (c *Context) reportPlanned(steps []step, p *stages.Plan, outErr error) {
	if c.observer == nil {
		return
	}
	var failed *Error
	errors.As(outErr, &failed)
	role := RoleIntermediate
	for _, s := range steps {
		ev := Event{Kind: StageRan, Name: s.name(), Stage: s.owner, Role: role, Planned: true}
		if failed != nil && failed.Stage == s.name() {
			ev.Err = failed
		}
		c.observer(ev)
		if ev.Err != nil {
			return
		}
		for _, op := range p.Ops {
			if op.Stage == s.name() && op.Kind == stages.OpFork {
				role = RoleDaemon
			}
		}
	}
}
