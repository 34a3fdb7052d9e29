package notify_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/blivet-go/blivet/notify"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
)

// Waiting is how a launcher waits on the readiness pipe: here the daemon's
// side is played by a Pipe in the same process.
func ExampleWaiting_Await() {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	line := notify.NewPipe(w)
	_ = line.ReportPID(4242)
	_ = line.Ready()

	out := notify.Waiting{Timeout: 10 * time.Second}.Await(r)
	fmt.Println(out.PID, out.ExitCode, out.Err)
	// Output: 4242 0 <nil>
}

// An error crosses the pipe with its stage and exit code, and a typed
// error inside it comes back as itself: the launcher can still ask who
// holds the lock.
func ExampleWaiting_Await_conflict() {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	_ = notify.NewPipe(w).Fail(&stages.Error{Stage: "pidfile", Code: stages.ExitUnavailable,
		Err: &pidfile.ConflictError{Path: "/run/app.pid", PID: 4242}})

	out := notify.Waiting{}.Await(r)
	var c *pidfile.ConflictError
	fmt.Println(out.ExitCode, errors.As(out.Err, &c), c.PID, c.Path)
	// Output: 69 true 4242 /run/app.pid
}
