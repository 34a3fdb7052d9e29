package blivet_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/google/go-cmp/cmp"
)

// An Option says how it was written (fmt's %v, what error messages and
// logs print), and neither that nor what it applies changes when the
// caller later changes a slice it passed.
func TestOptionsDescribeThemselves(t *testing.T) {
	cases := []struct {
		opt  blivet.Option
		want string
	}{
		{blivet.WithChdir("/srv"), `WithChdir("/srv")`},
		{blivet.WithUmask(0o027), "WithUmask(027)"},
		{blivet.WithEnv("A", "b c"), `WithEnv("A", "b c")`},
		{blivet.WithForeground(true), "WithForeground(true)"},
		{blivet.WithReadyTimeout(1500 * time.Millisecond), "WithReadyTimeout(1.5s)"},
		{blivet.WithPidfile("/run/x.pid"), `WithPidfile("/run/x.pid")`},
		{blivet.WithoutLockfile(), "WithoutLockfile()"},
		{blivet.WithListener("web", "tcp", "127.0.0.1:0"), `WithListener("web", "tcp", "127.0.0.1:0")`},
		{blivet.WithAmbientCaps("CAP_NET_BIND_SERVICE"), `WithAmbientCaps(["CAP_NET_BIND_SERVICE"])`},
	}
	for _, c := range cases {
		if got := fmt.Sprint(c.opt); got != c.want {
			t.Errorf("%%v of an option: %q, want %q", got, c.want)
		}
	}
	hook := fmt.Sprint(blivet.WithHookBefore("pidfile", func(*blivet.State) error { return nil }))
	if !strings.HasPrefix(hook, "WithHookBefore(pidfile) at options_test.go:") {
		t.Errorf("%%v of a hook option: %q, want it named by its stage and registration site", hook)
	}

	fds := []int{7, 8}
	keep := blivet.WithKeepFDs(fds...)
	names := []string{"CAP_NET_BIND_SERVICE"}
	caps := blivet.WithAmbientCaps(names...)
	fds[0], names[0] = 99, "CAP_SYS_ADMIN"
	if got := fmt.Sprint(keep, " ", caps); got != `WithKeepFDs([7 8]) WithAmbientCaps(["CAP_NET_BIND_SERVICE"])` {
		t.Errorf("after the caller changed its slices: %q", got)
	}
	cfg, err := blivet.Validate(keep)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{7, 8}, cfg.KeepFDs); diff != "" {
		t.Errorf("KeepFDs after the caller changed its slice (-want +got):\n%s", diff)
	}
}
