// Command poller measures readiness the same way for every tool that
// writes a pidfile: it runs the launcher given after "--", waits for it to
// exit 0, then polls PIDFILE until it names a live process, and exits 0.
//
//	poller PIDFILE -- LAUNCHER [ARGS...]
//
// It exits 1 with a message if the launcher fails or the pidfile does not
// name a live process within 10 seconds. Polling uses nanosleep(2) with a
// 1 ns timer slack, so a check happens every ~20 µs without spinning a core
// the daemon might need.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 4 || os.Args[2] != "--" {
		fmt.Fprintln(os.Stderr, "usage: poller PIDFILE -- LAUNCHER [ARGS...]")
		os.Exit(2)
	}
	pidfile, argv := os.Args[1], os.Args[3:]
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		fail("start %s: %v", argv[0], err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		fail("%s: wait status %v, %v", argv[0], ws, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	nap := unix.Timespec{Nsec: 20_000}
	for !live(pidfile) {
		if time.Now().After(deadline) {
			fail("%s does not name a live process after 10s", pidfile)
		}
		_ = unix.Nanosleep(&nap, nil)
	}
}

// live reports whether path holds the PID of a process that exists and is
// not a zombie.
func live(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil || pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "poller: "+format+"\n", args...)
	os.Exit(1)
}
