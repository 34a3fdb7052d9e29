package blivet_test

import (
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/blivet-go/blivet"
)

// The daemon runs as nobody yet binds port 80 after the drop: it keeps
// exactly cap_net_bind_service. Linux only, in a program built without
// cgo (CGO_ENABLED=0 go build, or go build -tags netgo when only package
// net brings cgo in). (Not run: it daemonizes.)
func ExampleWithAmbientCaps() {
	ctx, err := blivet.Daemonize(
		blivet.WithUser("nobody"),
		blivet.WithAmbientCaps("net_bind_service"),
		blivet.WithAutoNotify(),
	)
	if err != nil {
		log.Fatal(err) // 64: unknown capability, no WithUser, not Linux, cgo
	}
	defer ctx.Close()
	// nobody from here on, with cap_net_bind_service and nothing else.
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, nil))
}

// Capabilities are kept across a drop to a user: without WithUser the
// option is a usage error.
func ExampleWithAmbientCaps_validation() {
	_, err := blivet.Validate(blivet.WithAmbientCaps("CAP_NET_BIND_SERVICE"))
	fmt.Println(blivet.ExitCodeOf(err))
	// Output: 64
}
