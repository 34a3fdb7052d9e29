// Command hello is a small TCP daemon that shows blivet under a service
// manager: it answers every connection with a greeting, and it
//
//   - reports readiness (READY=1 with MAINPID) when NOTIFY_SOCKET is set,
//     in the foreground (Type=notify) or as a classic daemon (Type=forking,
//     with -pidfile);
//   - serves the socket systemd passes it (socket activation, fd name
//     "hello"), or listens on -addr itself;
//   - pings the watchdog when WatchdogSec= is set;
//   - reloads its greeting on SIGHUP (RELOADING=1 ... READY=1) and says
//     STOPPING=1 on SIGTERM.
//
// See the unit files and init scripts next to this directory.
//
//	go build -o /usr/local/bin/blivet-hello ./examples/systemd/hello
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/sockets"
)

func main() {
	// Code before Daemonize runs in every generation: flags only.
	addr := flag.String("addr", "127.0.0.1:7070", "address to listen on when not socket-activated")
	foreground := flag.Bool("foreground", false, "stay in the foreground (systemd Type=notify or Type=simple)")
	pidfile := flag.String("pidfile", "", "write a locked pidfile (Type=forking with PIDFile=)")
	greetingFile := flag.String("greeting", "", "file holding the greeting, re-read on SIGHUP")
	flag.Parse()
	// One name in every message: the library prefixes the errors it
	// prints (ReportError, a launcher's report) with the program's base
	// name, so this program's own messages use the same.
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")

	// SIGTERM is handled below (STOPPING=1, then Close removes the pidfile).
	opts := []blivet.Option{blivet.WithForeground(*foreground)}
	if *pidfile != "" {
		opts = append(opts, blivet.WithPidfile(*pidfile))
	}
	ctx, err := blivet.Daemonize(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	defer ctx.Close()
	_ = ctx.Status("starting")

	// Socket activation first; fall back to our own socket.
	listeners, err := sockets.Listeners(ctx.Files("hello"))
	if err != nil {
		ctx.ReportError(err)
	}
	if len(listeners) == 0 {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
		}
		listeners = append(listeners, ln)
	}
	var greeting atomic.Value
	greeting.Store(load(*greetingFile))

	for _, ln := range listeners {
		go serve(ln, &greeting)
	}
	// Ready: the launcher exits 0 and systemd (if any) gets READY=1.
	if err := ctx.NotifyParent(); err != nil {
		ctx.ReportError(err)
	}
	if _, err := ctx.StartWatchdog(); err != nil {
		log.Printf("watchdog: %v", err)
	}
	_ = ctx.Status("serving on " + listeners[0].Addr().String())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			_ = ctx.Reloading()
			greeting.Store(load(*greetingFile))
			_ = ctx.Reloaded()
			continue
		}
		_ = ctx.Stopping()
		return // deferred Close removes the pidfile and stops the watchdog
	}
}

func load(path string) string {
	if path == "" {
		return "hello\n"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Printf("greeting: %v", err)
		return "hello\n"
	}
	return string(b)
}

func serve(ln net.Listener, greeting *atomic.Value) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprint(c, greeting.Load().(string))
		c.Close()
	}
}
