package systemd_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

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
