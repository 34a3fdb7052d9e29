//go:build !(linux && amd64)

package main

import (
	"os"
	"syscall"
)

// secondClone prices a double fork's second child where there is no
// assembly for a bare clone: a child whose exec fails at once, reaped by
// os.StartProcess (a little more than the bare clone).
func secondClone() {
	if _, err := os.StartProcess("/nonexistent/required-second-child", nil, &os.ProcAttr{}); err == nil {
		fail(71, "second clone", syscall.EINVAL)
	}
}
