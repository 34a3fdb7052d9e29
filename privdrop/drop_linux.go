//go:build linux

package privdrop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/blivet-go/blivet/stages"
)

// setIDs sets the supplementary groups, then real, effective and saved gid,
// then uid. Package syscall performs each call on every thread (with cgo,
// through the C library's own all-thread broadcast).
//
// With t.Caps, every thread first gets PR_SET_KEEPCAPS, and after the uid
// change its permitted, effective and inheritable sets are set to exactly
// t.Caps and each is raised in the ambient set (syscall.AllThreadsSyscall,
// so not in a program linked with cgo: see ParseCapabilities). The
// bounding set is left as it is.
func setIDs(t Target) error {
	if len(t.Caps) > 0 {
		if t.UID <= 0 {
			return stages.Errorf(stageName, stages.ExitUsage, "keeping capabilities %s needs a switch to a user other than root (%s)", capList(t.Caps), t)
		}
		if err := keepCaps(true); err != nil {
			return stages.Errorf(stageName, stages.ExitNoPerm, "keeping capabilities %s across the drop to %s: %w", capList(t.Caps), t, err)
		}
	}
	if err := syscall.Setgroups(t.Groups); err != nil {
		// Nothing changed yet: the caller may still report it as root.
		if len(t.Caps) > 0 {
			_ = keepCaps(false)
		}
		return stages.Errorf(stageName, stages.ExitNoPerm, "setgroups(%v) for %s: %w", t.Groups, t, err)
	}
	if err := syscall.Setresgid(t.GID, t.GID, t.GID); err != nil {
		return fatal("setresgid(%d) for %s: %w", t.GID, t, err)
	}
	if t.UID >= 0 {
		if err := syscall.Setresuid(t.UID, t.UID, t.UID); err != nil {
			return fatal("setresuid(%d) for %s: %w", t.UID, t, err)
		}
	}
	if len(t.Caps) > 0 {
		if err := setCaps(t.Caps); err != nil {
			return fatal("keeping capabilities %s after the switch to %s: %w", capList(t.Caps), t, err)
		}
	}
	return nil
}

