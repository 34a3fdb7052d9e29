package exefile

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestWriteWhileForking writes and runs scripts while other goroutines
// start processes all the time: without the fork lock some runs fail with
// "text file busy".
func TestWriteWhileForking(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := exec.Command("/bin/true").Run(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 200; i++ {
		path := filepath.Join(dir, "script")
		if err := Write(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(path).Run(); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		copied := filepath.Join(dir, "copy")
		if err := Copy(path, copied, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(copied).Run(); err != nil {
			t.Fatalf("run %d of the copy: %v", i, err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}
