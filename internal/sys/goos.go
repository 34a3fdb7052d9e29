//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package sys

import "runtime"

// runtimeGOOS is runtime.GOOS for the checks in sys_other.go (only the
// systems that file builds for use it).
const runtimeGOOS = runtime.GOOS
