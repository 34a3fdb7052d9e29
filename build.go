package blivet

import (
	"fmt"
	"hash/fnv"
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
					fmt.Fprintln(h, hk.name())
				}
			}
			if when == "stage" {
				p.steps = append(p.steps, step{slot: sl, owner: name})
				fmt.Fprintf(h, "stage %s %T\n", name, sl.stage)
			}
		}
	}
	p.fingerprint = fmt.Sprintf("%016x", h.Sum64())
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
