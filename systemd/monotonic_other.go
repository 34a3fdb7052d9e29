//go:build !linux

package systemd

import "time"

var start = time.Now()

// monotonicUsec returns a monotonic time in microseconds. systemd runs only
// on Linux; elsewhere the value only has to increase.
func monotonicUsec() int64 { return int64(time.Since(start) / time.Microsecond) }
