//go:build linux && (amd64 || arm64)

package rawfork

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/internal/wire"
	"github.com/blivet-go/blivet/stages"
)

// VerifyErrno is added to the index of a failed stages.CredCheck to form
// the errno a raw child reports for it (real errnos are below 4096).
const VerifyErrno = 4096

// rawVforkClone is clone(2) safe for CLONE_VM|CLONE_VFORK (see the .s
// files): the return address stays off the shared stack, and the parent
// resumes only once *daemon is 0, no daemon of the direct release still
// running on the stack (see prepare). Call it only from launch, never
// through a wrapper the child would return from.
//
//go:noescape
func rawVforkClone(flags uintptr, daemon *uint32) (pid uintptr, errno uintptr)

var probe struct {
	once sync.Once
	ok   bool
}

// Supported reports whether Start works here: it needs close_range(2) with
// CLOSE_RANGE_CLOEXEC (Linux 5.11), since the raw child cannot list
// /proc/self/fd.
func Supported() bool {
	probe.once.Do(func() {
		probe.ok = unix.CloseRange(^uint(0)-1, ^uint(0)-1, unix.CLOSE_RANGE_CLOEXEC) == nil
	})
	return probe.ok
}

// rop is one plan step made ready for the raw child: plain words and C
// strings only.
type rop struct {
	kind     stages.OpKind
	num      uintptr
	fd       uintptr
	hasFile  bool
	path     uintptr
	keep     []uintptr
	groups   []uint32
	gbuf     []uint32 // getgroups buffer for CheckGroups, one more than needed
	uid, gid uintptr
	setUID   bool
	checks   []stages.CredCheck
	cands    []uintptr
	argv     []uintptr
	envv     []uintptr
	shArgv   []uintptr // shell, candidate slot, argv[1:]..., 0
	pidBuf   []byte    // "NAME=" and room for digits and NUL, in envv
	pidAt    int       // where the digits go in pidBuf
	announce bool      // write an exec record first
	fail     []byte    // raw record prefix for this step
}

// child is everything launch uses after the fork.
type child struct {
	ops         []rop
	pipe        uintptr
	needed      []uintptr // fds the daemon needs; the rest are closed or marked (CloseUnkept)
	flags1      uintptr
	flags2      uintptr
	reset       bool
	mask        uint64    // the daemon's signal mask; the launcher's when !reset
	all         uint64    // every signal, blocked around the clone
	saved       uint64    // the launching thread's mask, restored after the clone
	dfl         [4]uint64 // a kernel struct sigaction for SIG_DFL
	old         [4]uint64
	pidRec      []byte
	exec        []byte
	empty       []byte  // "" as a C string: statx's path with AT_EMPTY_PATH
	cwd         uintptr // AT_FDCWD
	waiter      int     // -1, or the fd the waiting intermediate reports on
	direct      bool    // the daemon's exec releases the launcher itself
	daemonTID   uint32  // nonzero while a direct daemon may run on the stack
	ended       []byte  // its record prefix
	status      int32   // the daemon's wait status
	closeUnkept bool
	digits      [24]byte
	stxA        unix.Statx_t
	stxB        unix.Statx_t
	size        uint64 // the size a lock step read, before the PID is written
	ids         [3]uint32
	caps        [8]uint32 // capget header (2) and two data structs (3 each)
	keep        [][]byte  // the string arena's chunks
	arena       []byte    // the chunk being filled
}

// cstr copies s, NUL-terminated, into the child's string arena and
// returns its address. The arena grows by chunks that are never moved
// (earlier addresses stay valid), so a plan's paths, arguments and
// environment take one or two allocations instead of one each: the
// launch pays for every fresh heap span before the fork.
func (c *child) cstr(s string) (uintptr, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return 0, syscall.EINVAL
	}
	at := c.reserve(len(s) + 1)
	c.arena = append(append(c.arena, s...), 0)
	return uintptr(unsafe.Pointer(&c.arena[at])), nil
}

