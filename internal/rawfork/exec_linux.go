//go:build linux && (amd64 || arm64)

package rawfork

import (
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// plan is Program prepared for the raw child: C strings and plain words,
// no Go pointers written after the fork.
type plan struct {
	umask     uintptr
	dir       *byte
	drop      bool
	uid, gid  int
	groups    []uint32
	env       []uintptr // NUL-terminated C strings, then 0
	listenBuf []byte    // "LISTEN_PID=" + room for digits + NUL, when set
	cands     []uintptr
	argv      []uintptr
	shArgv    []uintptr // shell, candidate slot, argv[1:]..., 0
	shell     *byte
	keep      [][]byte // keeps the C strings alive

	lockFD            int
	lockPath          *byte
	lockMaj, lockMin  uint32
	lockIno           uint64
	regular, writePID bool
	atFDCWD           int
	stx               *unix.Statx_t
	pidText           []byte // room for the PID and "\n"

	pidRec, execRec, nl                []byte
	errChdir, errDrop, errVerify       []byte
	errNotFound, errDenied, errExecErr []byte
	errLocked, errLockOp, errReplaced  []byte
	errPidWrite                        []byte
}

func (p *plan) cstr(s string) (uintptr, error) {
	b, err := syscall.ByteSliceFromString(s)
	if err != nil {
		return 0, err
	}
	p.keep = append(p.keep, b)
	return uintptr(unsafe.Pointer(&b[0])), nil
}

func (p *plan) cstrs(ss []string) ([]uintptr, error) {
	out := make([]uintptr, 0, len(ss)+1)
	for _, s := range ss {
		c, err := p.cstr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return append(out, 0), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newPlan(pr *Program) (*plan, error) {
	p := &plan{umask: uintptr(pr.Umask), drop: pr.Drop, uid: pr.UID, gid: pr.GID}
	var err error
	if p.dir, err = syscall.BytePtrFromString(pr.Dir); err != nil {
		return nil, err
	}
	for _, g := range pr.Groups {
		p.groups = append(p.groups, uint32(g))
	}
	if p.env, err = p.cstrs(pr.Env); err != nil {
		return nil, err
	}
	if pr.ListenPID {
		p.listenBuf = make([]byte, len("LISTEN_PID=")+21)
		copy(p.listenBuf, "LISTEN_PID=")
		p.env = append(p.env[:len(p.env)-1], uintptr(unsafe.Pointer(&p.listenBuf[0])), 0)
	}
	if p.cands, err = p.cstrs(pr.Candidates); err != nil {
		return nil, err
	}
	if p.argv, err = p.cstrs(pr.Argv); err != nil {
		return nil, err
	}
	if p.shell, err = syscall.BytePtrFromString(pr.Shell); err != nil {
		return nil, err
	}
	sh, err := p.cstrs(append([]string{pr.Shell, ""}, pr.Argv[1:]...))
	if err != nil {
		return nil, err
	}
	p.shArgv = sh
	p.pidRec = []byte("blivet:pid ")
	p.execRec = []byte("blivet:exec\n")
	p.nl = []byte("\n")
	p.errChdir = recordCode(71, "chdir", "chdir "+pr.Dir)
	p.errDrop = recordCode(77, "privdrop", "switching to uid "+strconv.Itoa(pr.UID)+" gid "+strconv.Itoa(pr.GID))
	p.errVerify = recordCode(77, "privdrop", "the privilege drop did not hold")
	p.errNotFound = recordCode(66, "exec", orDefault(pr.NotFound, pr.Name))
	p.errDenied = recordCode(66, "exec", orDefault(pr.Denied, pr.Name))
	p.errExecErr = recordCode(71, "exec", orDefault(pr.ExecFailed, pr.Name))
	p.lockFD = -1
	if pr.LockFD >= 0 && pr.LockPath != "" {
		p.lockFD = pr.LockFD
		if p.lockPath, err = syscall.BytePtrFromString(pr.LockPath); err != nil {
			return nil, err
		}
		p.lockMaj, p.lockMin, p.lockIno = unix.Major(pr.LockDev), unix.Minor(pr.LockDev), pr.LockIno
		p.regular, p.writePID = pr.Regular, pr.WritePID
		p.atFDCWD = unix.AT_FDCWD
		p.stx = new(unix.Statx_t)
		p.pidText = make([]byte, 21)
		p.errLocked = recordCode(69, "pidfile", pr.LockPath+" is locked by another instance")
		p.errLockOp = recordCode(73, "pidfile", "locking "+pr.LockPath)
		p.errReplaced = recordCode(69, "pidfile", pr.LockPath+" was removed or replaced while starting (another instance is starting or stopping)")
		p.errPidWrite = recordCode(73, "pidfile", "writing "+pr.LockPath)
	}
	return p, nil
}

// DoubleForkExec starts pr as a daemon through a raw intermediate: like
// DoubleFork, but the daemon child writes its PID record to the pipe,
// sets the umask and directory, drops privileges, and execs the program
// after an "exec pending" record. files, pipe and pipeAt are as for
// DoubleFork; every fd beyond files is marked close-on-exec. It returns
// the intermediate's PID.
func DoubleForkExec(pr *Program, files []int, pipe, pipeAt int) (int, error) {
	p, err := newPlan(pr)
	if err != nil {
		return 0, err
	}
	return doubleFork(nil, nil, nil, files, pipe, pipeAt, true, true, p, pr.Vfork)
}

// runPlan is the raw daemon child of DoubleForkExec. It never returns.
//
//go:nosplit
//go:norace
func runPlan(a *args, p *plan) {
	arrangeFDs(a)
	fd := a.pipeAt
	// The launcher learns the daemon's PID first: it writes the pidfile.
	pid, _, _ := syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	writeBytes(fd, p.pidRec)
	writeNumber(fd, pid)
	writeBytes(fd, p.nl)
	if p.lockFD >= 0 {
		takeLock(a, p, pid)
	}

	syscall.RawSyscall(syscall.SYS_UMASK, p.umask, 0, 0)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.dir)), 0, 0); errno != 0 {
		fail(a, fd, p.errChdir, errno)
	}
	if p.drop {
		dropPrivileges(a, p)
	}
	if p.listenBuf != nil {
		fillListenPID(p, pid)
	}
	resetSignals(a)
	// The pipe must close at exec: end of file after "exec" is success.
	syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
	writeBytes(fd, p.execRec)

	var denied, last syscall.Errno
	for i := 0; i+1 < len(p.cands); i++ {
		c := p.cands[i]
		_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, c, uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.env[0])))
		if errno == syscall.ENOEXEC {
			// No recognised format (a script without #!): run it through
			// the shell, as execvp(3) does.
			p.shArgv[1] = c
			_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.shell)),
				uintptr(unsafe.Pointer(&p.shArgv[0])), uintptr(unsafe.Pointer(&p.env[0])))
		}
		switch errno {
		case syscall.EACCES:
			denied = errno
		case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE, syscall.ENODEV, syscall.ETIMEDOUT:
			last = errno
		default:
			fail(a, fd, p.errExecErr, errno)
		}
	}
	if denied != 0 {
		fail(a, fd, p.errDenied, denied)
	}
	if last == 0 {
		last = syscall.ENOENT
	}
	fail(a, fd, p.errNotFound, last)
}

