//go:build linux

#include "textflag.h"

// func rawVforkClone(flags uintptr) (pid uintptr, errno uintptr)
//
// clone(2) for CLONE_VM|CLONE_VFORK: the child runs on this stack while
// the parent is suspended, and would overwrite the return address stored
// below the caller's frame. So the return address leaves the stack for the
// system call (R12 survives it, in both processes) and goes back after.
TEXT ·rawVforkClone(SB),NOSPLIT|NOFRAME,$0-24
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_CLONE
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+8(FP)
	MOVQ	AX, errno+16(FP)
	RET
ok:
	MOVQ	AX, pid+8(FP)
	MOVQ	$0, errno+16(FP)
	RET
