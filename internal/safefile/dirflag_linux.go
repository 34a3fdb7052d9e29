//go:build linux

package safefile

import "golang.org/x/sys/unix"

// dirFlags opens directories for use as *at(2) anchors only: O_PATH needs
// search permission, not read permission, and performs no access.
const dirFlags = unix.O_PATH

// openNoLinks opens the directory path in one openat2(2) that refuses a
// symbolic link in any component (RESOLVE_NO_SYMLINKS). Where it succeeds,
// the path has no link to decide about, and the result is the directory
// the walk would reach, without its open, fstatat and close per
// component. On any failure (a link somewhere, a missing or denied
// component, a kernel before 5.6, a seccomp filter) it reports false and
// the caller walks, which either follows what may be followed or says
// precisely what it refused.
func openNoLinks(path string) (int, bool) {
	how := unix.OpenHow{
		Flags:   unix.O_DIRECTORY | unix.O_CLOEXEC | dirFlags,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	}
	for {
		fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
		if err != unix.EINTR {
			return fd, err == nil
		}
	}
}