// takeLock moves the launcher's lock to the daemon: unlock and relock the
// shared open file description, so /proc/locks names this process. Another
// instance can win the lock in between; then this launch reports the
// conflict (69), like any loser. Then it checks that the path still names
// the locked file and writes the PID through the locked descriptor.
//
//go:nosplit
//go:norace
func takeLock(a *args, p *plan, pid uintptr) {
	fd := a.pipeAt
	lfd := uintptr(p.lockFD)
	syscall.RawSyscall(syscall.SYS_FLOCK, lfd, syscall.LOCK_UN, 0)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_FLOCK, lfd, syscall.LOCK_EX|syscall.LOCK_NB, 0); errno != 0 {
		if errno == syscall.EWOULDBLOCK {
			fail(a, fd, p.errLocked, errno)
		}
		fail(a, fd, p.errLockOp, errno)
	}
	if p.regular {
		_, _, errno := syscall.RawSyscall6(unix.SYS_STATX, uintptr(p.atFDCWD), uintptr(unsafe.Pointer(p.lockPath)),
			unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, uintptr(unsafe.Pointer(p.stx)), 0)
		if errno == 0 && (p.stx.Ino != p.lockIno || p.stx.Dev_major != p.lockMaj || p.stx.Dev_minor != p.lockMin) {
			errno = syscall.ESTALE
		}
		if errno != 0 {
			fail(a, fd, p.errReplaced, errno)
		}
	}
	if !p.writePID {
		return
	}
	var digits [20]byte
	i := formatNumber(&digits, pid)
	n := 0
	for ; i < len(digits) && n < len(p.pidText)-1; i, n = i+1, n+1 {
		p.pidText[n] = digits[i]
	}
	p.pidText[n] = '\n'
	n++
	buf := uintptr(unsafe.Pointer(&p.pidText[0]))
	var errno syscall.Errno
	var written uintptr
	if p.regular {
		// Write first, then truncate: a reader never sees an empty file.
		written, _, errno = syscall.RawSyscall6(syscall.SYS_PWRITE64, lfd, buf, uintptr(n), 0, 0, 0)
		if errno == 0 && written == uintptr(n) {
			_, _, errno = syscall.RawSyscall(syscall.SYS_FTRUNCATE, lfd, uintptr(n), 0)
		}
	} else {
		written, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, lfd, buf, uintptr(n))
	}
	if errno == 0 && written != uintptr(n) {
		errno = syscall.EIO
	}
	if errno != 0 {
		fail(a, fd, p.errPidWrite, errno)
	}
}

