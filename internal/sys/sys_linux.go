package sys

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const fdDir = "/proc/self/fd"

// maxSignal is one past the highest signal number (Linux has 64).
const maxSignal = 65

// exePath returns /proc/self/exe, which always executes the running
// program's own file, even when the file at its path has been replaced or
// deleted since (a package upgrade during a start): a path could name
// another file by the time it is executed. The kernel then names the new
// process "exe"; the marker carries the program's name, and the new
// generation takes it back first thing (SetProcessName).
func exePath() (string, error) { return SelfExe, nil }

// SelfExe is the path that always executes the running program's file.
const SelfExe = "/proc/self/exe"

// SetProcessName sets the name ps, top and pgrep show for this process
// (/proc/PID/comm of its main thread), truncated to 15 bytes.
func SetProcessName(name string) error {
	if len(name) > 15 {
		name = name[:15]
	}
	// Raw calls, not os.WriteFile: an *os.File would start Go's poller
	// in a daemon that may never need it.
	path := "/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/comm"
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(name)); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// ProcessName returns the name of this process's main thread.
func ProcessName() string {
	// Raw calls, as in SetProcessName.
	fd, err := unix.Open("/proc/self/comm", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	var b [64]byte
	n, err := unix.Read(fd, b[:])
	if err != nil || n <= 0 {
		return ""
	}
	return strings.TrimSuffix(string(b[:n]), "\n")
}

func cloexecExcept(keep []int) error {
	// close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11+) marks whole
	// ranges in one call: O(number of kept fds), whatever the limit.
	lo := uint(3)
	ok := true
	for _, k := range append(keep, -1) {
		hi := ^uint(0)
		if k >= 0 {
			if uint(k) < lo {
				continue
			}
			hi = uint(k) - 1
		}
		if hi >= lo {
			if err := unix.CloseRange(lo, hi, unix.CLOSE_RANGE_CLOEXEC); err != nil {
				ok = false
				break
			}
		}
		if k >= 0 {
			lo = uint(k) + 1
		}
	}
	if ok {
		return nil
	}
	if fds, err := listFDs(fdDir); err == nil {
		return cloexecList(fds, keep)
	}
	return bruteForce(keep)
}

// ClearThreadSigmask empties the calling thread's signal mask and returns a
// function that restores it. The caller must hold runtime.LockOSThread.
func ClearThreadSigmask() (restore func(), err error) {
	var empty, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old); err != nil {
		return func() {}, os.NewSyscallError("pthread_sigmask", err)
	}
	return func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }, nil
}

// ThreadSigmaskEmpty reports whether the calling thread blocks no signal.
func ThreadSigmaskEmpty() bool {
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &old); err != nil {
		return true
	}
	for _, w := range old.Val {
		if w != 0 {
			return false
		}
	}
	return true
}

// IgnoredSignals returns the signals whose disposition is SIG_IGN in this
// process, read from /proc/self/status (exact, whatever Go knows of them).
func IgnoredSignals() ([]syscall.Signal, error) {
	mask, err := StatusMask(os.Getpid(), 0, "SigIgn")
	if err != nil {
		return nil, err
	}
	var out []syscall.Signal
	for i := 1; i < maxSignal; i++ {
		if mask&(1<<(i-1)) != 0 {
			out = append(out, syscall.Signal(i))
		}
	}
	return out, nil
}

// StatusMask reads a hexadecimal signal mask field (SigIgn, SigBlk, SigCgt)
// from /proc/PID/status, or /proc/PID/task/TID/status when tid is not 0.
func StatusMask(pid, tid int, field string) (uint64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	if tid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, &os.PathError{Op: "read " + field, Path: path, Err: syscall.ENOENT}
}

// Dup2 makes newfd a copy of oldfd (clearing close-on-exec on newfd).
func Dup2(oldfd, newfd int) error { return unix.Dup3(oldfd, newfd, 0) }

// Gone reports whether no thread of process pid runs any more: there is no
// such process, or only zombie threads are left (a Go process whose main
// thread has exited still has threads holding its fds and locks until they
// all end; an unreaped zombie holds nothing). It reads
// /proc/PID/task/*/stat; without /proc it falls back to kill(pid, 0),
// which cannot tell a zombie from a live process.
//
// A scan that is not conclusive is repeated: during an execve from a
// thread other than the leader, the leader turns zombie and the executing
// thread takes its ID in place, and for an instant /proc can list no
// thread, the zombie leader alone, or a thread being released (X), or
// miss the directory. So an exec is never taken for an end: a process
// counts as ended when two scans in a row find only zombies (and the
// kernel's thread count agrees) or no directory. A process that stays
// inconclusive is reported as not gone (callers poll).
func Gone(pid int) bool {
	if pid <= 0 {
		return true
	}
	dir := "/proc/" + strconv.Itoa(pid)
	gone, missing := 0, 0
	for scan := 0; scan < 8; scan++ {
		switch goneScan(dir, pid) {
		case scanLive:
			return false
		case scanGone:
			missing = 0
			if gone++; gone == 2 {
				return true
			}
		case scanMissing:
			gone = 0
			if missing++; missing == 2 {
				return true // gone, and reaped
			}
		default:
			gone, missing = 0, 0
		}
	}
	return false
}

type scanResult int

const (
	scanLive    scanResult = iota
	scanGone               // zombies only, and the kernel counts no other thread
	scanUnsure             // in the middle of a change: scan again
	scanMissing            // no such process directory
)

// goneScan reads the threads' states once.
func goneScan(dir string, pid int) scanResult {
	ents, err := os.ReadDir(dir + "/task")
	if err != nil {
		if _, serr := os.Stat("/proc/self/task"); serr != nil {
			// No /proc: kill(2) cannot tell a zombie from a live process.
			if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
				return scanGone
			}
			return scanLive
		}
		return scanMissing
	}
	if len(ents) == 0 {
		return scanUnsure
	}
	result := scanGone
	for _, e := range ents {
		data, err := os.ReadFile(dir + "/task/" + e.Name() + "/stat")
		if err != nil {
			result = scanUnsure // released since the listing
			continue
		}
		// The state follows the command name, in parentheses, which may
		// itself contain ") ".
		if i := strings.LastIndexByte(string(data), ')'); i >= 0 && i+2 < len(data) {
			switch data[i+2] {
			case 'Z': // a zombie holds nothing
			case 'X', 'x':
				result = scanUnsure // being released
			default:
				return scanLive
			}
		}
	}
	if result == scanGone {
		// Zombies only: unless a thread the listing missed still counts.
		if n, err := statusField(dir+"/status", "Threads"); err != nil || n > len(ents) {
			return scanUnsure
		}
	}
	return result
}

// statusField returns the decimal value of field in a /proc status file.
func statusField(path, field string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, &os.PathError{Op: "read " + field, Path: path, Err: syscall.ENOENT}
}

func pipe(p *[2]int) error { return unix.Pipe2(p[:], unix.O_CLOEXEC) }
