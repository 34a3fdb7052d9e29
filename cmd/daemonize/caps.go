//go:build blivet_ambientcaps

// MERGE: delete the build constraint above, and caps_pending.go, once
// blivet.WithAmbientCaps exists (it is written on another branch).

package main

import "github.com/blivet-go/blivet"

// capsSupported reports whether --cap works in this build.
const capsSupported = true

// capOption returns the library option for --cap: the named capabilities
// (net_bind_service, CAP_NET_BIND_SERVICE, ...) stay in the ambient set
// across the drop to -u. The library validates the names.
func capOption(names []string) (blivet.Option, error) {
	return blivet.WithAmbientCaps(names...), nil
}
