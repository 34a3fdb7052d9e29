package blivet

import (
	"encoding/hex"
	"hash/fnv"
	"reflect"

	"github.com/blivet-go/blivet/stages"
)

func (s step) name() string {
	if s.hook != nil {
		return s.hook.name()
	}
	return s.stage.Name()
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
	for _, sl := range list {
		name := sl.stage.Name()
		for _, when := range []string{"before", "stage", "after"} {
			for i := range c.hooks {
				if hk := &c.hooks[i]; hk.stage == name && hk.when == when {
					p.steps = append(p.steps, step{hook: hk, owner: name})
					h.Write([]byte(hk.name() + "\n"))
				}
			}
			if when == "stage" {
				p.steps = append(p.steps, step{slot: sl, owner: name})
				h.Write([]byte("stage " + name + " " + reflect.TypeOf(sl.stage).String() + "\n"))
			}
		}
	}
	p.fingerprint = hex.EncodeToString(h.Sum(nil)) // 16 digits, as %016x of Sum64
	p.finalAt = p.firstWith(func(s step) bool { return s.final })
	p.split = min(p.firstWith(func(s step) bool { return s.drop }), p.finalAt)
	return p, nil
}

// firstWith returns the first step (its before-hooks included) of the
// first stage for which is is true, or len(p.steps).
func (p *pipeline) firstWith(is func(step) bool) int {
	for i, s := range p.steps {
		if s.stage != nil && is(s) {
			for i > 0 && p.steps[i-1].hook != nil && p.steps[i-1].owner == s.owner {
				i--
			}
			return i
		}
	}
	return len(p.steps)
}

// planForms returns the plans worth trying from the Launcher at step i: a
// Final one first when every step up to a Final stage says (without side
// effects) it can be planned, then one followed by a Go daemon.
func (c *Context) planForms(i, stop int) []bool {
	// First by type alone: the checks below may make system calls, and
	// are worth it only when a Final stage can be reached at all.
	end := -1
	for j := i + 1; j < stop; j++ {
		s := c.p.steps[j]
		if _, ok := s.stage.(stages.Planner); !ok || s.hook != nil {
			break
		}
		if s.final {
			end = j
			break
		}
	}
	for j := i + 1; j <= end; j++ {
		if pc, ok := c.p.steps[j].stage.(stages.PlanChecker); ok && !pc.CanPlan(c.state, true) {
			return []bool{false}
		}
	}
	if end < 0 {
		return []bool{false}
	}
	return []bool{true, false}
}

// abandon undoes a plan that is not run: its files closed, what its
// planning made undone, and the chown paths and descriptors its stages
// recorded beyond the first paths and files dropped (and closed).
func abandon(p *stages.Plan, st *State, paths, files int) {
	p.Done()
	p.Failed(0)
	if len(st.ChownFiles) > files {
		for _, f := range st.ChownFiles[files:] {
			f.Close()
		}
		st.ChownFiles = st.ChownFiles[:files]
	}
	st.ChownPaths = st.ChownPaths[:min(paths, len(st.ChownPaths))]
}
