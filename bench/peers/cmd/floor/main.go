// Command floor is the lower bound a Go launcher can reach: it starts the
// program in a new session with os.StartProcess (SysProcAttr.Setsid) and
// exits as soon as that returns, which is once the program is exec'd (Go
// reports a failed exec through a close-on-exec pipe, so StartProcess
// returns only after the exec succeeded). No pidfile, no second fork, no
// checks: one Go runtime start, one fork, one exec.
//
//	floor PROGRAM [ARGS...]
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: floor PROGRAM [ARGS...]\n")
		os.Exit(64)
	}
	_, err := os.StartProcess(os.Args[1], os.Args[1:], &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		os.Stderr.WriteString("floor: " + err.Error() + "\n")
		os.Exit(71)
	}
}
