package pidfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet/pidfile"
	"golang.org/x/sys/unix"
)

// An upgrade's new generation adopts the lock through the open file it
// inherited (here a dup in the same process): the lock is never released
// in between.
func ExampleAdopt() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	lock, err := pidfile.Create(path, os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	fd, _ := unix.Dup(int(lock.File().Fd())) // what the next generation inherits
	adopted, err := pidfile.Adopt(fd, path)
	fmt.Println(err)
	_ = lock.Abandon() // the old generation leaves: the lock stays
	st, _ := pidfile.Probe(path)
	fmt.Println("held:", st.Held)
	_ = adopted.Remove()
	_ = adopted.Unlock()
	// Output:
	// <nil>
	// held: true
}

// Abandon closes without unlocking: another process sharing the open file
// keeps the lock. With no one sharing it, the lock ends with the file.
func ExampleLock_Abandon() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	lock, _ := pidfile.Create(path, os.Getpid())
	fmt.Println(lock.Abandon(), lock.File() == nil)
	// Output: <nil> true
}

// The previous generation writes its successor's PID through the locked
// descriptor once the successor is ready.
func ExampleRewrite() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	lock, _ := pidfile.Create(path, 1234)
	defer lock.Unlock()
	fmt.Println(pidfile.Rewrite(lock.File(), 56))
	data, _ := os.ReadFile(path)
	fmt.Printf("%q\n", data)
	// Output:
	// <nil>
	// "56\n"
}
