package pidfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fileKey is a file's identity as /proc/locks prints it.
type fileKey struct {
	major, minor uint32
	ino          uint64
}

// keysOf returns the identities of the open file fd: the one stat(2)
// gives, and the kernel's own (fdinfo's inode, mountinfo's device), which
// is what /proc/locks prints and which differs from stat's on btrfs
// subvolumes and overlayfs.
func keysOf(fd int) ([]fileKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	keys := []fileKey{{unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), uint64(st.Ino)}}
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return keys, nil
	}
	var mntID string
	var ino uint64
	for _, line := range strings.Split(string(info), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "mnt_id":
			mntID = strings.TrimSpace(v)
		case "ino":
			ino, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if mntID == "" || ino == 0 {
		return keys, nil
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return keys, nil
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != mntID {
			continue
		}
		var maj, mnr uint32
		if _, err := fmt.Sscanf(f[2], "%d:%d", &maj, &mnr); err == nil {
			if k := (fileKey{maj, mnr, ino}); k != keys[0] {
				keys = append(keys, k)
			}
		}
		break
	}
	return keys, nil
}

// holderOf asks the kernel, through /proc/locks, whether a process holds
// a flock lock on the open file fd, and which.
func holderOf(fd int) (Status, error) {
	keys, err := keysOf(fd)
	if err != nil {
		return Status{}, err
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return Status{}, err
	}
	return scanLocks(data, keys), nil
}

// scanLocks finds the first flock lock (not a waiter) on one of keys in
// the content of /proc/locks, whose lines look like
//
//	1: FLOCK  ADVISORY  WRITE 1234 fd:00:5678 0 EOF
//	1: -> FLOCK  ADVISORY  WRITE 1240 fd:00:5678 0 EOF
//
// (the second is a process waiting for the lock, not holding it). The
// device is major:minor in hex, the inode in decimal.
func scanLocks(data []byte, keys []fileKey) Status {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue // a waiter ("->"), a POSIX or OFD lock, a lease
		}
		id := strings.SplitN(f[5], ":", 3)
		if len(id) != 3 {
			continue
		}
		maj, err1 := strconv.ParseUint(id[0], 16, 32)
		mnr, err2 := strconv.ParseUint(id[1], 16, 32)
		ino, err3 := strconv.ParseUint(id[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		k := fileKey{uint32(maj), uint32(mnr), ino}
		for _, want := range keys {
			if k == want {
				pid, err := strconv.Atoi(f[4])
				if err != nil || pid < 0 {
					pid = 0
				}
				return Status{Held: true, PID: pid}
			}
		}
	}
	return Status{}
}
