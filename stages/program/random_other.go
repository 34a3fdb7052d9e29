//go:build !linux

package program

import (
	"os"
	"time"
)

// randomBytes fills b from /dev/urandom, falling back to the clock.
func randomBytes(b []byte) {
	if f, err := os.Open("/dev/urandom"); err == nil {
		defer f.Close()
		if n, _ := f.Read(b); n == len(b) {
			return
		}
	}
	v := uint64(time.Now().UnixNano())
	for i := range b {
		b[i] = byte(v >> (8 * (i % 8)))
	}
}
