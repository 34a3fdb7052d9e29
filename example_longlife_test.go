package blivet_test

import (
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/sockets"
)

// A daemon that lives long: its port is a named listener (bound while
// root, inherited by every later generation), SIGUSR2 upgrades it to the
// binary installed at its path, SIGHUP reopens its log after logrotate.
func Example_longLife() {
	ctx, err := blivet.Daemonize(
		blivet.WithPidfile("/run/app.pid"),
		blivet.WithStdout("/var/log/app.log"),
		blivet.WithStderr("/var/log/app.log"),
		blivet.WithAppend(true), // generations share the log
		blivet.WithUser("app"),
		blivet.WithListener("http", "tcp", ":80"),
		blivet.WithUpgradeSignal(syscall.SIGUSR2),
		blivet.WithReopenSignal(syscall.SIGHUP),
		blivet.WithAutoNotify(),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(blivet.ExitCodeOf(err))
	}
	defer ctx.Close() // a replaced generation leaves the pidfile to its successor
	lns, err := sockets.Listeners(ctx.Files("http"))
	if err != nil {
		log.Fatal(err)
	}
	serveUntilReplaced(ctx, lns[0])
}

// serveUntilReplaced accepts until a successor is ready, then finishes the
// open connections.
func serveUntilReplaced(ctx *blivet.Context, ln net.Listener) {
	go func() {
		<-ctx.Replaced()
		ln.Close() // the successor accepts on the same socket
	}()
	var conns sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			// ... serve c ...
		}()
	}
	conns.Wait()
}

// Listeners are checked with the other options, before any fork.
func ExampleWithListener() {
	_, err := blivet.Validate(blivet.WithListener("http", "tcp", "example.com:80"))
	fmt.Println(blivet.ExitCodeOf(err))
	_, err = blivet.Validate(
		blivet.WithListener("http", "tcp", ":80"),
		blivet.WithListener("dns", "udp", "[::1]:53"),
		blivet.WithListener("ctl", "unix", "/run/app/ctl.sock"),
	)
	fmt.Println(err)
	// Output:
	// 64
	// <nil>
}

// Frameworks can hook the listen stage, which the pipeline has only when
// a listener is configured; it runs before privdrop.
func ExampleWithListener_stages() {
	rec := blivettest.NewRecorder(nil)
	ctx, err := rec.Daemonize(blivet.WithListener("api", "tcp4", "127.0.0.1:0"), blivet.WithAutoNotify())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ctx.Close()
	fmt.Println(rec.Stages()[len(rec.Stages())-3:], len(ctx.Files("api")))
	// Output: [listen privdrop notify] 1
}

func ExampleWithUpgradeSignal() {
	fmt.Println(blivet.WithUpgradeSignal(syscall.SIGUSR2))
	// Output: WithUpgradeSignal(user defined signal 2)
}

func ExampleWithReopenSignal() {
	fmt.Println(blivet.WithReopenSignal(syscall.SIGHUP))
	// Output: WithReopenSignal(hangup)
}

// An upgrade triggered by the application (an admin endpoint, say):
// Upgrade returns once the new generation is ready, or its error with its
// exit code, this one serving on unchanged.
func ExampleContext_Upgrade() {
	ctx, err := blivet.Daemonize(blivet.WithPidfile("/run/app.pid"), blivet.WithListener("http", "tcp", ":8080"), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.Upgrade(); err != nil {
		log.Printf("upgrade failed (exit code %d): %v", blivet.ExitCodeOf(err), err)
		return // keep serving
	}
	<-ctx.Replaced() // closed already: drain and exit
}

// Upgrade needs a ready daemon: before NotifyParent it refuses (70).
func ExampleContext_Upgrade_notReady() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize()
	defer ctx.Close()
	err := ctx.Upgrade()
	fmt.Println(blivet.ExitCodeOf(err), err)
	// Output: 70 upgrade: the daemon is not ready yet (call NotifyParent first)
}

// Replaced is closed once a successor is ready.
func ExampleContext_Replaced() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithAutoNotify())
	defer ctx.Close()
	select {
	case <-ctx.Replaced():
		fmt.Println("replaced: drain and exit")
	default:
		fmt.Println("serving")
	}
	// Output: serving
}

// After logrotate renamed the log (here without a signal: an admin
// command, say), reopen it: writes go to the new file from now on.
func ExampleContext_ReopenOutputs() {
	ctx, err := blivet.Daemonize(blivet.WithStdout("/var/log/app.log"), blivet.WithAutoNotify())
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.ReopenOutputs(); err != nil {
		log.Printf("reopen: %v", err) // code 73; the old file stays in use
	}
}

// Without output files there is nothing to reopen.
func ExampleContext_ReopenOutputs_none() {
	rec := blivettest.NewRecorder(nil)
	ctx, _ := rec.Daemonize(blivet.WithAutoNotify())
	defer ctx.Close()
	fmt.Println(ctx.ReopenOutputs())
	// Output: <nil>
}