// Check verifies the process runs as t: on every thread (read from
// /proc/self/task/*/status) the real, effective, saved and filesystem gids
// are t.GID, the supplementary groups are t.Groups and, after a user
// switch, the uids are t.UID and the permitted, effective and ambient
// capability sets are exactly t.Caps (empty: no capability left; with
// t.Caps the inheritable set must be exactly t.Caps too); for a group-only
// target every thread keeps the calling thread's uids. After a switch to a
// uid other than 0 it then tries to regain uid 0 and gid 0, which must
// fail. Any mismatch is a Fatal error with exit code 77. Without /proc
// mounted, only the calling thread is checked (package syscall changed
// every thread, or failed).
func Check(t Target) error {
	ruid, euid, suid := unix.Getresuid()
	rgid, egid, sgid := unix.Getresgid()
	groups, err := unix.Getgroups()
	if err != nil {
		return fatal("getgroups after dropping to %s: %w", t, err)
	}
	wantUID := t.UID
	if wantUID < 0 {
		if ruid != euid || euid != suid {
			return fatal("uids %d/%d/%d differ after the group-only drop to %s", ruid, euid, suid, t)
		}
		wantUID = ruid
	}
	self := creds{uid: [4]int{ruid, euid, suid, wantUID}, gid: [4]int{rgid, egid, sgid, t.GID}, groups: groups}
	if err := self.match(t, wantUID); err != nil {
		return fatal("calling thread after dropping to %s: %w", t, err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err == nil {
		for _, task := range tasks {
			data, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited meanwhile
			}
			if err != nil {
				return fatal("checking thread %s after dropping to %s: %w", task.Name(), t, err)
			}
			c, err := parseStatus(data)
			if err == nil {
				err = c.match(t, wantUID)
			}
			if err == nil && t.UID > 0 {
				err = c.matchCaps(t.Caps)
			}
			if err != nil {
				return fatal("thread %s after dropping to %s: %w", task.Name(), t, err)
			}
		}
	}
	// What cannot be read from /proc is tried: the same Verification
	// list a raw child works through after a planned drop.
	for _, c := range Verification(t) {
		var err error
		switch c.Kind {
		case stages.CheckNoSetuid0:
			err = syscall.Setuid(0)
		case stages.CheckNoSeteuid0:
			err = syscall.Setresuid(-1, 0, -1)
		case stages.CheckNoSetgid0:
			err = syscall.Setgid(0)
		default:
			continue // ids, groups and capabilities: read above, on every thread
		}
		if err == nil {
			return fatal("after dropping to %s: %s", t, describeCheck(c))
		}
	}
	return nil
}

// creds is one thread's identity, as /proc/PID/task/TID/status shows it.
type creds struct {
	uid, gid                       [4]int // real, effective, saved, filesystem
	groups                         []int
	capInh, capPrm, capEff, capAmb uint64
}

func (c creds) match(t Target, wantUID int) error {
	for i, name := range []string{"real", "effective", "saved", "filesystem"} {
		if c.uid[i] != wantUID {
			return fmt.Errorf("%s uid is %d, want %d", name, c.uid[i], wantUID)
		}
		if c.gid[i] != t.GID {
			return fmt.Errorf("%s gid is %d, want %d", name, c.gid[i], t.GID)
		}
	}
	got := slices.Clone(c.groups)
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(got, t.Groups) && (len(got) != 0 || len(t.Groups) != 0) {
		return fmt.Errorf("supplementary groups are %v, want %v", got, t.Groups)
	}
	return nil
}

// matchCaps checks the capability sets after a switch to a user other
// than root: permitted, effective and ambient exactly caps, and with caps
// the inheritable set too (without, it is left as the launcher had it and
// grants nothing on its own).
func (c creds) matchCaps(caps []int) error {
	want := capMask(caps)
	inh := c.capInh
	if len(caps) == 0 {
		inh = want
	}
	if c.capPrm == want && c.capEff == want && c.capAmb == want && inh == want {
		return nil
	}
	if len(caps) == 0 {
		return fmt.Errorf("capabilities left: permitted %#x, effective %#x, ambient %#x", c.capPrm, c.capEff, c.capAmb)
	}
	return fmt.Errorf("capabilities are permitted %#x, effective %#x, inheritable %#x, ambient %#x; want exactly %#x (%s)",
		c.capPrm, c.capEff, c.capInh, c.capAmb, want, capList(caps))
}

// parseStatus reads the Uid, Gid, Groups and Cap* lines of a
// /proc/PID/status file.
func parseStatus(data []byte) (creds, error) {
	var c creds
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		var err error
		switch key {
		case "Uid", "Gid":
			if len(f) != 4 {
				return c, fmt.Errorf("status line %q: want 4 ids", sc.Text())
			}
			ids := &c.uid
			if key == "Gid" {
				ids = &c.gid
			}
			for i := range f {
				if ids[i], err = strconv.Atoi(f[i]); err != nil {
					return c, fmt.Errorf("status line %q: %w", sc.Text(), err)
				}
			}
			seen++
		case "Groups":
			for _, s := range f {
				g, err := strconv.Atoi(s)
				if err != nil {
					return c, fmt.Errorf("status line %q: %w", sc.Text(), err)
				}
				c.groups = append(c.groups, g)
			}
			seen++
		case "CapInh", "CapPrm", "CapEff", "CapAmb":
			if len(f) != 1 {
				return c, fmt.Errorf("status line %q: want one mask", sc.Text())
			}
			v, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				return c, fmt.Errorf("status line %q: %w", sc.Text(), err)
			}
			switch key {
			case "CapInh":
				c.capInh = v
			case "CapPrm":
				c.capPrm = v
			case "CapEff":
				c.capEff = v
			default:
				c.capAmb = v
			}
		}
	}
	if seen != 3 {
		return c, errors.New("status lacks Uid, Gid or Groups")
	}
	return c, sc.Err()
}
