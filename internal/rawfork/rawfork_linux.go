//go:build linux && (amd64 || arm64)

package rawfork

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// args is everything the raw children use, prepared before the fork so
// they never allocate.
type args struct {
	path      *byte
	argv      **byte
	envv      **byte
	files     []int // the daemon's fd i is files[i]; -1 closes it
	pipe      int   // the readiness pipe's write end in the launcher
	pipeAt    int   // its number in the daemon
	closeFrom int   // > 0: mark fds from here up close-on-exec
	reset     bool  // reset every signal to SIG_DFL
	mask      uint64
	dfl       [4]uint64 // a kernel struct sigaction meaning SIG_DFL
	errSetsid []byte
	errFork   []byte
	errFDs    []byte
	errExec   []byte
	errTail   []byte
	plan      *plan // run this instead of re-executing as the daemon
	// vfork makes both forks clone(CLONE_VM|CLONE_VFORK): no page tables
	// copied, the forking thread suspended until its child execs or exits.
	vfork bool
	// keep lists, in increasing order, the fds the daemon child needs:
	// the sources in files and the pipe. The intermediate closes every
	// other fd, so the daemon child's copy of the fd table is small even
	// when the launcher inherited a descriptor near a huge RLIMIT_NOFILE.
	keep []int
}

// cloneFlags for the two forks.
const (
	forkFlags  = uintptr(syscall.SIGCHLD)
	vforkFlags = uintptr(syscall.SIGCHLD) | syscall.CLONE_VM | syscall.CLONE_VFORK
)

// rawVforkClone is clone(2) safe for CLONE_VM|CLONE_VFORK (see the .s
// files). Call it only from the function the child continues in, never
// through a wrapper the child would return from.
//
//go:noescape
func rawVforkClone(flags uintptr) (pid uintptr, errno uintptr)

var probe struct {
	once sync.Once
	ok   bool
}

// Supported reports whether DoubleFork works here: it needs close_range(2)
// with CLOSE_RANGE_CLOEXEC (Linux 5.11), since the raw child cannot list
// /proc/self/fd.
func Supported() bool {
	probe.once.Do(func() {
		// An empty range far above any real fd: succeeds only if supported.
		probe.ok = unix.CloseRange(^uint(0)-1, ^uint(0)-1, unix.CLOSE_RANGE_CLOEXEC) == nil
	})
	return probe.ok
}

func cstrings(ss []string) (**byte, error) {
	ptrs := make([]*byte, len(ss)+1)
	for i, s := range ss {
		p, err := syscall.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		ptrs[i] = p
	}
	return &ptrs[0], nil
}

func record(stage, what string) []byte { return recordCode(71, stage, what) }

func recordCode(code int, stage, what string) []byte {
	return []byte(`blivet:error ` + strconv.Itoa(code) + ` "` + stage + `" "` + strings.ReplaceAll(what, `"`, `'`) + `: errno=`)
}

// DoubleFork starts path as a daemon through a raw intermediate (see the
// package doc). files is the daemon's fd table, pipe the readiness pipe's
// write end here and pipeAt its number in the daemon. With closeFrom, every
// fd from len(files) up is marked close-on-exec in the daemon; with
// resetSignals the daemon starts with no signal ignored or blocked. It
// returns the intermediate's PID, which the caller must reap.
func DoubleFork(path string, argv, env []string, files []int, pipe, pipeAt int, closeFrom, resetSignals bool) (int, error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	// The daemon child execs right away: suspending this thread until it
	// did costs nothing and saves copying the page tables twice.
	return doubleFork(p, argv, env, files, pipe, pipeAt, closeFrom, resetSignals, nil, true)
}

func doubleFork(path *byte, argv, env []string, files []int, pipe, pipeAt int, closeFrom, resetSignals bool, pl *plan, vfork bool) (int, error) {
	if !Supported() {
		return 0, ErrUnsupported
	}
	a := &args{path: path, files: append([]int(nil), files...), pipe: pipe, pipeAt: pipeAt, reset: resetSignals,
		errSetsid: record("setsid", "setsid"), errFork: record("fork2", "fork"),
		errFDs: record("fork2", "arranging fds"), errExec: record("fork2", "re-executing the program"),
		errTail: []byte("\"\n"), plan: pl, vfork: vfork}
	var err error
	if a.argv, err = cstrings(argv); err != nil {
		return 0, err
	}
	if a.envv, err = cstrings(env); err != nil {
		return 0, err
	}
	if closeFrom {
		a.closeFrom = len(files)
		for _, fd := range append(files, pipe) {
			if fd >= 0 {
				a.keep = append(a.keep, fd)
			}
		}
		slices.Sort(a.keep)
		a.keep = slices.Compact(a.keep)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		return 0, err
	}
	if !resetSignals {
		a.mask = uint64(old.Val[0])
	}
	syscall.ForkLock.Lock()
	pid, errno := forkIntermediate(a)
	syscall.ForkLock.Unlock()
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	runtime.KeepAlive(a)
	runtime.KeepAlive(pl)
	if errno != 0 {
		return 0, errno
	}
	return int(pid), nil
}

