//go:build linux

package rawfork

// directRelease says the clone routines for the daemon to release the
// launcher directly exist on this architecture (vfork_amd64.s).
const directRelease = true

// rawCloneLeave is the intermediate's clone(2) of a daemon that takes
// over its stack: see vfork_amd64.s.
//
//go:noescape
func rawCloneLeave(flags uintptr, tid *uint32) (pid uintptr, errno uintptr)
