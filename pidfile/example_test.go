package pidfile_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
)

// An init script's "status": ask the kernel who holds the pidfile's lock
// instead of trusting the number in the file.
func ExampleProbe() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mydaemon.pid")

	st, _ := pidfile.Probe(path)
	fmt.Println("before:", st.Exists, st.Held)

	lock, err := pidfile.Create(path, os.Getpid()) // what the daemon does
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ = pidfile.Probe(path)
	fmt.Println("running:", st.Held, st.PID == os.Getpid())

	lock.Remove() // what ctx.Close does: remove while locked, then unlock
	lock.Unlock()
	st, _ = pidfile.Probe(path)
	fmt.Println("after:", st.Exists, st.Held)
	// Output:
	// before: false false
	// running: true true
	// after: false false
}

// A second instance fails with exit code 69 and learns who holds the lock.
func ExampleAcquire() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mydaemon.pid")

	first, _ := pidfile.Create(path, os.Getpid())
	defer first.Unlock()

	_, err := pidfile.Acquire(path)
	var conflict *pidfile.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("exit code", stages.ExitCodeOf(err), "held by us:", conflict.PID == os.Getpid())
	}
	// Output: exit code 69 held by us: true
}