// dropPrivileges switches ids in the single-threaded raw child (so the
// per-thread system calls cover the whole process) and verifies the drop.
//
//go:nosplit
//go:norace
func dropPrivileges(a *args, p *plan) {
	fd := a.pipeAt
	var gptr uintptr
	if len(p.groups) > 0 {
		gptr = uintptr(unsafe.Pointer(&p.groups[0]))
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(p.groups)), gptr, 0); errno != 0 {
		fail(a, fd, p.errDrop, errno)
	}
	g := uintptr(p.gid)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESGID, g, g, g); errno != 0 {
		fail(a, fd, p.errDrop, errno)
	}
	if p.uid >= 0 {
		u := uintptr(p.uid)
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, u, u, u); errno != 0 {
			fail(a, fd, p.errDrop, errno)
		}
	}
	// Verify: every gid (and uid) is the target's, the groups are set, and
	// root cannot be regained.
	var r, e, s uint32
	syscall.RawSyscall(syscall.SYS_GETRESGID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s)))
	if r != uint32(p.gid) || e != uint32(p.gid) || s != uint32(p.gid) {
		fail(a, fd, p.errVerify, syscall.EPERM)
	}
	n, _, _ := syscall.RawSyscall(syscall.SYS_GETGROUPS, 0, 0, 0)
	if int(n) != len(p.groups) {
		fail(a, fd, p.errVerify, syscall.EPERM)
	}
	if p.uid >= 0 {
		syscall.RawSyscall(syscall.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s)))
		if r != uint32(p.uid) || e != uint32(p.uid) || s != uint32(p.uid) {
			fail(a, fd, p.errVerify, syscall.EPERM)
		}
		if p.uid != 0 {
			if _, _, errno := syscall.RawSyscall(syscall.SYS_SETUID, 0, 0, 0); errno == 0 {
				fail(a, fd, p.errVerify, syscall.EPERM)
			}
		}
	}
}

// fillListenPID completes "LISTEN_PID=" with pid and a NUL.
//
//go:nosplit
//go:norace
func fillListenPID(p *plan, pid uintptr) {
	var digits [20]byte
	i := formatNumber(&digits, pid)
	out := p.listenBuf[len("LISTEN_PID="):]
	j := 0
	for ; i < len(digits) && j < len(out)-1; i, j = i+1, j+1 {
		out[j] = digits[i]
	}
	if j < len(out) {
		out[j] = 0
	}
}