// bytes copies s into the arena and returns the copy: the raw children's
// fixed records share the arena's allocation instead of one each.
func (c *child) bytes(s string) []byte {
	at := c.reserve(len(s))
	c.arena = append(c.arena, s...)
	return c.arena[at:len(c.arena):len(c.arena)]
}

// rawRecordPrefix copies the start of step's failure record into the
// arena, as bytes does.
func (c *child) rawRecordPrefix(step int) []byte {
	at := c.reserve(len(wire.Version) + 48) // " raw step=" + a number + " errno="
	c.arena = wire.AppendRawRecordPrefix(c.arena, step)
	return c.arena[at:len(c.arena):len(c.arena)]
}

// reserve makes room for n more bytes in the arena's current chunk, and
// returns where they start. A chunk with less room is left as it is and a
// new one started (a whole environment usually fits in the first), so
// appending up to n bytes never moves what earlier calls returned.
func (c *child) reserve(n int) int {
	if n > cap(c.arena)-len(c.arena) {
		c.arena = make([]byte, 0, max(n, 4<<10))
		c.keep = append(c.keep, c.arena[:cap(c.arena)])
	}
	return len(c.arena)
}

func (c *child) cstrs(ss []string) ([]uintptr, error) {
	out := make([]uintptr, 0, len(ss)+1)
	for _, s := range ss {
		p, err := c.cstr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return append(out, 0), nil
}

// forks counts p's OpFork steps.
func forks(p *stages.Plan) int {
	n := 0
	for _, op := range p.Ops {
		if op.Kind == stages.OpFork {
			n++
		}
	}
	return n
}

// forksAfterSetsidOnly reports whether p forks the daemon with nothing but
// setsid before it: nothing the intermediate does touches a descriptor.
func forksAfterSetsidOnly(p *stages.Plan) bool {
	for _, op := range p.Ops {
		switch op.Kind {
		case stages.OpFork:
			return true
		case stages.OpSetsid:
		default:
			return false
		}
	}
	return false
}

// marksCloexec reports whether p's daemon child marks the fds it does not
// keep close-on-exec before its exec.
func marksCloexec(p *stages.Plan) bool {
	return slices.ContainsFunc(p.Ops, func(op stages.Op) bool { return op.Kind == stages.OpCloexec })
}

// prepare converts p for the raw child.
func prepare(p *stages.Plan, pipe int, o Options) (*child, []*os.File, error) {
	vfork := o.Vfork && o.Waiter == nil
	c := &child{pipe: uintptr(pipe), reset: p.ResetSignals, waiter: -1, closeUnkept: o.CloseUnkept,
		exec: wire.Encode(wire.Record{Kind: wire.KindExec})}
	c.ended, c.pidRec = c.bytes(wire.Version+" ended status="), c.bytes(wire.Version+" pid ")
	c.empty = c.bytes("\x00")
	c.ops = make([]rop, 0, len(p.Ops)+1) // +1: a close-on-exec step may be added
	cwd := unix.AT_FDCWD
	c.cwd = uintptr(cwd)
	c.flags1 = uintptr(syscall.SIGCHLD)
	cloexecUnkept := false // the daemon child marks what the intermediate would close
	c.flags2 = uintptr(syscall.SIGCHLD)
	if vfork {
		c.flags1 |= syscall.CLONE_VM | syscall.CLONE_VFORK
		if forksAfterSetsidOnly(p) {
			// The intermediate only calls setsid, forks the daemon and
			// exits, while this thread waits: it uses the launcher's fd
			// table instead of a copy, and the daemon child marks what
			// it must not keep close-on-exec before its exec (a bitmap
			// operation; see the end of prepare). Closing them in a copied
			// table instead walks every slot up to the highest open fd:
			// +0.2-0.4 ms under a RLIMIT_NOFILE of 20,000.
			c.flags1 |= syscall.CLONE_FILES
			cloexecUnkept = c.closeUnkept && !marksCloexec(p)
			c.closeUnkept = false
		}
	}
	switch {
	case vfork && directRelease && forks(p) == 1:
		// The daemon releases the launcher itself: the intermediate
		// clones it onto the shared stack and exits at once, without
		// touching that stack, and the launching thread, back from its
		// vfork, waits (in registers only) until the daemon's exec or
		// exit clears daemonTID. The kernel sets the word to the
		// daemon's TID before the daemon runs (CLONE_PARENT_SETTID), so
		// it is nonzero exactly when a daemon exists, whatever happens
		// to the intermediate, and clears it at the daemon's exec or
		// exit (CLONE_CHILD_CLEARTID). The wake-up that ends the launch
		// comes straight from the daemon's exec, as for one fork,
		// instead of the daemon waking the intermediate and the
		// intermediate's exit waking the launcher: two serial wake-ups,
		// each of which can wait behind the program just exec'd on a
		// busy CPU (median launch 2.17 -> 1.66 ms here). Only with one
		// fork: a daemon that forked again would clear the word while
		// its own child still ran on the stack.
		c.direct = true
		c.flags2 = syscall.CLONE_VM | syscall.CLONE_PARENT_SETTID | syscall.CLONE_CHILD_CLEARTID | uintptr(syscall.SIGCHLD)
	case o.Vfork:
		// The intermediate is suspended until the daemon execs or fails,
		// then exits or waits for it.
		c.flags2 |= syscall.CLONE_VM | syscall.CLONE_VFORK
	}
	if o.Waiter != nil {
		c.waiter = int(o.Waiter.Fd())
	}
	if len(p.Ops) == 0 || p.Ops[len(p.Ops)-1].Kind != stages.OpExec {
		return nil, nil, fmt.Errorf("launch plan does not end with an exec")
	}
	// A file at 0-2, or at a number the daemon gets another file at, would
	// be overwritten before its own step: use a copy above all of them.
	lowest := 3
	for _, op := range p.Ops {
		if op.Kind == stages.OpDup && op.Num >= lowest {
			lowest = op.Num + 1
		}
	}
	reserved := func(fd int) bool {
		if fd < 3 {
			return true
		}
		for _, op := range p.Ops {
			if op.Kind == stages.OpDup && op.Num == fd {
				return true
			}
		}
		return false
	}
	var dups []*os.File
	moved := map[uintptr]uintptr(nil) // made on the first relocation: usually none
	fdOf := func(f *os.File) (uintptr, error) {
		fd := f.Fd()
		if nfd, ok := moved[fd]; ok {
			return nfd, nil
		}
		if !reserved(int(fd)) {
			return fd, nil
		}
		nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, lowest)
		if err != nil {
			return 0, os.NewSyscallError("fcntl", err)
		}
		dups = append(dups, os.NewFile(uintptr(nfd), f.Name()))
		if moved == nil {
			moved = map[uintptr]uintptr{}
		}
		moved[fd] = uintptr(nfd)
		return uintptr(nfd), nil
	}
	for _, op := range p.Ops {
		if op.File != nil {
			if _, err := fdOf(op.File); err != nil {
				return nil, dups, err
			}
		}
	}
	needed := []uintptr{0, 1, 2, uintptr(pipe)}
	if o.Waiter != nil {
		needed = append(needed, o.Waiter.Fd())
	}
	for _, k := range p.KeepFDs {
		needed = append(needed, uintptr(k))
	}
	var err error
	for i, op := range p.Ops {
		r := rop{kind: op.Kind, num: uintptr(op.Num), fail: c.rawRecordPrefix(i)}
		if op.File != nil {
			if r.fd, err = fdOf(op.File); err != nil {
				return nil, dups, err
			}
			r.hasFile = true
			needed = append(needed, r.fd)
		}
		if op.Path != "" {
			if r.path, err = c.cstr(op.Path); err != nil {
				return nil, dups, err
			}
		}
		switch op.Kind {
		case stages.OpCloexec:
			for _, k := range op.Keep {
				if k >= 3 {
					fd := uintptr(k)
					if nfd, ok := moved[fd]; ok {
						fd = nfd
					}
					r.keep = append(r.keep, fd)
					needed = append(needed, fd)
				}
			}
			slices.Sort(r.keep)
			r.keep = slices.Compact(r.keep)
		case stages.OpChown:
			r.uid, r.gid = uintptr(uint32(op.Cred.UID)), uintptr(uint32(op.Cred.GID))
		case stages.OpDrop:
			r.gbuf = make([]uint32, len(op.Cred.Groups)+1)
			for _, g := range op.Cred.Groups {
				r.groups = append(r.groups, uint32(g))
			}
			if len(r.groups) == 0 {
				r.groups = []uint32{0} // a valid address for setgroups(0, ...)
				r.num = 0
			} else {
				r.num = uintptr(len(op.Cred.Groups))
			}
			r.gid = uintptr(op.Cred.GID)
			r.setUID = op.Cred.UID >= 0
			r.uid = uintptr(op.Cred.UID)
			r.checks = op.Cred.Verify
		case stages.OpExec:
			x := op.Exec
			if len(x.Candidates) == 0 || len(x.Argv) == 0 {
				return nil, dups, fmt.Errorf("exec step without a program")
			}
			if r.cands, err = c.cstrs(x.Candidates); err != nil {
				return nil, dups, err
			}
			if r.argv, err = c.cstrs(x.Argv); err != nil {
				return nil, dups, err
			}
			if r.envv, err = c.cstrs(x.Env); err != nil {
				return nil, dups, err
			}
			if x.PIDVar != "" {
				r.pidBuf = make([]byte, len(x.PIDVar)+1+24)
				copy(r.pidBuf, x.PIDVar+"=")
				r.pidAt = len(x.PIDVar) + 1
				r.envv = append(r.envv[:len(r.envv)-1], uintptr(unsafe.Pointer(&r.pidBuf[0])), 0)
			}
			if x.Shell != "" {
				if r.shArgv, err = c.cstrs(append([]string{x.Shell, ""}, x.Argv[1:]...)); err != nil {
					return nil, dups, err
				}
			}
			r.announce = x.Announce
		}
		c.ops = append(c.ops, r)
	}
	slices.Sort(needed)
	c.needed = slices.Compact(needed)
	if cloexecUnkept {
		// What the intermediate would have closed, the daemon child
		// marks close-on-exec just before its exec: all but what it
		// needs and the numbers it gave files (a plan that re-executes
		// this program has no close-on-exec step of its own).
		keep := slices.Clone(c.needed)
		for _, op := range p.Ops {
			if op.Kind == stages.OpDup {
				keep = append(keep, uintptr(op.Num))
			}
		}
		slices.Sort(keep)
		last := len(c.ops) - 1
		mark := rop{kind: stages.OpCloexec, keep: slices.Compact(keep), fail: c.ops[last].fail}
		c.ops = slices.Insert(c.ops, last, mark)
	}
	return c, dups, nil
}

// Start executes p in raw children: see the package documentation. pipe is
// the readiness pipe's write end. It returns the first child's PID, which
// the caller reaps.
func Start(p *stages.Plan, pipe *os.File, o Options) (int, error) {
	if !Supported() {
		return 0, ErrUnsupported
	}
	c, dups, err := prepare(p, int(pipe.Fd()), o)
	defer func() {
		for _, d := range dups {
			d.Close()
		}
	}()
	if err != nil {
		return 0, err
	}
	syscall.ForkLock.Lock()
	pid, errno := launch(c)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(c)
	runtime.KeepAlive(p)
	if errno != 0 {
		return 0, os.NewSyscallError("clone", errno)
	}
	return int(pid), nil
}
