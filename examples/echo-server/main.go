// Command echo-server is a TCP echo daemon built on blivet: it writes a
// locked pidfile and a log, binds its port while still privileged (so, run
// as root with -user, it can take a port below 1024), drops privileges,
// then tells the launcher it is ready.
//
// With no flags it runs unprivileged on 127.0.0.1:7007 with its pidfile and
// log in $TMPDIR/blivet-echo (/tmp/blivet-echo when TMPDIR is unset). Build
// it and run the binary (go run reports every failure as exit status 1,
// hiding the codes: 69 when another instance runs):
//
//	go build -o /tmp/echo ./examples/echo-server
//	/tmp/echo                              # start: returns once it serves
//	echo hi | nc -q1 127.0.0.1 7007        # use
//	/tmp/echo -stop                        # stop (SIGTERM, pidfile removed)
//
// As root: echo-server -addr :7 -user nobody -dir /run/echo (after the
// drop the daemon may not remove /run/echo/echo.pid: it empties it).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blivet-go/blivet"
)

func main() {
	// Everything before Daemonize runs again in every process generation:
	// it only parses flags, with no side effects.
	addr := flag.String("addr", "127.0.0.1:7007", "address to listen on")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "blivet-echo"), "directory for the pidfile and the log (must exist unless default)")
	user := flag.String("user", "", "drop privileges to this user after binding (root only)")
	foreground := flag.Bool("foreground", false, "stay in the foreground (systemd Type=notify, containers)")
	stop := flag.Bool("stop", false, "stop the running daemon")
	flag.Parse()
	pidPath := filepath.Join(*dir, "echo.pid")
	logPath := filepath.Join(*dir, "echo.log")

	if *stop {
		os.Exit(stopDaemon(pidPath))
	}
	if *dir == filepath.Join(os.TempDir(), "blivet-echo") {
		// Creating the default directory is idempotent, so it is safe to
		// repeat in every generation.
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			log.Fatal(err)
		}
	}

	opts := []blivet.Option{
		blivet.WithPidfile(pidPath),
		blivet.WithStdout(logPath),
		blivet.WithStderr(logPath), // the log package writes to stderr
		blivet.WithAppend(true),
		blivet.WithCleanupOnSignal(),
		blivet.WithForeground(*foreground),
	}
	if *user != "" {
		opts = append(opts, blivet.WithUser(*user))
	}
	ctx, err := blivet.Daemonize(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo-server:", err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	defer ctx.Close()

	// Privileged phase: bind the port (below 1024 needs root).
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
	}
	// Hand the log to the user and become it; then say ready.
	if err := ctx.DropPrivileges(); err != nil {
		ctx.ReportError(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		log.Printf("notify: %v", err)
	}
	log.Printf("echo-server pid %d serving on %s as uid %d", os.Getpid(), ln.Addr(), os.Getuid())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Printf("accept: %v", err)
			continue
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
		}()
	}
}

// stopDaemon sends SIGTERM to the PID in the pidfile and waits until the
// process is gone (the daemon removes its pidfile on SIGTERM).
func stopDaemon(pidPath string) int {
	data, err := os.ReadFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "echo-server: not running (no pidfile)")
		return 1
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "echo-server:", err)
		return blivet.ExitOSErr
	}
	if strings.TrimSpace(string(data)) == "" {
		// Close empties the pidfile when it may not remove it (after -user).
		fmt.Fprintln(os.Stderr, "echo-server: not running (empty pidfile)")
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		fmt.Fprintf(os.Stderr, "echo-server: bad pidfile %s\n", pidPath)
		return blivet.ExitSoftware
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		fmt.Fprintf(os.Stderr, "echo-server: pid %d: %v\n", pid, err)
		return 1
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ended(pid) {
			fmt.Printf("stopped pid %d\n", pid)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "echo-server: pid %d still running after SIGTERM\n", pid)
	return 1
}

// ended reports whether process pid has ended. kill(pid, 0) keeps
// succeeding until the process is reaped, which init may do late; on Linux
// a process whose every thread has exited (a zombie awaiting its reaper)
// has ended too. A main thread that shows as a zombie is not enough: the
// other threads of a Go program may still run, holding its port and files.
func ended(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false // no /proc: kill(2) is all there is
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		i := strings.LastIndexByte(string(stat), ')')
		if err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X' {
			return false // this thread still runs
		}
	}
	return true
}
