//go:build linux && (amd64 || arm64)

package rawfork

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/stages"
)

// launch forks and runs c's steps in the children; it returns only in the
// launcher. Everything after the first clone runs without a Go runtime of
// its own: see the package documentation for the rules this function
// keeps. Every variable is declared before the fork, and after it only
// nosplit functions are called (the raw system calls, the clone routine
// and decimal, a leaf), so the child never needs more stack than the
// parent's stack check provided, and never returns from launch's frame.
//
//go:noinline
//go:norace
//go:nocheckptr
func launch(c *child) (pid uintptr, errno syscall.Errno) {
	var (
		e      uintptr
		i, j   int
		op     *rop
		v      uintptr
		lo     uintptr
		n      int
		sig    uintptr
		denied syscall.Errno
		last   syscall.Errno
		cand   uintptr
		want   uintptr
		sized  uintptr // the fd a lock step just read the size of (c.size), ^0 for none
		known  uintptr // sized as the previous step left it
	)
	sized = ^uintptr(0)
	// Block every signal on this thread until the clone returns, so that
	// no Go handler runs in the child before it resets them. From here
	// until the mask is restored nothing can move this goroutine to
	// another thread: preemption needs a signal or a stack check, and
	// only nosplit functions are called.
	c.all = ^uint64(0)
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&c.all)), uintptr(unsafe.Pointer(&c.saved)), 8, 0, 0); errno != 0 {
		return 0, errno
	}
	if !c.reset {
		c.mask = c.saved
	}
	if c.flags1&syscall.CLONE_VM != 0 {
		pid, e = rawVforkClone(c.flags1, &c.daemonTID)
	} else {
		pid, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, c.flags1, 0, 0, 0, 0, 0)
		e = uintptr(errno)
	}
	if pid != 0 || e != 0 {
		syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.saved)), 0, 8, 0, 0)
		return pid, syscall.Errno(e)
	}

	// The first child. Tell the launcher who we are: the last PID record
	// names the daemon.
	v, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	goto reportPID

