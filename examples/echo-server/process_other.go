//go:build !linux

package main

import "syscall"

// process is the running daemon, by PID (no pidfd on this system).
type process struct{ pid int }

func openProcess(pid int) (*process, error) { return &process{pid: pid}, nil }

func (p *process) signal(sig syscall.Signal) error { return syscall.Kill(p.pid, sig) }

// ended reports whether the process has exited and been reaped.
func (p *process) ended() bool { return syscall.Kill(p.pid, 0) == syscall.ESRCH }

func (p *process) close() {}
