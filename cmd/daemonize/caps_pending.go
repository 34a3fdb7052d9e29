//go:build !blivet_ambientcaps

// TEMPORARY: this file stands in for caps.go until blivet.WithAmbientCaps
// exists on this branch. Delete it at merge (and the build constraint of
// caps.go).

package main

import "github.com/blivet-go/blivet"

// capsSupported reports whether --cap works in this build.
const capsSupported = false

// capOption refuses --cap: this build has no library support for ambient
// capabilities.
func capOption([]string) (blivet.Option, error) {
	return nil, usagef("--cap: not supported by this build")
}
