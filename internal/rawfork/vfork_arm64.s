//go:build linux

#include "textflag.h"

// func rawVforkClone(flags uintptr) (pid uintptr, errno uintptr)
//
// clone(2) for CLONE_VM|CLONE_VFORK. The return address is in LR, a
// register of each process, so the shared stack holds nothing of this
// frame.
TEXT ·rawVforkClone(SB),NOSPLIT,$0-24
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
	MOVD	ZR, pid+8(FP)
	MOVD	R0, errno+16(FP)
	RET
ok:
	MOVD	R0, pid+8(FP)
	MOVD	ZR, errno+16(FP)
	RET
