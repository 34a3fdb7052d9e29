// Command required is the floor plus the work no daemonizing launch with a
// locked pidfile can skip, done as cheaply as Go allows: the program's
// stdio on /dev/null; the pidfile created (or opened) without following a
// link, checked to be a regular file with one name, and locked; a second
// clone (a double fork has two children: here a vfork child that exits at
// once stands for the intermediate); the program started in a new session
// with os.StartProcess, which returns once it is exec'd; and its PID
// written to the pidfile. No option parsing, no checks of the program or
// the directory, no safe walk of the pidfile's directory, no records.
//
// Its launch time over the floor's is a lower bound on what any launcher
// keeping blivet's guarantees adds; the rest of what daemonize adds is
// the pipeline's own work.
//
//	required PIDFILE PROGRAM [ARGS...]
package main

import (
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 3 {
		os.Stderr.WriteString("usage: required PIDFILE PROGRAM [ARGS...]\n")
		os.Exit(64)
	}
	null, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		fail(71, "/dev/null", err)
	}
	fd, err := syscall.Open(os.Args[1], syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		fail(73, os.Args[1], err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
		fail(73, os.Args[1], syscall.EINVAL)
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fail(69, os.Args[1], err)
	}
	secondClone()
	nul := os.NewFile(uintptr(null), os.DevNull)
	p, err := os.StartProcess(os.Args[2], os.Args[2:], &os.ProcAttr{
		Files: []*os.File{nul, nul, nul, os.NewFile(uintptr(fd), os.Args[1])},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fail(71, os.Args[2], err)
	}
	line := strconv.AppendInt(nil, int64(p.Pid), 10)
	if _, err := syscall.Pwrite(fd, append(line, '\n'), 0); err != nil {
		fail(73, os.Args[1], err)
	}
	if st.Size > int64(len(line)+1) {
		_ = syscall.Ftruncate(fd, int64(len(line)+1))
	}
}

func fail(code int, what string, err error) {
	os.Stderr.WriteString("required: " + what + ": " + err.Error() + "\n")
	os.Exit(code)
}