steps:
	for ; i < len(c.ops); i++ {
		op = &c.ops[i]
		known, sized = sized, ^uintptr(0)
		switch op.kind {
		case stages.OpSetsid:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); errno != 0 {
				goto fail
			}
		case stages.OpFork:
			// This process only forks and exits (or waits): close, in its
			// own copy of the fd table, what the daemon does not need, so
			// the daemon's copy stays small whatever the launcher had open.
			if c.closeUnkept {
				lo = 0
				for j = 0; j < len(c.needed); j++ {
					if c.needed[j] > lo {
						syscall.RawSyscall(unix.SYS_CLOSE_RANGE, lo, c.needed[j]-1, 0)
					}
					lo = c.needed[j] + 1
				}
				syscall.RawSyscall(unix.SYS_CLOSE_RANGE, lo, ^uintptr(0), 0)
			}
			switch {
			case c.direct:
				// The daemon goes on on this stack; this process exits
				// inside rawCloneLeave. Until the daemon is off the
				// stack, daemonTID (its TID, set by the kernel) holds
				// the launcher.
				pid, e = rawCloneLeave(c.flags2, &c.daemonTID)
				errno = syscall.Errno(e)
			case c.flags2&syscall.CLONE_VM != 0:
				pid, e = rawVforkClone(c.flags2, &c.daemonTID)
				errno = syscall.Errno(e)
			default:
				pid, _, errno = syscall.RawSyscall6(syscall.SYS_CLONE, c.flags2, 0, 0, 0, 0, 0)
			}
			if errno != 0 {
				goto fail
			}
			if pid != 0 && c.waiter >= 0 {
				// Stay the daemon's parent until the launcher is done with
				// it: its end is reported on the waiter pipe; the readiness
				// pipe is the daemon's alone, and so is every other fd: a
				// copy kept here (the write end of a --ready-fd pipe) would
				// hide the program closing it.
				if c.waiter > 0 {
					syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 0, uintptr(c.waiter-1), 0)
				}
				syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(c.waiter+1), ^uintptr(0), 0)
				for {
					_, _, errno = syscall.RawSyscall6(syscall.SYS_WAIT4, pid, uintptr(unsafe.Pointer(&c.status)), 0, 0, 0, 0)
					if errno != syscall.EINTR {
						break
					}
				}
				v = uintptr(uint32(c.status))
				syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.waiter), uintptr(unsafe.Pointer(&c.ended[0])), uintptr(len(c.ended)))
				n = decimal(&c.digits, v, '\n')
				syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.waiter), uintptr(unsafe.Pointer(&c.digits[n])), uintptr(len(c.digits)-n))
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
			}
			if pid != 0 {
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
			}
			if c.waiter >= 0 {
				syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(c.waiter), 0, 0)
			}
			v, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
			i++
			goto reportPID
		case stages.OpUmask:
			syscall.RawSyscall(syscall.SYS_UMASK, op.num, 0, 0)
		case stages.OpChdir:
			if op.hasFile {
				_, _, errno = syscall.RawSyscall(syscall.SYS_FCHDIR, op.fd, 0, 0)
			} else {
				_, _, errno = syscall.RawSyscall(syscall.SYS_CHDIR, op.path, 0, 0)
			}
			if errno != 0 {
				goto fail
			}
		case stages.OpDup:
			if op.fd == op.num {
				_, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, op.fd, syscall.F_SETFD, 0)
			} else {
				_, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, op.fd, op.num, 0)
			}
			if errno != 0 {
				goto fail
			}
		case stages.OpTruncate:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_FTRUNCATE, op.fd, 0, 0); errno != 0 {
				goto fail
			}
		case stages.OpChown:
			// As safefile.Chown: a regular file with exactly one name, by
			// its descriptor; anything else keeps its owner.
			_, _, errno = syscall.RawSyscall6(unix.SYS_STATX, op.fd, uintptr(unsafe.Pointer(&c.empty[0])),
				unix.AT_EMPTY_PATH, unix.STATX_TYPE|unix.STATX_NLINK, uintptr(unsafe.Pointer(&c.stxA)), 0)
			if errno != 0 {
				goto fail
			}
			if c.stxA.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if c.stxA.Nlink != 1 {
				errno = syscall.EMLINK
				goto fail
			}
			if _, _, errno = syscall.RawSyscall(syscall.SYS_FCHOWN, op.fd, op.uid, op.gid); errno != 0 {
				goto fail
			}
		case stages.OpKeepOpen:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, op.fd, syscall.F_SETFD, 0); errno != 0 {
				goto fail
			}
		case stages.OpLock:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_FLOCK, op.fd, syscall.LOCK_EX|syscall.LOCK_NB, 0); errno != 0 {
				goto fail
			}
			// The path must still name the locked file: an instance that
			// was stopping may have removed it between open and lock.
			_, _, errno = syscall.RawSyscall6(unix.SYS_STATX, op.fd, uintptr(unsafe.Pointer(&c.empty[0])),
				unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_SIZE, uintptr(unsafe.Pointer(&c.stxA)), 0)
			if errno != 0 {
				goto fail
			}
			// Its size under the lock, for a pidfile write on the same
			// file as the very next step (every other step forgets it).
			c.size = c.stxA.Size
			if c.stxA.Mask&unix.STATX_SIZE != 0 {
				sized = op.fd
			}
			_, _, errno = syscall.RawSyscall6(unix.SYS_STATX, c.cwd, op.path,
				unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, uintptr(unsafe.Pointer(&c.stxB)), 0)
			if errno == syscall.ENOENT || (errno == 0 && (c.stxA.Ino != c.stxB.Ino ||
				c.stxA.Dev_major != c.stxB.Dev_major || c.stxA.Dev_minor != c.stxB.Dev_minor)) {
				errno = syscall.ESTALE
			}
			if errno != 0 {
				goto fail
			}
		case stages.OpWritePID:
			v, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
			n = decimal(&c.digits, v, '\n')
			// Write, then cut: a reader never sees an empty file. The cut
			// is needed only when the file was longer than what is
			// written; its size is known from the lock step on this file,
			// or read now (a statx costs a fraction of an ext4 ftruncate,
			// and a new pidfile is empty).
			if known != op.fd {
				_, _, errno = syscall.RawSyscall6(unix.SYS_STATX, op.fd, uintptr(unsafe.Pointer(&c.empty[0])),
					unix.AT_EMPTY_PATH, unix.STATX_SIZE, uintptr(unsafe.Pointer(&c.stxB)), 0)
				if errno != 0 {
					goto fail
				}
				c.size = c.stxB.Size
				if c.stxB.Mask&unix.STATX_SIZE == 0 {
					c.size = ^uint64(0)
				}
			}
			if _, _, errno = syscall.RawSyscall6(syscall.SYS_PWRITE64, op.fd, uintptr(unsafe.Pointer(&c.digits[n])),
				uintptr(len(c.digits)-n), 0, 0, 0); errno != 0 {
				goto fail
			}
			if c.size > uint64(len(c.digits)-n) {
				if _, _, errno = syscall.RawSyscall(syscall.SYS_FTRUNCATE, op.fd, uintptr(len(c.digits)-n), 0); errno != 0 {
					goto fail
				}
			}
		case stages.OpCloexec:
			lo = 3
			for j = 0; j <= len(op.keep); j++ {
				v = ^uintptr(0)
				if j < len(op.keep) {
					if op.keep[j] < lo {
						continue
					}
					v = op.keep[j] - 1
				}
				if v >= lo {
					if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, lo, v, unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
						goto fail
					}
				}
				if j < len(op.keep) {
					lo = op.keep[j] + 1
				}
			}
		case stages.OpDrop:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_SETGROUPS, op.num, uintptr(unsafe.Pointer(&op.groups[0])), 0); errno != 0 {
				goto fail
			}
			if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESGID, op.gid, op.gid, op.gid); errno != 0 {
				goto fail
			}
			if op.setUID {
				if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESUID, op.uid, op.uid, op.uid); errno != 0 {
					goto fail
				}
			}
			for j = 0; j < len(op.checks); j++ {
				want = uintptr(uint32(op.checks[j].Want))
				errno = syscall.Errno(VerifyErrno + j)
				switch op.checks[j].Kind {
				case stages.CheckUIDs:
					syscall.RawSyscall(syscall.SYS_GETRESUID, uintptr(unsafe.Pointer(&c.ids[0])),
						uintptr(unsafe.Pointer(&c.ids[1])), uintptr(unsafe.Pointer(&c.ids[2])))
					v, _, _ = syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
					if uintptr(c.ids[0]) != want || uintptr(c.ids[1]) != want || uintptr(c.ids[2]) != want || uintptr(uint32(v)) != want {
						goto fail
					}
				case stages.CheckGIDs:
					syscall.RawSyscall(syscall.SYS_GETRESGID, uintptr(unsafe.Pointer(&c.ids[0])),
						uintptr(unsafe.Pointer(&c.ids[1])), uintptr(unsafe.Pointer(&c.ids[2])))
					v, _, _ = syscall.RawSyscall(syscall.SYS_SETFSGID, ^uintptr(0), 0, 0)
					if uintptr(c.ids[0]) != want || uintptr(c.ids[1]) != want || uintptr(c.ids[2]) != want || uintptr(uint32(v)) != want {
						goto fail
					}
				case stages.CheckNoCaps:
					c.caps = [8]uint32{unix.LINUX_CAPABILITY_VERSION_3, 0}
					if _, _, e2 := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&c.caps[0])),
						uintptr(unsafe.Pointer(&c.caps[2])), 0); e2 != 0 {
						goto fail
					}
					// effective, permitted (inheritable may stay): two 32-bit halves.
					if c.caps[2]|c.caps[3]|c.caps[5]|c.caps[6] != 0 {
						goto fail
					}
				case stages.CheckNoSetuid0:
					if _, _, e2 := syscall.RawSyscall(syscall.SYS_SETUID, 0, 0, 0); e2 == 0 {
						goto fail
					}
				case stages.CheckNoSeteuid0:
					if _, _, e2 := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e2 == 0 {
						goto fail
					}
				case stages.CheckGroups:
					v, _, e2 := syscall.RawSyscall(syscall.SYS_GETGROUPS, uintptr(len(op.gbuf)), uintptr(unsafe.Pointer(&op.gbuf[0])), 0)
					if e2 != 0 || v != op.num {
						goto fail
					}
					for n = 0; n < int(v); n++ {
						for lo = 0; lo < op.num && op.groups[lo] != op.gbuf[n]; lo++ {
						}
						if lo == op.num {
							goto fail
						}
					}
				case stages.CheckNoSetgid0:
					if _, _, e2 := syscall.RawSyscall(syscall.SYS_SETGID, 0, 0, 0); e2 == 0 {
						goto fail
					}
				}
			}
			errno = 0
		case stages.OpExec:
			if op.pidBuf != nil {
				v, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
				n = decimal(&c.digits, v, 0)
				for j = op.pidAt; n < len(c.digits); j++ {
					op.pidBuf[j] = c.digits[n]
					n++
				}
				op.pidBuf[j] = 0
			}
			// No Go handler may run here: every caught signal goes back to
			// its default before any signal is unblocked.
			for sig = 1; sig < 65; sig++ {
				if sig == uintptr(syscall.SIGKILL) || sig == uintptr(syscall.SIGSTOP) {
					continue
				}
				if !c.reset {
					// Keep an ignored signal ignored; reset the rest.
					c.old[0] = 0
					syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&c.old)), 8, 0, 0)
					if c.old[0] == 1 { // SIG_IGN
						continue
					}
				}
				syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&c.dfl)), 0, 8, 0, 0)
			}
			syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.mask)), 0, 8, 0, 0)
			if op.announce {
				syscall.RawSyscall(syscall.SYS_WRITE, c.pipe, uintptr(unsafe.Pointer(&c.exec[0])), uintptr(len(c.exec)))
			}
			denied, last = 0, syscall.ENOENT
			for j = 0; j+1 < len(op.cands); j++ {
				cand = op.cands[j]
				_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, cand,
					uintptr(unsafe.Pointer(&op.argv[0])), uintptr(unsafe.Pointer(&op.envv[0])))
				if errno == syscall.ENOEXEC && op.shArgv != nil {
					// No known format (a script without #!): the shell runs
					// it, as execvp(3) does.
					op.shArgv[1] = cand
					_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, op.shArgv[0],
						uintptr(unsafe.Pointer(&op.shArgv[0])), uintptr(unsafe.Pointer(&op.envv[0])))
				}
				switch errno {
				case syscall.EACCES:
					denied = errno
				case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE, syscall.ENODEV, syscall.ETIMEDOUT:
					last = errno
				default:
					goto fail
				}
			}
			errno = last
			if denied != 0 {
				errno = denied
			}
			goto fail
		}
	}
	// A plan always ends with an exec; reaching here is a bug.
	errno = syscall.EINVAL
	i = len(c.ops) - 1

