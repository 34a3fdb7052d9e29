package listen_test

import (
	"fmt"
	"net"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/listen"
)

// The stage is in the pipeline only when WithListener is used: before
// privdrop, so a daemon started as root binds port 80 and then drops.
func ExampleNew() {
	_, err := blivet.Validate(
		blivet.WithListener("http", "tcp", ":80"),
		blivet.WithHookBefore("listen", func(*blivet.State) error { return nil }),
	)
	fmt.Println(listen.New().Name(), err)
	// Output: listen <nil>
}

func ExampleStage_Name() {
	fmt.Println(listen.New().Name())
	// Output: listen
}

// Run gives State.Sockets every configured listener that neither the
// previous generation nor socket activation provided, bound here.
func ExampleStage_Run() {
	s := &stages.State{Config: stages.Config{Listeners: []stages.ListenerSpec{
		{Name: "api", Network: "tcp4", Address: "127.0.0.1:0"},
	}}}
	if err := listen.New().Run(s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(s.Sockets), s.Sockets[0].Name, s.Sockets[0].File.Name())
	s.Sockets[0].File.Close()
	// Output: 1 api api
}

// Parse checks an address without package net's resolver: hosts are IP
// addresses, "localhost" or empty.
func ExampleParse() {
	a, err := listen.Parse("tcp", ":8080")
	fmt.Println(a.IP, a.Port, a.DualStack, err)
	_, err = listen.Parse("tcp", "example.com:80")
	fmt.Println(err)
	// Output:
	// :: 8080 true <nil>
	// address "example.com:80": host must be an IP address (no zone), "localhost" or empty
}

func ExampleCheckName() {
	fmt.Println(listen.CheckName("http"))
	fmt.Println(listen.CheckName("a:b"))
	// Output:
	// <nil>
	// listener name "a:b": only printable ASCII without spaces or ':'
}

// Bind makes the socket, listening and close-on-exec; package sockets (or
// net.FileListener) turns it into a net.Listener.
func ExampleBind() {
	f, err := listen.Bind(stages.ListenerSpec{Name: "api", Network: "tcp4", Address: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(stages.ExitCodeOf(err), err) // 77 for a port below 1024 without root, 71 otherwise
		return
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network())
	// Output: tcp
}
