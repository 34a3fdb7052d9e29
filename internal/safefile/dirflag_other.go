//go:build !linux

package safefile

// dirFlags opens directories read-only where O_PATH does not exist.
const dirFlags = 0

// openNoLinks reports false: without openat2(2) every directory is walked.
func openNoLinks(string) (int, bool) { return -1, false }
