//go:build linux

package blivet_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/blivettest"
	"github.com/blivet-go/blivet/pidfile"
)

// dropPidOpts configures the "pidfile-drop" helper.
type dropPidOpts struct {
	Pidfile, Lockfile string
	NoLock            bool
}

func init() {
	blivettest.Register("pidfile-drop", func(h *blivettest.H) {
		var o dropPidOpts
		if err := json.Unmarshal([]byte(h.Env("PIDFILE_DROP_OPTS")), &o); err != nil {
			panic(err)
		}
		opts := []blivet.Option{blivet.WithPidfile(o.Pidfile), blivet.WithUser("nobody")}
		if o.Lockfile != "" {
			opts = append(opts, blivet.WithLockfile(o.Lockfile))
		}
		if o.NoLock {
			opts = append(opts, blivet.WithoutLockfile())
		}
		ctx, err := blivet.Daemonize(opts...)
		if err != nil {
			os.Exit(blivet.ExitCodeOf(err))
		}
		if err := ctx.DropPrivileges(); err != nil {
			ctx.ReportError(err)
		}
		if err := ctx.NotifyParent(); err != nil {
			ctx.ReportError(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !pfExists(filepath.Join(h.Dir, "close")); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				panic("never told to close")
			}
		}
		err = ctx.Close()
		h.Report("closed", map[string]any{"err": fmt.Sprint(err), "euid": os.Geteuid()})
		select {} // alive: whatever the pidfile shows now is Close's doing
	})
}

// TestPidfileCloseAfterDrop: a daemon that dropped to nobody cannot
// remove its pidfile from a root-owned 0755 directory (as in /run); Close
// then empties it through the descriptor it holds, so no PID stays behind,
// and releases the lock.
func TestPidfileCloseAfterDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (the daemon drops to nobody for real)")
	}
	nobody, lookupErr := user.Lookup("nobody")
	if lookupErr != nil {
		t.Skipf("no user nobody: %v", lookupErr)
	}
	for _, tc := range []struct {
		name string
		o    func(run string) dropPidOpts
	}{
		{"locked-pidfile", func(run string) dropPidOpts { return dropPidOpts{Pidfile: filepath.Join(run, "d.pid")} }},
		{"standalone-lockfile", func(run string) dropPidOpts {
			return dropPidOpts{Pidfile: filepath.Join(run, "d.pid"), Lockfile: filepath.Join(run, "d.lock")}
		}},
		{"without-lock", func(run string) dropPidOpts { return dropPidOpts{Pidfile: filepath.Join(run, "d.pid"), NoLock: true} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := t.TempDir() // root-owned; mode 0755 like /run
			if err := os.Chmod(run, 0o755); err != nil {
				t.Fatal(err)
			}
			o := tc.o(run)
			data, _ := json.Marshal(o)
			r := blivettest.Launch(t, "pidfile-drop", blivettest.WithEnv("PIDFILE_DROP_OPTS", string(data)))
			if r.ExitCode != 0 {
				t.Fatalf("launcher exit %d, stderr %q", r.ExitCode, r.Stderr)
			}
			pidData, err := os.ReadFile(o.Pidfile)
			pid, perr := strconv.Atoi(strings.TrimSuffix(string(pidData), "\n"))
			if err != nil || perr != nil || !blivettest.Alive(pid) {
				t.Fatalf("pidfile %q (%v): no live daemon", pidData, err)
			}
			c, err := readCreds(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatal(err)
			}
			if got := strconv.Itoa(c.UID[1]); got != nobody.Uid {
				t.Fatalf("daemon %d runs as uid %s, want nobody's %s: the test proves nothing", pid, got, nobody.Uid)
			}
			if err := os.WriteFile(filepath.Join(r.Dir, "close"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var closed struct {
				Err  string
				Euid int
			}
			r.Await("closed", &closed)
			if closed.Err != "<nil>" {
				t.Errorf("Close after the drop: %s, want nil (the pidfile emptied instead of removed)", closed.Err)
			}
			if !blivettest.Alive(pid) {
				t.Fatal("the daemon ended: the pidfile's state is not Close's doing")
			}
			if data, err := os.ReadFile(o.Pidfile); err != nil || len(data) != 0 {
				t.Errorf("pidfile after Close as nobody: %q (%v), want it left empty", data, err)
			}
			for _, p := range []string{o.Pidfile, o.Lockfile} {
				if p == "" {
					continue
				}
				if st, err := pidfile.Probe(p); err != nil || st.Held {
					t.Errorf("%s after Close: %+v %v, want not held", p, st, err)
				}
			}
		})
	}
}
