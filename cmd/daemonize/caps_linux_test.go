//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
)

// --cap keeps exactly the named capability across the drop to -u, in the
// program's ambient set; without it the program has none. As non-root,
// --cap (like -u) is refused before anything starts.
func TestCapKeepsOneCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		r := daemonize(t, []string{"-u", "nobody", "--cap", "net_bind_service", "/bin/sleep", "30"})
		if r.code != 77 && r.code != 64 {
			t.Errorf("as uid %d: exit %d, want 77 (a drop needs root)", os.Geteuid(), r.code)
		}
		return
	}
	for _, tc := range []struct {
		args []string
		caps string
	}{
		{[]string{"--cap", "net_bind_service"}, "0000000000000400"},
		{[]string{"--cap", "NET_BIND_SERVICE,cap_net_raw"}, "0000000000002400"},
		{nil, "0000000000000000"},
	} {
		r := daemonize(t, append(append([]string{"-u", "nobody"}, tc.args...), "/bin/sleep", "30")).expect(0)
		pid := r.daemon()
		if uid := status(t, pid, "Uid"); uid != "65534 65534 65534 65534" {
			t.Errorf("%v: uids %q", tc.args, uid)
		}
		for _, f := range []string{"CapPrm", "CapEff", "CapAmb"} {
			if got := status(t, pid, f); got != tc.caps {
				t.Errorf("%v: %s %s, want %s", tc.args, f, got, tc.caps)
			}
		}
	}
	r := daemonize(t, []string{"--cap", "net_bind_service", "/bin/sleep", "30"})
	if r.code != 64 {
		t.Errorf("--cap without -u: exit %d, want 64", r.code)
	}
	r = daemonize(t, []string{"-u", "nobody", "--cap", "no_such_cap", "/bin/sleep", "30"})
	if r.code != 64 || !strings.Contains(r.stderr, "no_such_cap") {
		t.Errorf("unknown capability: exit %d stderr %q, want 64 naming it", r.code, r.stderr)
	}
}
