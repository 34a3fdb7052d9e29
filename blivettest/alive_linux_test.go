package blivettest_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
	"golang.org/x/sys/unix"
)

// The main goroutine stays on the main thread, so a helper can end the
// main thread alone (the "leader-exits" helper).
func init() { runtime.LockOSThread() }

func init() {
	blivettest.Register("leader-exits", func(h *blivettest.H) {
		// Hold a lock, then end the main thread (exit(2), not
		// exit_group(2)): the process becomes a zombie thread-group leader
		// whose other threads run on and keep the lock.
		fd, err := unix.Open(filepath.Join(h.Dir, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
		if err != nil {
			panic(err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
			panic(err)
		}
		h.Report("locked", os.Getpid())
		unix.RawSyscall(unix.SYS_EXIT, 0, 0, 0)
	})
}

// mainThreadState is the state letter of pid's main thread.
func mainThreadState(pid int) byte {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' && i+2 < len(data) {
			return data[i+2]
		}
	}
	return 0
}

// TestAliveWithZombieLeader: a process whose main thread has exited while
// its other threads run is alive (it holds its fds and locks), although its
// main thread looks dead; it is Gone only once every thread has exited,
// and only then is its lock free.
func TestAliveWithZombieLeader(t *testing.T) {
	r, _ := blivettest.Start(t, "leader-exits")
	var pid int
	r.Await("locked", &pid)
	blivettest.Eventually(t, 10*time.Second, func() bool { return mainThreadState(pid) == 'Z' }, "main thread of %d never exited (state %q)", pid, mainThreadState(pid))
	fd, err := unix.Open(filepath.Join(r.Dir, "lock"), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Fatalf("flock on the lock of a process with a zombie main thread: %v, want EWOULDBLOCK: the test proves nothing", err)
	}
	if !blivettest.Alive(pid) || blivettest.Gone(pid) {
		t.Errorf("Alive(%d) = false with its threads running and its lock held", pid)
	}
	if pids := r.PIDs(); len(pids) != 1 || pids[0] != pid {
		t.Errorf("PIDs() = %v, want [%d] (found through a live thread)", pids, pid)
	}
	r.Kill() // SIGKILL, and waits until Gone
	if !blivettest.Gone(pid) || len(r.PIDs()) != 0 {
		t.Fatalf("after Kill: Gone %v, PIDs %v", blivettest.Gone(pid), r.PIDs())
	}
	// Gone means everything is released: no polling needed for the lock.
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("lock still held after every thread of %d exited: %v", pid, err)
	}
	r.Wait()
}
