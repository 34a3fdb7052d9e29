// Package exefile writes program files that the writing process can run at
// once.
//
// A file written while another goroutine forks is inherited by the child,
// open for writing, until that child execs; running the file in that window
// fails with ETXTBSY ("text file busy"). Go's fork and exec take
// syscall.ForkLock for writing, so holding it for reading while the file is
// open keeps every fork of this process out of that window. The tests use
// it wherever they write a script or copy a binary that they then run.
package exefile

import (
	"io"
	"os"
	"syscall"
)

// Write creates (or truncates) path with data and mode perm, with no fork
// of this process able to inherit the open file.
func Write(path string, data []byte, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The mode given to open is filtered by the umask; a program file
	// must have the bits asked for.
	return os.Chmod(path, perm)
}

// Copy copies the file at from to a new file at to (replacing it by a
// rename, so a process running the old file keeps it), with mode perm.
func Copy(from, to string, perm os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := to + ".tmp"
	if err := copyTo(tmp, in, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyTo(path string, in io.Reader, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}
