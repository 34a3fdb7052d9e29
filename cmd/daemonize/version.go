package main

import (
	"runtime/debug"
	"strings"
)

// version returns what --version prints after "daemonize (blivet) ": the
// module version for a binary built by "go install ...@version" (or from a
// module cache), else, for a build from a checkout, the VCS revision and
// commit time, with "+dirty" when the tree had local changes. Go 1.24 and
// later write those into the module version themselves, as a
// pseudo-version (v0.0.0-20261202031941-513e9c02af67+dirty); with older
// toolchains the version is "(devel)" and the vcs.* build settings give
// them. "(devel)" when the build recorded neither (go build
// -buildvcs=false, or a git worktree, which go build does not stamp).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return versionOf(bi)
}

// versionOf is version for the given build information.
func versionOf(bi *debug.BuildInfo) string {
	if v := strings.TrimSpace(bi.Main.Version); v != "" && v != "(devel)" {
		return v
	}
	var rev, at, vcs string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs":
			vcs = s.Value
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	out := "devel " + rev
	if vcs != "" {
		out = "devel " + vcs + " " + rev
	}
	if at != "" {
		out += " " + at
	}
	if dirty {
		out += "+dirty"
	}
	return out
}
