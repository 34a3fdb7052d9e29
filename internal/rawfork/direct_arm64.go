//go:build linux

package rawfork

import "syscall"

// directRelease is false on arm64: its clone routines for the daemon to
// release the launcher directly are not written yet (they could not be
// run here), so the launcher waits for the intermediate, which waits for
// the daemon's exec (rawVforkClone twice). The stub is never called.
const directRelease = false

//go:nosplit
func rawCloneLeave(flags uintptr, tid *uint32) (pid uintptr, errno uintptr) {
	return 0, uintptr(syscall.ENOSYS)
}