fail:
	op = &c.ops[i]
	syscall.RawSyscall(syscall.SYS_WRITE, c.pipe, uintptr(unsafe.Pointer(&op.fail[0])), uintptr(len(op.fail)))
	v = uintptr(errno)
	n = decimal(&c.digits, v, '\n')
	syscall.RawSyscall(syscall.SYS_WRITE, c.pipe, uintptr(unsafe.Pointer(&c.digits[n])), uintptr(len(c.digits)-n))
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(stages.ExitOSErr), 0, 0)
	return 0, 0

reportPID:
	syscall.RawSyscall(syscall.SYS_WRITE, c.pipe, uintptr(unsafe.Pointer(&c.pidRec[0])), uintptr(len(c.pidRec)))
	n = decimal(&c.digits, v, '\n')
	syscall.RawSyscall(syscall.SYS_WRITE, c.pipe, uintptr(unsafe.Pointer(&c.digits[n])), uintptr(len(c.digits)-n))
	goto steps
}

// decimal writes v in decimal at the end of buf, followed by end when it
// is not 0, and returns the index of the first digit. It is a leaf with a
// small frame, safe to call from the raw child: nosplit (no stack check,
// so no stack growth) and norace.
//
//go:nosplit
//go:norace
func decimal(buf *[24]byte, v uintptr, end byte) int {
	n := len(buf)
	if end != 0 {
		n--
		buf[n] = end
	}
	for {
		n--
		buf[n] = byte('0' + v%10)
		v /= 10
		if v == 0 || n == 0 {
			return n
		}
	}
}
