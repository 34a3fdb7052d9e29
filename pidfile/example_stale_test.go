package pidfile_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/blivet-go/blivet/pidfile"
)

// RemoveStale cleans up after a program that ended without removing its
// pidfile: only when the file still names that PID and nobody holds the
// lock.
func ExampleRemoveStale() {
	dir, err := os.MkdirTemp("", "blivet-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.pid")

	ended := exec.Command("/bin/true") // a process that has ended
	if err := ended.Run(); err != nil {
		fmt.Println(err)
		return
	}
	pid := ended.Process.Pid
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	err = pidfile.RemoveStale(path, path, pid)
	_, statErr := os.Stat(path)
	fmt.Println(err, os.IsNotExist(statErr))
	// Output: <nil> true
}
