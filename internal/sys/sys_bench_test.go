//go:build linux

package sys

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkCloexecExcept marks the fds of a process close-on-exec, with one
// fd open near each RLIMIT_NOFILE: the cost must not follow the limit.
func BenchmarkCloexecExcept(b *testing.B) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	for _, limit := range []uint64{1024, lim.Max} {
		b.Run(fmt.Sprintf("rlimit=%d", limit), func(b *testing.B) {
			old := lim
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: lim.Max}); err != nil {
				b.Skipf("setrlimit: %v", err)
			}
			defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
			f, err := os.Open(os.DevNull)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			high := int(limit) - 1
			if err := unix.Dup2(int(f.Fd()), high); err != nil {
				b.Fatal(err)
			}
			defer unix.Close(high)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := CloexecExcept([]int{int(f.Fd())}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			flags, err := unix.FcntlInt(uintptr(high), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				b.Fatalf("fd %d not marked close-on-exec (flags %d, %v)", high, flags, err)
			}
		})
	}
}
