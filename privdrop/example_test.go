package privdrop_test

import (
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/privdrop"
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
