// Command vividcortex is the github.com/VividCortex/godaemon peer:
// MakeDaemon, then idle. It writes no pidfile (the library has none), so
// it gets a launch figure only.
//
//	vividcortex [-report FILE]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/VividCortex/godaemon"
)

func main() {
	report := flag.String("report", "", "write PID and goroutine count here once idle")
	flag.Parse()
	if _, _, err := godaemon.MakeDaemon(&godaemon.DaemonAttr{}); err != nil {
		fmt.Fprintln(os.Stderr, "vividcortex:", err)
		os.Exit(71)
	}
	if *report != "" {
		line := fmt.Sprintf("%d %d\n", os.Getpid(), runtime.NumGoroutine())
		if err := os.WriteFile(*report+".tmp", []byte(line), 0o644); err == nil {
			_ = os.Rename(*report+".tmp", *report)
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
