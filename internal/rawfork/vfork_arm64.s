//go:build linux

#include "textflag.h"

// func rawVforkClone(flags uintptr, daemon *uint32) (pid uintptr, errno uintptr)
//
// clone(2) for CLONE_VM|CLONE_VFORK. The return address is in LR, a
// register of each process, so the shared stack holds nothing of this
// frame. daemon is not read: arm64 has no direct release (direct_arm64.go),
// so no daemon is ever cloned onto the stack without CLONE_VFORK and the
// word stays 0.
TEXT ·rawVforkClone(SB),NOSPLIT,$0-32
	MOVD	flags+0(FP), R0
	MOVD	$0, R1
	MOVD	$0, R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$0, R5
	MOVD	$220, R8 // SYS_CLONE
	SVC
	CMN	$4095, R0
	BCC	ok
	NEG	R0, R0
	MOVD	ZR, pid+16(FP)
	MOVD	R0, errno+24(FP)
	RET
ok:
	MOVD	R0, pid+16(FP)
	MOVD	ZR, errno+24(FP)
	RET
