// Command libdaemon is blivet's library peer: a minimal program that calls
// blivet.Daemonize with a pidfile and auto-notify, then idles.
//
//	libdaemon [-plain] [-report FILE] PIDFILE
//
// The launcher exits 0 once the daemon is ready (pidfile written and
// locked). -report writes "PID GOROUTINES" to FILE once the daemon idles;
// -plain runs the same program without Daemonize (the baseline for what
// the daemon costs in threads and memory).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/blivet-go/blivet"
)

func main() {
	plain := flag.Bool("plain", false, "do not daemonize")
	report := flag.String("report", "", "write PID and goroutine count here once idle")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: libdaemon [-plain] [-report FILE] PIDFILE")
		os.Exit(64)
	}
	if !*plain {
		ctx, err := blivet.Daemonize(blivet.WithAutoNotify(), blivet.WithPidfile(flag.Arg(0)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "libdaemon:", err)
			os.Exit(blivet.ExitCodeOf(err))
		}
		defer ctx.Close()
	}
	idle(*report)
}

// idle reports and then sleeps for ever.
func idle(report string) {
	if report != "" {
		line := fmt.Sprintf("%d %d\n", os.Getpid(), runtime.NumGoroutine())
		if err := os.WriteFile(report+".tmp", []byte(line), 0o644); err == nil {
			_ = os.Rename(report+".tmp", report)
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
