// Command godaemon is the github.com/sevlyar/go-daemon peer: Reborn with a
// pidfile, then idle. The parent exits as soon as the child is started.
//
//	godaemon [-report FILE] PIDFILE
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	daemon "github.com/sevlyar/go-daemon"
)

func main() {
	report := flag.String("report", "", "write PID and goroutine count here once idle")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: godaemon [-report FILE] PIDFILE")
		os.Exit(64)
	}
	ctx := &daemon.Context{PidFileName: flag.Arg(0), PidFilePerm: 0o644, Umask: 0o22, WorkDir: "/"}
	child, err := ctx.Reborn()
	if err != nil {
		fmt.Fprintln(os.Stderr, "godaemon:", err)
		os.Exit(71)
	}
	if child != nil {
		return // the parent
	}
	defer ctx.Release()
	idle(*report)
}

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
