//go:build linux

#include "textflag.h"

// func rawVforkClone(flags uintptr, daemon *uint32) (pid uintptr, errno uintptr)
//
// clone(2) for CLONE_VM|CLONE_VFORK: the child runs on this stack while
// the parent is suspended, and would overwrite the return address stored
// below the caller's frame. So the return address leaves the stack for the
// system call (R12 survives it, in both processes) and goes back after.
//
// The parent resumes once the child has exec'd or exited; a daemon the
// child cloned onto this stack without CLONE_VFORK (the direct release:
// see rawCloneLeave) may still run on it. So before it touches the stack
// again the parent waits, in registers only, until *daemon is 0: the
// kernel sets it to that daemon's TID as it creates it
// (CLONE_PARENT_SETTID) and clears it at the daemon's exec or exit
// (CLONE_CHILD_CLEARTID); without such a daemon it stays 0. The wait is a
// shared futex wait, matching the kernel's wake.
TEXT ·rawVforkClone(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	flags+0(FP), DI
	MOVQ	daemon+8(FP), R13
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_CLONE
	POPQ	R12
	SYSCALL
	CMPQ	AX, $0
	JEQ	back // the child
	CMPQ	AX, $0xfffffffffffff001
	JHI	back // no child: nothing ran on this stack
	MOVQ	AX, BX
await:
	MOVL	(R13), DX
	CMPL	DX, $0
	JEQ	released
	MOVQ	R13, DI
	MOVQ	$0, SI // FUTEX_WAIT
	MOVQ	$0, R10
	MOVQ	$202, AX // SYS_FUTEX; EINTR and EAGAIN just check again
	SYSCALL
	JMP	await
released:
	MOVQ	BX, AX
back:
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+16(FP)
	MOVQ	AX, errno+24(FP)
	RET
ok:
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET

// func rawCloneLeave(flags uintptr, tid *uint32) (pid uintptr, errno uintptr)
//
// The intermediate's clone(2) of the daemon when the daemon releases the
// launcher directly: flags hold CLONE_VM|CLONE_PARENT_SETTID|
// CLONE_CHILD_CLEARTID without CLONE_VFORK, and tid is the word the
// launcher waits on (the kernel stores the daemon's TID there before the
// daemon runs, and clears it at its exec or exit). The daemon
// returns on this stack and goes on; the parent exits at once, in
// registers, without touching the stack the daemon now uses. It returns
// only in the daemon (pid 0) or when clone fails.
TEXT ·rawCloneLeave(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	tid+8(FP), DX // parent_tid (x86-64 order: flags, stack, parent_tid, child_tid, tls)
	MOVQ	DX, R10 // child_tid: the same word
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_CLONE
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+16(FP)
	MOVQ	AX, errno+24(FP)
	RET
ok:
	CMPQ	AX, $0
	JNE	leave
	MOVQ	$0, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
leave:
	MOVQ	$0, DI
	MOVQ	$231, AX // SYS_EXIT_GROUP
	SYSCALL
	JMP	leave
