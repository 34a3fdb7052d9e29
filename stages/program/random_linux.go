package program

import (
	"time"

	"golang.org/x/sys/unix"
)

// randomBytes fills b from getrandom(2), falling back to the clock.
func randomBytes(b []byte) {
	if n, err := unix.Getrandom(b, 0); err == nil && n == len(b) {
		return
	}
	clockBytes(b)
}

func clockBytes(b []byte) {
	v := uint64(time.Now().UnixNano())
	for i := range b {
		b[i] = byte(v >> (8 * (i % 8)))
	}
}
