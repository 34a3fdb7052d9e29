package handover

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func sysProcAttr(siblingOfCaller bool) *syscall.SysProcAttr {
	if !siblingOfCaller {
		return nil
	}
	return &syscall.SysProcAttr{Cloneflags: unix.CLONE_PARENT}
}
