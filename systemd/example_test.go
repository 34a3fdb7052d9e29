package systemd_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blivet-go/blivet/sockets"
	"github.com/blivet-go/blivet/systemd"
)

// A service manager's notification socket receives one datagram per
// message. Here a socket in a temp dir plays the manager.
func ExampleSend() {
	dir, _ := os.MkdirTemp("", "sd-example")
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "notify")
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Close()

	status, _ := systemd.Status("loading 3 zones")
	if err := systemd.Send(socket, status+"\n"+systemd.Ready); err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 256)
	n, _ := manager.Read(buf)
	fmt.Printf("%q\n", buf[:n])
	// Output: "STATUS=loading 3 zones\nREADY=1"
}

// Not running under a service manager is not an error.
func ExampleNotify() {
	os.Unsetenv(systemd.EnvNotifySocket)
	sent, err := systemd.Notify(systemd.Ready)
	fmt.Println(sent, err)
	// Output: false <nil>
}

// Serve the sockets the manager passed, or listen on our own when not
// socket-activated (ok is false).
func ExampleTakeActivation() {
	a, ok, err := systemd.TakeActivation() // LISTEN_* are unset afterwards
	if err != nil {
		log.Fatal(err) // malformed variables addressed to us (64)
	}
	var ls []net.Listener
	if ok {
		for _, f := range a.Files() {
			l, err := sockets.Listener(f)
			if err != nil {
				log.Fatal(err)
			}
			ls = append(ls, l)
		}
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:8080")
		if err != nil {
			log.Fatal(err)
		}
		ls = append(ls, l)
	}
	_ = ls // serve
}

func ExampleActivation_FDs() {
	a := systemd.Activation{N: 2, Names: []string{"web", "admin"}}
	fmt.Println(a.FDs())
	// Output: [3 4]
}

// A wrapper that execs a program in place (same PID, fds kept) hands the
// sockets on by re-exporting the variables.
func ExampleActivation_Environ() {
	a := systemd.Activation{N: 2, Names: []string{"web", "admin"}}
	for _, kv := range a.Environ(4242) {
		fmt.Println(kv)
	}
	// Output:
	// LISTEN_PID=4242
	// LISTEN_FDS=2
	// LISTEN_FDNAMES=web:admin
}

// Files wraps fds 3.. once, named after LISTEN_FDNAMES.
func ExampleActivation_Files() {
	a, ok, err := systemd.TakeActivation()
	if err != nil || !ok {
		return
	}
	for _, f := range a.Files() {
		log.Printf("fd %d: %s", f.Fd(), f.Name())
	}
}

func ExampleActivation_String() {
	fmt.Println(systemd.Activation{N: 2, Names: []string{"web", "admin"}})
	// Output: 2 fds (web, admin)
}

func ExampleMainPID() {
	fmt.Println(systemd.Ready + "\n" + systemd.MainPID(4242))
	// Output:
	// READY=1
	// MAINPID=4242
}

// A status is one line; a newline would start another assignment.
func ExampleStatus() {
	s, err := systemd.Status("serving 3 zones")
	fmt.Println(s, err)
	_, err = systemd.Status("serving\n3 zones")
	fmt.Println(err != nil)
	// Output:
	// STATUS=serving 3 zones <nil>
	// true
}

// Type=notify-reload wants the reload's start time on the monotonic clock.
func ExampleReloadingNow() {
	msg := systemd.ReloadingNow()
	fmt.Println(strings.HasPrefix(msg, "RELOADING=1\nMONOTONIC_USEC="))
	// Output: true
}

// A NOTIFY_SOCKET value is a path or an abstract address ("@" stands for
// the leading NUL byte); anything else is refused with exit code 71.
func ExampleSend_unsupported() {
	err := systemd.Send("vsock:2:1234", systemd.Ready)
	fmt.Println(errors.Is(err, systemd.ErrUnsupportedAddress))
	// Output: true
}

// Start the watchdog only when the manager asked for it (WatchdogSec=).
func ExampleWatchdogEnabled() {
	timeout, err := systemd.WatchdogEnabled()
	if err != nil {
		log.Fatal(err) // malformed WATCHDOG_USEC or WATCHDOG_PID (64)
	}
	if timeout == 0 {
		return // no watchdog for this process
	}
	w := systemd.StartWatchdog(os.Getenv(systemd.EnvNotifySocket), timeout)
	defer w.Stop()
	// ... serve ...
}

// The watchdog pings at once, then every timeout/2. Here a socket in a
// temp dir plays the manager.
func ExampleStartWatchdog() {
	dir, _ := os.MkdirTemp("", "sd-example")
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "notify")
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Close()

	w := systemd.StartWatchdog(socket, 10*time.Second)
	buf := make([]byte, 64)
	n, _ := manager.Read(buf)
	fmt.Printf("%q\n", buf[:n])
	fmt.Println(w.Stop())
	// Output:
	// "WATCHDOG=1"
	// <nil>
}

// With WatchdogSec=30s the manager sets WATCHDOG_USEC=30000000; the pings
// go at half that.
func ExampleWatchdog_Interval() {
	dir, _ := os.MkdirTemp("", "sd-example")
	defer os.RemoveAll(dir)
	w := systemd.StartWatchdog(filepath.Join(dir, "notify"), 30*time.Second) // no manager here
	defer w.Stop()
	fmt.Println(w.Interval())
	// Output: 15s
}

// Sent counts the pings the manager accepted.
func ExampleWatchdog_Sent() {
	dir, _ := os.MkdirTemp("", "sd-example")
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "notify")
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer manager.Close()

	w := systemd.StartWatchdog(socket, 10*time.Second)
	_, _ = manager.Read(make([]byte, 64)) // the first ping
	_ = w.Stop()
	fmt.Println(w.Sent())
	// Output: 1
}

// Stop returns the first failed ping: here no manager listens.
func ExampleWatchdog_Stop() {
	dir, _ := os.MkdirTemp("", "sd-example")
	defer os.RemoveAll(dir)
	w := systemd.StartWatchdog(filepath.Join(dir, "notify"), 10*time.Second) // pings at once
	err := w.Stop()
	fmt.Println(err != nil, w.Sent())
	// Output: true 0
}
