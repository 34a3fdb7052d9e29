package privdrop

import (
	"slices"
	"strings"

	"github.com/blivet-go/blivet/stages"
)

// capNames are the Linux capability names by number, without the "cap_"
// prefix (linux/capability.h).
var capNames = [...]string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill",
	"setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service",
	"net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
	"sys_tty_config", "mknod", "lease", "audit_write", "audit_control",
	"setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// capName returns "cap_net_bind_service" for 10.
func capName(c int) string {
	if c >= 0 && c < len(capNames) {
		return "cap_" + capNames[c]
	}
	return "cap_?"
}

func capList(caps []int) string {
	names := make([]string, len(caps))
	for i, c := range caps {
		names[i] = capName(c)
	}
	return strings.Join(names, ",")
}

// ParseCapabilities returns the numbers of the named Linux capabilities,
// sorted and without duplicates, for Target.Caps. A name may be written
// with or without the "cap_" prefix, in any case: "net_bind_service",
// "CAP_NET_BIND_SERVICE".
//
// It is a usage error (64) naming the culprit when a name is unknown; when
// it is setuid or setgid (either would let the daemon become root again,
// which the drop's check refuses); when the system is not Linux (the
// capability sets are Linux's); or when the program is linked with cgo
// (Go changes a capability on every thread only without cgo, through
// syscall.AllThreadsSyscall: build with CGO_ENABLED=0 or, when cgo comes
// only from package net, with -tags netgo).
func ParseCapabilities(names ...string) ([]int, error) {
	var caps []int
	for _, name := range names {
		n := strings.TrimPrefix(strings.ToLower(name), "cap_")
		c := slices.Index(capNames[:], n)
		switch {
		case c < 0 || n == "":
			return nil, stages.Errorf(stageName, stages.ExitUsage, "unknown capability %q (names as in capabilities(7), e.g. net_bind_service)", name)
		case n == "setuid" || n == "setgid":
			return nil, stages.Errorf(stageName, stages.ExitUsage, "capability %q would let the daemon regain root, which the drop must make impossible", name)
		}
		caps = append(caps, c)
	}
	slices.Sort(caps)
	caps = slices.Compact(caps)
	if len(caps) > 0 {
		if err := capsSupported(); err != nil {
			return nil, stages.Errorf(stageName, stages.ExitUsage, "keeping capabilities %s across the drop: %w", capList(caps), err)
		}
	}
	return caps, nil
}
