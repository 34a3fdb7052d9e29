package pidfile_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blivet-go/blivet"
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

// What a daemon does at start: lock the pidfile and write its PID, in one
// call; a second instance gets 69.
func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mydaemon.pid")

	lock, err := pidfile.Create(path, 4242)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := os.ReadFile(path)
	fmt.Printf("%q\n", data)
	defer lock.Unlock()
	defer lock.Remove() // on shutdown: remove while locked, then unlock

	_, err = pidfile.Create(path, 4343)
	fmt.Println(stages.ExitCodeOf(err))
	// Output:
	// "4242\n"
	// 69
}

// The message names the holder; FromFile says the PID is only what the
// file claims (the kernel did not name the holder).
func ExampleConflictError_Error() {
	fmt.Println(&pidfile.ConflictError{Path: "/run/app.pid", PID: 4242})
	fmt.Println(&pidfile.ConflictError{Path: "/run/app.pid", PID: 4242, FromFile: true})
	// Output:
	// /run/app.pid is locked by another instance (PID 4242)
	// /run/app.pid is locked by another instance (PID 4242, according to the file)
}

// The lock is an flock on this open file: it is held while the file (or a
// copy of its descriptor) is open. Close it only through Unlock.
func ExampleLock_File() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	lock, _ := pidfile.Acquire(filepath.Join(dir, "app.lock"))
	fmt.Println(lock.File() != nil)
	_ = lock.Unlock()
	fmt.Println(lock.File() == nil)
	// Output:
	// true
	// true
}

func ExampleLock_Path() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	lock, _ := pidfile.Acquire(dir + "/./app.pid")
	defer lock.Unlock()
	fmt.Println(lock.Path() == filepath.Join(dir, "app.pid"))
	// Output: true
}

// Lock first, write the PID later (once it is known, or after a fork).
// WritePID replaces the content through the locked descriptor.
func ExampleLock_WritePID() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	lock, _ := pidfile.Acquire(path)
	defer lock.Unlock()
	_ = lock.WritePID(123456)
	_ = lock.WritePID(42)
	data, _ := os.ReadFile(path)
	fmt.Printf("%q\n", data)
	// Output: "42\n"
}

// Remove while still holding the lock, then Unlock: no other instance can
// lock the file in between and lose its pidfile to our removal.
func ExampleLock_Remove() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	lock, _ := pidfile.Create(path, os.Getpid())
	fmt.Println(lock.Remove())
	fmt.Println(lock.Unlock())
	_, err := os.Stat(path)
	fmt.Println(os.IsNotExist(err))
	// Output:
	// <nil>
	// <nil>
	// true
}

// Unlock releases the lock (the file stays): another instance may start.
func ExampleLock_Unlock() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.lock")
	lock, _ := pidfile.Acquire(path)
	fmt.Println(lock.Unlock(), lock.Unlock()) // idempotent
	again, err := pidfile.Acquire(path)
	fmt.Println(err)
	_ = again.Unlock()
	// Output:
	// <nil> <nil>
	// <nil>
}

// A pidfile next to a standalone lockfile the caller holds: Write takes no
// lock of its own.
func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	lock, err := pidfile.Acquire(filepath.Join(dir, "app.lock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lock.Unlock()
	w, _ := pidfile.Write(filepath.Join(dir, "app.pid"), 4242)
	defer w.Remove()
	data, _ := os.ReadFile(filepath.Join(dir, "app.pid"))
	fmt.Printf("%q\n", data)
	// Output: "4242\n"
}

// Remove leaves a pidfile another instance has rewritten since: with
// unlocked pidfiles (WithoutLockfile) the last writer owns it.
func ExampleWritten_Remove() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	first, _ := pidfile.Write(path, 100)
	_, _ = pidfile.Write(path, 200) // a second instance
	_ = first.Remove()
	data, _ := os.ReadFile(path)
	fmt.Printf("%q\n", data)
	// Output: "200\n"
}

// The default stage, as in blivet.DefaultStages. A program that removed
// or replaced it can put it back, here after the env stage.
func ExampleNew() {
	_, err := blivet.Validate(blivet.WithoutStage("pidfile"), blivet.WithStageAfter("env", pidfile.New()))
	fmt.Println(err)
	// Output: <nil>
}

// The name is what hooks and stage edits refer to.
func ExampleStage_Name() {
	fmt.Println(pidfile.New().Name())
	// Output: pidfile
}

// Run locks Config.LockPath(), writes this process's PID and registers the
// cleanup that removes the pidfile; the State's cleanups run it.
func ExampleStage_Run() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")
	s := &stages.State{Config: stages.Config{Pidfile: path}}
	if err := pidfile.New().Run(s); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := pidfile.Probe(path)
	fmt.Println(st.Held, st.PID == os.Getpid(), len(s.OwnFDs))
	_ = s.RunCleanups() // what ctx.Close does
	st, _ = pidfile.Probe(path)
	fmt.Println(st.Exists)
	// Output:
	// true true 1
	// false
}
