package privdrop_test

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/privdrop"
	"github.com/blivet-go/blivet/stages"
)

// Split-phase use (the default): Daemonize returns in the daemon still
// root; the program binds its port, then drops and says ready. The
// launcher exits 0 only after the drop worked. (Not run: it daemonizes.)
func Example_splitPhase() {
	ctx, err := blivet.Daemonize(
		blivet.WithUser("www-data"), // its primary group and its groups
		blivet.WithStdout("/var/log/web.log"),
		blivet.WithPidfile("/run/web.pid"), // stays root's
	)
	if err != nil {
		log.Fatal(err) // 77 when not root, 64 for a bad option
	}
	defer ctx.Close()
	ln, err := net.Listen("tcp", ":80") // still root
	if err != nil {
		ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
	}
	// chown /var/log/web.log, setgroups, setgid, setuid, then the checks.
	// 67: no such user; 73: a chown failed (still root); 77: the drop failed.
	if err := ctx.DropPrivileges(); err != nil {
		ctx.ReportError(err)
	}
	if err := ctx.NotifyParent(); err != nil {
		log.Print(err)
	}
	log.Fatal(http.Serve(ln, nil))
}

// Hook-style use: the privileged initialisation is a hook before the
// privdrop stage, and Daemonize runs the drop and the notification itself.
// (Not run: it daemonizes.)
func Example_hookStyle() {
	var ln net.Listener
	ctx, err := blivet.Daemonize(
		blivet.WithUser("www-data"),
		blivet.WithAutoNotify(),
		blivet.WithHookBefore("privdrop", func(*blivet.State) error {
			var err error
			ln, err = net.Listen("tcp", ":80") // root, in the daemon
			return err                         // reported to the launcher
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	// www-data from here on, and the launcher has exited 0.
	log.Fatal(http.Serve(ln, nil))
}

// A group-only target: the uid stays, supplementary groups are cleared.
func ExampleResolve() {
	t, err := privdrop.Resolve("", "54321")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.UID, t.GID, len(t.Groups))

	_, err = privdrop.Resolve("blivet-no-such-user", "")
	fmt.Println(blivet.ExitCodeOf(err))
	// Output:
	// -1 54321 0
	// 67
}

// String describes the target for messages and logs.
func ExampleTarget_String() {
	t, err := privdrop.Resolve("54321", "54321") // ids without passwd or group entries
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t)
	fmt.Println(t.Name, t.Home, len(t.Groups))
	// Output:
	// uid 54321 (no passwd entry), group gid 54321
	// 54321 / 0
}

// Drop by hand, outside a pipeline (as root): resolve first, while the
// user database is still readable, then switch. A failure after an id
// changed is Fatal: end the process, never run half-dropped.
func ExampleDrop() {
	t, err := privdrop.Resolve("nobody", "")
	if err != nil {
		log.Fatal(err) // 67: no such user
	}
	if err := privdrop.Drop(t); err != nil {
		log.Fatalf("exit %d: %v", blivet.ExitCodeOf(err), err) // 77
	}
	fmt.Println(os.Getuid() == t.UID, os.Getenv("USER") == t.Name)
}

// Check verifies, on every thread, that the process runs as t and cannot
// become root again. Drop calls it; call it again at any time to assert
// the state.
func ExampleCheck() {
	t, err := privdrop.Resolve("nobody", "")
	if err != nil {
		log.Fatal(err)
	}
	if err := privdrop.Drop(t); err != nil {
		log.Fatal(err)
	}
	// ... later, before handling untrusted input ...
	if err := privdrop.Check(t); err != nil {
		log.Fatal(err) // 77, Fatal
	}
}

// Chown hands the output files (State.ChownPaths) to the configured user
// while still root, without dropping; the privdrop stage then skips it.
// Context.ChownPaths is the same for a daemon.
func ExampleChown() {
	s := &stages.State{
		Config:     stages.Config{User: "nobody", Pidfile: "/run/app.pid"},
		ChownPaths: []string{"/var/log/app.log"}, // what the output stage recorded
	}
	if err := privdrop.Chown(s); err != nil {
		log.Fatal(err) // 73, or 67 for an unknown user
	}
	fmt.Println(s.Chowned) // true
}

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here before the notify stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("privdrop"), blivet.WithStageBefore("notify", privdrop.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what hooks refer to: privileged initialisation is
// blivet.WithHookBefore("privdrop", fn).
func ExampleStage_Name() {
	fmt.Println(privdrop.New().Name())
	// Output: privdrop
}

// Run resolves, chowns, drops and checks, then sets State.Dropped; with no
// user or group configured it does nothing.
func ExampleStage_Run() {
	s := &stages.State{Config: stages.Config{User: "www-data", ChownPaths: true}, ChownPaths: []string{"/var/log/web.log"}}
	if err := privdrop.New().Run(s); err != nil {
		log.Fatalf("exit %d: %v", blivet.ExitCodeOf(err), err)
	}
	fmt.Println(s.Chowned, s.Dropped) // true true
}

// Capability names are those of capabilities(7), with or without the
// "cap_" prefix, in any case; an unknown one is a usage error naming it.
func ExampleParseCapabilities() {
	_, err := privdrop.ParseCapabilities("net_bind_servcie")
	fmt.Println(blivet.ExitCodeOf(err))
	fmt.Println(err)
	// Output:
	// 64
	// privdrop: unknown capability "net_bind_servcie" (names as in capabilities(7), e.g. net_bind_service)
}

// Drop by hand keeping a capability: the daemon runs as nobody and may
// still bind ports below 1024 (Linux, a program without cgo). (Not run: it
// drops the process's privileges.)
func ExampleParseCapabilities_drop() {
	t, err := privdrop.Resolve("nobody", "")
	if err != nil {
		log.Fatal(err)
	}
	if t.Caps, err = privdrop.ParseCapabilities("CAP_NET_BIND_SERVICE"); err != nil {
		log.Fatal(err) // 64: unknown, setuid/setgid, not Linux, or cgo
	}
	if err := privdrop.Drop(t); err != nil {
		log.Fatal(err) // 77
	}
	fmt.Println(t) // user nobody (uid 65534), primary gid 65534, keeping cap_net_bind_service
}