// forkIntermediate forks; the child becomes the intermediate and never
// returns here.
//
//go:nosplit
//go:norace
func forkIntermediate(a *args) (uintptr, syscall.Errno) {
	var pid uintptr
	var errno syscall.Errno
	if a.vfork {
		var e uintptr
		pid, e = rawVforkClone(vforkFlags)
		errno = syscall.Errno(e)
	} else {
		pid, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, forkFlags, 0, 0, 0, 0, 0)
	}
	if errno != 0 || pid != 0 {
		return pid, errno
	}
	intermediate(a)
	return 0, 0
}

//go:nosplit
//go:norace
func intermediate(a *args) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); errno != 0 {
		fail(a, a.pipe, a.errSetsid, errno)
	}
	if a.closeFrom > 0 {
		closeUnkept(a)
	}
	var pid uintptr
	var errno syscall.Errno
	if a.vfork {
		var e uintptr
		pid, e = rawVforkClone(vforkFlags)
		errno = syscall.Errno(e)
	} else {
		pid, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, forkFlags, 0, 0, 0, 0, 0)
	}
	if errno != 0 {
		fail(a, a.pipe, a.errFork, errno)
	}
	if pid == 0 {
		if a.plan != nil {
			runPlan(a, a.plan)
		}
		daemon(a)
	}
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
}

//go:nosplit
//go:norace
func daemon(a *args) {
	arrangeFDs(a)
	resetSignals(a)
	_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(a.path)),
		uintptr(unsafe.Pointer(a.argv)), uintptr(unsafe.Pointer(a.envv)))
	fail(a, a.pipeAt, a.errExec, errno)
}

// closeUnkept closes, in the intermediate's own fd table, every fd the
// daemon child does not need (see args.keep). The launcher's table is not
// affected: the intermediate has a copy.
//
//go:nosplit
//go:norace
func closeUnkept(a *args) {
	from := uintptr(0)
	for _, fd := range a.keep {
		if uintptr(fd) > from {
			syscall.RawSyscall(unix.SYS_CLOSE_RANGE, from, uintptr(fd)-1, 0)
		}
		from = uintptr(fd) + 1
	}
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, from, ^uintptr(0), 0)
}

// arrangeFDs gives the daemon its fd table: fd i becomes a.files[i].
//
//go:nosplit
//go:norace
func arrangeFDs(a *args) {
	n := len(a.files)
	// Move any source fd that a lower slot would overwrite out of the way.
	for i := 0; i < n; i++ {
		if fd := a.files[i]; fd >= 0 && fd < i {
			nfd, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, uintptr(n))
			if errno != 0 {
				fail(a, a.pipe, a.errFDs, errno)
			}
			a.files[i] = int(nfd)
		}
	}
	for i := 0; i < n; i++ {
		fd := a.files[i]
		var errno syscall.Errno
		switch {
		case fd < 0:
			syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(i), 0, 0)
		case fd == i:
			_, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(i), syscall.F_SETFD, 0)
		default:
			_, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(fd), uintptr(i), 0)
		}
		if errno != 0 {
			fail(a, a.pipe, a.errFDs, errno)
		}
	}
	if a.closeFrom > 0 {
		if _, _, errno := syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(a.closeFrom), ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
			fail(a, a.pipeAt, a.errFDs, errno)
		}
	}
}

// resetSignals sets every signal to its default (when asked) and the mask
// to a.mask. Nothing of the Go runtime's handlers survives: they would
// run in a process without a runtime.
//
//go:nosplit
//go:norace
func resetSignals(a *args) {
	if a.reset {
		for sig := uintptr(1); sig < 65; sig++ {
			if sig != uintptr(syscall.SIGKILL) && sig != uintptr(syscall.SIGSTOP) {
				syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&a.dfl)), 0, 8, 0, 0)
			}
		}
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&a.mask)), 0, 8, 0, 0)
}

// fail writes an error record with errno to the pipe and exits 71.
//
//go:nosplit
//go:norace
func fail(a *args, pipe int, msg []byte, errno syscall.Errno) {
	writeBytes(pipe, msg)
	writeNumber(pipe, uintptr(errno))
	writeBytes(pipe, a.errTail)
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 71, 0, 0)
}

//go:nosplit
//go:norace
func writeBytes(fd int, b []byte) {
	if len(b) > 0 {
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	}
}

// writeNumber writes v in decimal.
//
//go:nosplit
//go:norace
func writeNumber(fd int, v uintptr) {
	var digits [20]byte
	i := formatNumber(&digits, v)
	if uint(i) < uint(len(digits)) {
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&digits[i])), uintptr(len(digits)-i))
	}
}

// formatNumber writes v in decimal at the end of buf and returns the
// index of its first digit.
//
//go:nosplit
//go:norace
func formatNumber(buf *[20]byte, v uintptr) int {
	i := len(buf)
	for i > 0 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return i
}
