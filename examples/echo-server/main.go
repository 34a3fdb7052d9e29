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
//
// It lives long, too: the listening socket is a named listener
// (blivet.WithListener), so SIGUSR2 (or `echo-server -upgrade`) starts the
// binary now installed at its path as the next generation, which inherits
// the socket and the lock; the old one stops accepting, finishes its
// connections and exits, and no connection is refused. SIGHUP (or
// `echo-server -reopen`) reopens the log after a rotation: see
// logrotate.conf next to this file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/sockets"
)

func main() {
	// Everything before Daemonize runs again in every process generation:
	// it only parses flags, with no side effects.
	addr := flag.String("addr", "127.0.0.1:7007", "address to listen on")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "blivet-echo"), "directory for the pidfile and the log (must exist unless default)")
	user := flag.String("user", "", "drop privileges to this user after binding (root only)")
	foreground := flag.Bool("foreground", false, "stay in the foreground (systemd Type=notify, containers)")
	stop := flag.Bool("stop", false, "stop the running daemon")
	upgrade := flag.Bool("upgrade", false, "replace the running daemon by the binary now installed (SIGUSR2), without refusing a connection")
	reopen := flag.Bool("reopen", false, "make the running daemon reopen its log (SIGHUP)")
	flag.Parse()
	pidPath := filepath.Join(*dir, "echo.pid")
	logPath := filepath.Join(*dir, "echo.log")

	switch {
	case *stop:
		os.Exit(stopDaemon(pidPath))
	case *upgrade:
		os.Exit(upgradeDaemon(pidPath))
	case *reopen:
		os.Exit(signalDaemon(pidPath, syscall.SIGHUP))
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
		blivet.WithAppend(true),    // also keeps the lines of two generations whole
		blivet.WithCleanupOnSignal(),
		blivet.WithForeground(*foreground),
		// Bound in the daemon while still privileged, or inherited from
		// the previous generation, or from systemd socket activation.
		blivet.WithListener("echo", "tcp", *addr),
		blivet.WithUpgradeSignal(syscall.SIGUSR2),
		blivet.WithReopenSignal(syscall.SIGHUP),
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

	// The port was bound by the pipeline (below 1024 needs root: it ran
	// before the drop), or inherited: here it only becomes a net.Listener.
	lns, err := sockets.Listeners(ctx.Files("echo"))
	if err != nil || len(lns) != 1 {
		ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, fmt.Errorf("listener echo: %d sockets, %v", len(lns), err)))
	}
	ln := lns[0]
	// Hand the log to the user and become it (in a later generation:
	// verify it); then say ready.
	if err := ctx.DropPrivileges(); err != nil {
		ctx.ReportError(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		log.Printf("notify: %v", err)
	}
	log.Printf("echo-server pid %d serving on %s as uid %d", os.Getpid(), ln.Addr(), os.Getuid())
	go func() {
		// A successor is ready: stop accepting (it accepts on the same
		// socket now), then finish the open connections below.
		<-ctx.Replaced()
		log.Printf("echo-server pid %d replaced, draining", os.Getpid())
		ln.Close()
	}()
	var conns sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-ctx.Replaced():
			default:
				log.Printf("accept: %v", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			break
		}
		log.Printf("connection from %s", conn.RemoteAddr())
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
		}()
	}
	conns.Wait()
	log.Printf("echo-server pid %d exits", os.Getpid())
}

// pidOf returns the PID in the pidfile, or an exit code.
func pidOf(pidPath string) (int, int) {
	data, err := os.ReadFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "echo-server: not running (no pidfile)")
		return 0, 1
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "echo-server:", err)
		return 0, blivet.ExitOSErr
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		fmt.Fprintf(os.Stderr, "echo-server: bad pidfile %s\n", pidPath)
		return 0, blivet.ExitSoftware
	}
	return pid, 0
}

// signalDaemon sends sig to the PID in the pidfile.
func signalDaemon(pidPath string, sig syscall.Signal) int {
	pid, code := pidOf(pidPath)
	if code != 0 {
		return code
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(os.Stderr, "echo-server: pid %d: %v\n", pid, err)
		return 1
	}
	return 0
}

// upgradeDaemon sends SIGUSR2 and waits until the pidfile names another
// process (the new generation is ready). A failed upgrade leaves the old
// one serving and its reason in the log.
func upgradeDaemon(pidPath string) int {
	old, code := pidOf(pidPath)
	if code != 0 {
		return code
	}
	if code := signalDaemon(pidPath, syscall.SIGUSR2); code != 0 {
		return code
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if pid, _ := pidOf(pidPath); pid != 0 && pid != old {
			fmt.Printf("upgraded: pid %d replaces %d\n", pid, old)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "echo-server: pid %d was not replaced (see the log for the new generation's error)\n", old)
	return 1
}

// stopDaemon sends SIGTERM to the PID in the pidfile and waits for the
// effects that matter: the lock released and every thread of the daemon
// ended (the daemon removes its pidfile on SIGTERM first, and may release
// its lock before its last thread has exited).
func stopDaemon(pidPath string) int {
	if data, err := os.ReadFile(pidPath); err == nil && strings.TrimSpace(string(data)) == "" {
		// Close empties the pidfile when it may not remove it (after -user).
		fmt.Fprintln(os.Stderr, "echo-server: not running (empty pidfile)")
		return 1
	}
	pid, code := pidOf(pidPath)
	if code != 0 {
		return code
	}
	p, err := openProcess(pid)
	if err == nil {
		defer p.close()
		err = p.signal(syscall.SIGTERM)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo-server: pid %d: %v\n", pid, err)
		return 1
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st, err := pidfile.Probe(pidPath); err == nil && !st.Held && p.ended() {
			fmt.Printf("stopped pid %d\n", pid)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "echo-server: pid %d still running after SIGTERM\n", pid)
	return 1
}
