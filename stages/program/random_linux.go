package program

import "golang.org/x/sys/unix"

// randomBytes fills b from getrandom(2), falling back to the clock.
func randomBytes(b []byte) {
	if n, err := unix.Getrandom(b, 0); err == nil && n == len(b) {
		return
	}
	clockBytes(b)
}
