//go:build !linux

package handover

import "syscall"

func sysProcAttr(bool) *syscall.SysProcAttr { return nil }
