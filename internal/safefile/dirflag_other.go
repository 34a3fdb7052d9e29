//go:build !linux

package safefile

// dirFlags opens directories read-only where O_PATH does not exist.
const dirFlags = 0
