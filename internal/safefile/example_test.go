package safefile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/safefile"
)

// Open refuses a symbolic link as the last component, naming the path and
// the reason, with exit code 73.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "safefile")
	defer os.RemoveAll(dir)
	log := filepath.Join(dir, "app.log")
	_ = os.Symlink("/etc/passwd", log)

	_, err := safefile.Open(log, safefile.Spec{
		Stage: "output", What: "output file", Access: unix.O_WRONLY,
		Create: true, Perm: 0o644, Truncate: true, Allow: safefile.Regular,
	})
	fmt.Println(err != nil, filepath.Base(log))
	// Output: true app.log
}

// Chown changes the owner through the open descriptor, never by path.
func ExampleChown() {
	f, _ := os.CreateTemp("", "safefile")
	defer os.Remove(f.Name())
	defer f.Close()
	changed, err := safefile.Chown(int(f.Fd()), f.Name(), -1, -1, "privdrop")
	fmt.Println(changed, err)
	// Output: true <nil>
}

// OpenDir walks a directory path one component at a time.
func ExampleOpenDir() {
	fd, err := safefile.OpenDir("/", "chdir", "working directory")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer unix.Close(fd)
	fmt.Println("opened")
	// Output: opened
}
