//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A second launch that loses the lock to a running instance changes
// nothing of that instance: its output is not truncated, its files keep
// their owner, and a pidfile next to a separate lockfile stays. A failed
// launch never removes a separate lockfile. On both launch forms.
func TestLosingLaunchChangesNothing(t *testing.T) {
	for _, form := range []struct {
		name string
		env  []string
	}{{"planned", nil}, {"reexec", []string{reexecEnv + "=1"}}} {
		t.Run(form.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			out, pid, lock := filepath.Join(dir, "out"), filepath.Join(dir, "p.pid"), filepath.Join(dir, "l.lock")
			args := []string{"-l", lock, "-p", pid, "-o", out}
			if os.Geteuid() == 0 {
				args = append(args, "-u", "nobody")
			}
			first := daemonize(t, append(args, "/bin/sh", "-c", "echo running; exec sleep 300"), withEnv(form.env...)).expect(0)
			running := first.daemon()
			deadline := time.Now().Add(5 * time.Second)
			for readFile(t, out) != "running\n" {
				if time.Now().After(deadline) {
					t.Fatalf("the first instance never wrote its output: %q", readFile(t, out))
				}
				time.Sleep(2 * time.Millisecond)
			}
			st0, _ := os.Stat(out)
			second := args
			if os.Geteuid() == 0 {
				second = append(args[:len(args)-2:len(args)-2], "-u", "daemon")
			}
			daemonize(t, append(second, "/bin/sh", "-c", "echo second"), withEnv(form.env...)).expect(69)
			if got := readFile(t, out); got != "running\n" {
				t.Errorf("the losing launch changed the running instance's output to %q", got)
			}
			if st1, _ := os.Stat(out); uid(st1) != uid(st0) {
				t.Errorf("the losing launch handed the running instance's output from uid %d to %d", uid(st0), uid(st1))
			}
			if got := readFile(t, pid); got != strconv.Itoa(running)+"\n" {
				t.Errorf("pidfile %q after the losing launch, want %d", got, running)
			}
			// A failed launch (66) on another lockfile leaves that lockfile.
			lock2 := filepath.Join(dir, "l2.lock")
			daemonize(t, []string{"-l", lock2, "-p", filepath.Join(dir, "p2.pid"), "no-such-program-here"}, withEnv(form.env...)).expect(66)
			if _, err := os.Stat(lock2); err != nil {
				t.Errorf("the failed launch removed its separate lockfile: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "p2.pid")); err == nil {
				t.Error("the failed launch left its pidfile")
			}
		})
	}
}

func uid(st os.FileInfo) uint32 {
	if st == nil {
		return ^uint32(0)
	}
	return st.Sys().(*syscall.Stat_t).Uid
}
