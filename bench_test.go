package blivet_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
)

func init() {
	// "ready" daemonizes, writes its PID to the file named by BENCH_PIDFILE
	// (so the benchmark can kill it outside the timed part) and says ready.
	blivettest.Register("bench-ready", func(h *blivettest.H) {
		ctx, err := blivet.Daemonize(blivet.WithAutoNotify(),
			blivet.WithHookBefore("notify", func(*blivet.State) error {
				return os.WriteFile(h.Env("BENCH_PIDFILE"), []byte(strconv.Itoa(os.Getpid())), 0o644)
			}))
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
		sleepForever()
	})
}

// BenchmarkLaunchToReady measures a full launch of a library daemon: from
// starting the launcher until it exits 0 because the daemon said ready.
func BenchmarkLaunchToReady(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	pidfile := b.TempDir() + "/pid"
	env := append(os.Environ(), "BLIVETTEST_HELPER=bench-ready", "BLIVETTEST_DIR="+b.TempDir(), "BENCH_PIDFILE="+pidfile)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("launch: %v: %s", err, out)
		}
		b.StopTimer()
		data, err := os.ReadFile(pidfile)
		if err != nil {
			b.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		syscall.Kill(pid, syscall.SIGKILL)
		for deadline := time.Now().Add(5 * time.Second); blivettest.Alive(pid) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
	}
}
