//go:build !linux

package program

import "os"

// randomBytes fills b from /dev/urandom, falling back to the clock.
func randomBytes(b []byte) {
	if f, err := os.Open("/dev/urandom"); err == nil {
		defer f.Close()
		if n, _ := f.Read(b); n == len(b) {
			return
		}
	}
	clockBytes(b)
}
