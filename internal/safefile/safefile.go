// Package safefile is the one place where blivet opens, creates, truncates
// or hands over a file on behalf of a less-privileged user: output files,
// the pidfile, the lockfile, the working directory. The rules it enforces,
// and why, are in docs/security.md; in short:
//
//   - The last path component is never followed when it is a symbolic
//     link (O_NOFOLLOW); a directory above it is walked one component at a
//     time, and a symbolic link there is followed only when root (or the
//     effective user) owns it.
//   - What is checked is what is used: the file is opened once (with
//     O_NONBLOCK, so neither a named pipe nor a device can block the
//     open, O_CLOEXEC and O_NOCTTY), then fstat(2) on the descriptor
//     decides. A directory, a socket, a block device, a character device
//     other than those the caller allows (/dev/null), and a file with
//     other names (a link count above 1) are refused before anything is
//     truncated or handed over.
//   - Truncation happens only after the checks, through the descriptor
//     (ftruncate(2)); a change of owner only through a descriptor
//     (fchown(2)), never by path.
//
// Every refusal and failure is a *stages.Error with exit code 73
// (stages.ExitCantCreate) naming the path and the reason.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// Kinds is a set of file types a caller accepts.
type Kinds uint

// The file types Open can accept. Directories, sockets and block devices
// are never accepted.
const (
	Regular    Kinds = 1 << iota // a regular file
	FIFO                         // a named pipe
	CharDevice                   // any character device
	DevNull                      // the null device only (same device number as /dev/null)
)

// Spec says how Open opens a file and what it accepts.
type Spec struct {
	// Stage names the stage in errors ("output", "pidfile", ...).
	Stage string
	// What names the file in messages ("output file", "pidfile", ...);
	// "" names it by path only.
	What string
	// Access is unix.O_RDONLY, unix.O_WRONLY or unix.O_RDWR.
	Access int
	// Append opens with O_APPEND.
	Append bool
	// Create creates the file, with mode Perm subject to the umask, when
	// it does not exist.
	Create bool
	// Perm is the mode of a created file.
	Perm uint32
	// Truncate truncates a regular file to zero length, after the checks.
	Truncate bool
	// Allow is the set of file types accepted.
	Allow Kinds
	// PrivateDir, when the effective user is root, refuses a file whose
	// directory is writable by group or others without the sticky bit.
	PrivateDir bool
	// KeepDir keeps the file's directory open in File.Dir.
	KeepDir bool
	// BlockFIFO waits, for a named pipe opened write-only, until a reader
	// opens it (a non-blocking open fails with ENXIO until then). Without
	// it, such an open fails.
	BlockFIFO bool
}

// File is a file opened and checked by Open.
type File struct {
	// FD is the open descriptor: close-on-exec, in blocking mode. Close
	// closes it unless it was handed over (OSFile).
	FD int
	// Dir is the open directory the file was opened in when Spec.KeepDir
	// was set, -1 otherwise.
	Dir int
	// Path is the cleaned path; Base its last component.
	Path, Base string
	// Stat is what fstat(2) said about FD after the checks.
	Stat unix.Stat_t
	// Created tells that the path named nothing just before the open
	// (Spec.Create): the file is, most likely, this open's creation.
	Created bool
}

// OSFile hands FD over to a new *os.File named by Path; f.FD becomes -1.
func (f *File) OSFile() *os.File {
	of := os.NewFile(uintptr(f.FD), f.Path)
	f.FD = -1
	return of
}

// Close closes FD (unless handed over) and Dir (if kept). It is idempotent.
func (f *File) Close() {
	if f.FD >= 0 {
		unix.Close(f.FD)
		f.FD = -1
	}
	if f.Dir >= 0 {
		unix.Close(f.Dir)
		f.Dir = -1
	}
}

// IsRegular reports whether the file is a regular file.
func (f *File) IsRegular() bool { return f.Stat.Mode&unix.S_IFMT == unix.S_IFREG }

// Refusef returns the 73 error Open returns for a refused file.
func Refusef(stage, what, path, format string, args ...any) *stages.Error {
	name := path
	if what != "" {
		name = what + " " + path
	}
	return stages.Errorf(stage, stages.ExitCantCreate, "refusing %s: %s", name, fmt.Sprintf(format, args...))
}

func (s *Spec) refuse(path, format string, args ...any) *stages.Error {
	return Refusef(s.Stage, s.What, path, format, args...)
}

func (s *Spec) fail(op, path string, err error) *stages.Error {
	return &stages.Error{Stage: s.Stage, Code: stages.ExitCantCreate, Err: &os.PathError{Op: op, Path: path, Err: err}}
}

