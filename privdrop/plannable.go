package privdrop

import "github.com/blivet-go/blivet/stages"

// plannable reports whether the drop has a raw form for this
// configuration: not when capabilities are to be kept (Drop does that,
// with the capability calls a raw child does not make).
func (*Stage) plannable(s *stages.State) bool { return len(s.Config.AmbientCaps) == 0 }
