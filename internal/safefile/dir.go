package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// maxHops bounds the symbolic links followed in one walk, as the kernel's
// ELOOP limit does.
const maxHops = 40

// OpenDir opens the directory path for use as the anchor of *at(2) calls
// or fchdir(2) (on Linux with O_PATH: no read permission needed), walking
// it one component at a time from "/" (or "." for a relative path). Every
// component is opened with O_NOFOLLOW and O_DIRECTORY; a component that is
// a symbolic link is followed only when it is owned by root or by the
// effective user, so a link planted by another user in a directory it can
// write (its own home, a log directory it owns, /tmp) is refused, while
// the system's own links (/var/run -> /run) keep working. what names the
// directory in messages ("" for none); errors are *stages.Error values
// with code 73 naming stage.
func OpenDir(path, stage, what string) (int, error) {
	fd, err := openDir(path)
	if err == nil {
		return fd, nil
	}
	var r refusal
	if errors.As(err, &r) {
		return -1, Refusef(stage, what, path, "%s", r.reason)
	}
	return -1, &stages.Error{Stage: stage, Code: stages.ExitCantCreate, Err: err}
}

// refusal is a walk that stopped on something it must not follow.
type refusal struct{ reason string }

func (r refusal) Error() string { return r.reason }

func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

func openRoot(abs bool) (int, string, error) {
	start := "."
	if abs {
		start = "/"
	}
	for {
		fd, err := unix.Open(start, unix.O_DIRECTORY|unix.O_CLOEXEC|dirFlags, 0)
		if err != unix.EINTR {
			if err != nil {
				return -1, start, &os.PathError{Op: "open directory", Path: start, Err: err}
			}
			return fd, start, nil
		}
	}
}

func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func openDir(path string) (int, error) {
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return -1, fmt.Errorf("%q is not a usable directory path", path)
	}
	if fd, ok := openNoLinks(path); ok {
		return fd, nil
	}
	cur, walked, err := openRoot(filepath.IsAbs(path))
	if err != nil {
		return -1, err
	}
	comps := components(path)
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		here := filepath.Join(walked, c)
		var st unix.Stat_t
		if err := fstatat(cur, c, &st); err != nil {
			unix.Close(cur)
			return -1, &os.PathError{Op: "open directory", Path: here, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if !trustedOwner(st.Uid) {
				unix.Close(cur)
				return -1, refusal{fmt.Sprintf("its directory %s is a symbolic link owned by uid %d (only links owned by root or uid %d are followed)", here, st.Uid, os.Geteuid())}
			}
			if hops++; hops > maxHops {
				unix.Close(cur)
				return -1, &os.PathError{Op: "open directory", Path: path, Err: unix.ELOOP}
			}
			target, err := readlinkat(cur, c)
			if err != nil {
				unix.Close(cur)
				return -1, &os.PathError{Op: "readlink", Path: here, Err: err}
			}
			// The link read must be the link checked.
			var again unix.Stat_t
			if err := fstatat(cur, c, &again); err != nil || again.Ino != st.Ino || again.Dev != st.Dev || !trustedOwner(again.Uid) {
				unix.Close(cur)
				return -1, refusal{fmt.Sprintf("its directory %s was replaced while being followed", here)}
			}
			if filepath.IsAbs(target) {
				unix.Close(cur)
				if cur, walked, err = openRoot(true); err != nil {
					return -1, err
				}
			}
			comps = append(components(target), comps...)
			continue
		}
		next, err := openat(cur, c, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|dirFlags, 0)
		unix.Close(cur)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
				return -1, refusal{fmt.Sprintf("its directory %s became a symbolic link while being opened", here)}
			}
			return -1, &os.PathError{Op: "open directory", Path: here, Err: err}
		}
		cur, walked = next, here
	}
	return cur, nil
}

func readlinkat(dir int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dir, name, buf)
		if err == unix.EINTR {
			n /= 2
			continue
		}
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
		if n > 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}