// Open opens path under the rules of the package documentation and spec.
// On failure nothing was truncated, created files aside: a file Open
// created and then refused cannot exist (a new file has one link and is
// regular), and the error is a *stages.Error with code 73.
func Open(path string, spec Spec) (*File, error) {
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return nil, stages.Errorf(spec.Stage, stages.ExitCantCreate, "%q is not a usable file path", path)
	}
	clean := filepath.Clean(path)
	dirPath, base := filepath.Split(clean)
	if base == "" || base == "." || base == ".." {
		return nil, stages.Errorf(spec.Stage, stages.ExitCantCreate, "%q does not name a file", path)
	}
	if dirPath == "" {
		dirPath = "."
	}
	dir, err := openDir(dirPath)
	if err != nil {
		var r refusal
		if errors.As(err, &r) {
			return nil, spec.refuse(clean, "%s", r.reason)
		}
		return nil, spec.fail("open", clean, err)
	}
	f := &File{FD: -1, Dir: dir, Path: clean, Base: base}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if spec.PrivateDir && os.Geteuid() == 0 {
		var st unix.Stat_t
		if err := unix.Fstat(dir, &st); err != nil {
			return nil, spec.fail("fstat", dirPath, err)
		}
		if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return nil, spec.refuse(clean,
				"running as root, its directory %s must not be writable by group or others unless it is sticky (mode %#o)",
				dirPath, st.Mode&0o7777)
		}
	}
	// Look first, so that a device or a socket is refused without being
	// opened at all (opening some devices acts); the descriptor is checked
	// again below, since the path may change in between.
	var pre unix.Stat_t
	err = fstatat(dir, base, &pre)
	switch {
	case err == nil:
		if err := spec.check(clean, &pre); err != nil {
			return nil, err
		}
	case errors.Is(err, unix.ENOENT) && spec.Create:
		f.Created = true
	default:
		return nil, spec.fail("open", clean, err)
	}
	flags := spec.Access | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	if spec.Append {
		flags |= unix.O_APPEND
	}
	if spec.Create {
		flags |= unix.O_CREAT
	}
	fd, err := openat(dir, base, flags, spec.Perm)
	if errors.Is(err, unix.ENXIO) && spec.BlockFIFO && spec.Access == unix.O_WRONLY {
		// A named pipe without a reader: wait for one. The path was a
		// named pipe a moment ago, and O_NOFOLLOW still holds.
		if fstatat(dir, base, &pre) == nil && pre.Mode&unix.S_IFMT == unix.S_IFIFO {
			fd, err = openat(dir, base, flags&^unix.O_NONBLOCK, spec.Perm)
		}
	}
	if err != nil {
		// Say why in the file's terms when it is something refused (the
		// symbolic link that O_NOFOLLOW met, a directory).
		if fstatat(dir, base, &pre) == nil {
			if rerr := spec.check(clean, &pre); rerr != nil {
				return nil, rerr
			}
		}
		return nil, spec.fail("open", clean, err)
	}
	f.FD = fd
	if err := unix.Fstat(fd, &f.Stat); err != nil {
		return nil, spec.fail("fstat", clean, err)
	}
	if err := spec.check(clean, &f.Stat); err != nil {
		return nil, err
	}
	// Back to blocking mode. The status flags are known (opened with
	// O_APPEND or not), so one F_SETFL does it, without reading them
	// first. Only O_APPEND is passed: F_SETFL gives other open bits other
	// meanings on some systems (FreeBSD reads O_CREAT as FRDAHEAD).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&unix.O_APPEND); err != nil {
		return nil, spec.fail("fcntl", clean, err)
	}
	if spec.Truncate && f.IsRegular() && f.Stat.Size != 0 {
		if err := ftruncate(fd, 0); err != nil {
			return nil, spec.fail("truncate", clean, err)
		}
		f.Stat.Size = 0
	}
	if !spec.KeepDir {
		unix.Close(dir)
		f.Dir = -1
	}
	ok = true
	return f, nil
}

// check refuses what spec does not accept.
func (s *Spec) check(path string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return s.refuse(path, "a symbolic link (the last path component is never followed)")
	case unix.S_IFDIR:
		return s.refuse(path, "a directory")
	case unix.S_IFSOCK:
		return s.refuse(path, "a socket")
	case unix.S_IFBLK:
		return s.refuse(path, "a block device")
	case unix.S_IFCHR:
		if s.Allow&CharDevice != 0 || (s.Allow&DevNull != 0 && isDevNull(st)) {
			return nil
		}
		return s.refuse(path, "a character device")
	case unix.S_IFIFO:
		if s.Allow&FIFO == 0 {
			return s.refuse(path, "a named pipe")
		}
	case unix.S_IFREG:
		if s.Allow&Regular == 0 {
			return s.refuse(path, "a regular file")
		}
	default:
		return s.refuse(path, "file type %#o", st.Mode&unix.S_IFMT)
	}
	if st.Nlink > 1 {
		return s.refuse(path, "it has %d hard links (its other names may be files root must not touch)", st.Nlink)
	}
	return nil
}

var devNull struct {
	once sync.Once
	rdev uint64
	ok   bool
}

func isDevNull(st *unix.Stat_t) bool {
	devNull.once.Do(func() {
		var n unix.Stat_t
		if unix.Stat("/dev/null", &n) == nil && n.Mode&unix.S_IFMT == unix.S_IFCHR {
			devNull.rdev, devNull.ok = uint64(n.Rdev), true
		}
	})
	return devNull.ok && uint64(st.Rdev) == devNull.rdev
}

// Chown hands the open file fd (named path in messages) to uid and gid
// (-1 leaves one unchanged) through fchown(2), when it is a regular file
// with exactly one link; any other type is left alone (a device, a named
// pipe are not the daemon's to own) and reported as not changed. A regular
// file that gained a name, or lost its only one, since it was opened is
// refused. Errors have code 73 and name stage.
func Chown(fd int, path string, uid, gid int, stage string) (changed bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &stages.Error{Stage: stage, Code: stages.ExitCantCreate, Err: &os.PathError{Op: "fstat", Path: path, Err: err}}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil
	}
	switch {
	case st.Nlink == 0:
		return false, Refusef(stage, "", path, "it was removed since it was opened; not handing it over")
	case st.Nlink > 1:
		return false, Refusef(stage, "", path, "it has %d hard links (its other names may be files root must not hand over)", st.Nlink)
	}
	for {
		err = unix.Fchown(fd, uid, gid)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return false, &stages.Error{Stage: stage, Code: stages.ExitCantCreate, Err: &os.PathError{Op: "fchown", Path: path, Err: err}}
	}
	return true, nil
}

func fstatat(dir int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dir, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

func openat(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ftruncate(fd int, size int64) error {
	for {
		err := unix.Ftruncate(fd, size)
		if err != unix.EINTR {
			return err
		}
	}
}
