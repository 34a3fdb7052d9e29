package sys

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// execChainEnv makes the test binary a helper that executes itself N more
// times, each time from a thread that is not the thread-group leader, and
// then becomes sleep(1).
const execChainEnv = "BLIVET_SYS_EXEC_CHAIN"

func TestMain(m *testing.M) {
	if v := os.Getenv(execChainEnv); v != "" {
		execChain(v)
	}
	os.Exit(m.Run())
}

func execChain(v string) {
	n, _ := strconv.Atoi(v)
	runtime.LockOSThread() // the main goroutine keeps the leader thread
	done := make(chan error)
	go func() {
		// On another thread: the exec must replace the leader in place.
		if n <= 0 {
			done <- syscall.Exec("/bin/sleep", []string{"sleep", "30"}, os.Environ())
			return
		}
		os.Setenv(execChainEnv, strconv.Itoa(n-1))
		exe, _ := os.Executable()
		done <- syscall.Exec(exe, os.Args, os.Environ())
	}()
	os.Stderr.WriteString("exec: " + (<-done).Error() + "\n")
	os.Exit(2)
}

// TestGoneIsNeverTrueDuringExec: a process that executes a program from a
// thread other than its leader is never reported gone (the leader turns
// zombie and the executing thread takes its ID), only once it has ended.
func TestGoneIsNeverTrueDuringExec(t *testing.T) {
	if _, err := os.Stat("/bin/sleep"); err != nil {
		t.Skip("needs /bin/sleep")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), execChainEnv+"=300")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	checks := 0
	for {
		if Gone(pid) {
			t.Fatalf("process %d reported gone after %d checks while it was executing (comm %q)", pid, checks, comm(pid))
		}
		checks++
		if comm(pid) == "sleep" {
			break // the chain is done
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exec chain did not end within 60s (%d checks)", checks)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !Gone(pid) {
		t.Errorf("process %d not gone after it was killed and reaped", pid)
	}
	t.Logf("%d checks during 300 executions", checks)
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}
