package program

import "time"

// clockBytes fills b from the clock: the fallback of randomBytes.
func clockBytes(b []byte) {
	v := uint64(time.Now().UnixNano())
	for i := range b {
		b[i] = byte(v >> (8 * (i % 8)))
	}
}
