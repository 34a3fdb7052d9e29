//go:build linux

package listen

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	cases := []struct {
		network, address string
		family, typ      int
		ip               string
		dual             bool
		bad              string
	}{
		{network: "tcp", address: ":80", family: unix.AF_INET6, typ: unix.SOCK_STREAM, ip: "::", dual: true},
		{network: "tcp4", address: ":80", family: unix.AF_INET, typ: unix.SOCK_STREAM, ip: "0.0.0.0"},
		{network: "tcp6", address: ":80", family: unix.AF_INET6, typ: unix.SOCK_STREAM, ip: "::"},
		{network: "tcp", address: "127.0.0.1:8080", family: unix.AF_INET, typ: unix.SOCK_STREAM, ip: "127.0.0.1"},
		{network: "tcp", address: "[::1]:8080", family: unix.AF_INET6, typ: unix.SOCK_STREAM, ip: "::1"},
		{network: "tcp6", address: "localhost:1", family: unix.AF_INET6, typ: unix.SOCK_STREAM, ip: "::1"},
		{network: "udp", address: "localhost:53", family: unix.AF_INET, typ: unix.SOCK_DGRAM, ip: "127.0.0.1"},
		{network: "unix", address: "/run/x.sock", family: unix.AF_UNIX, typ: unix.SOCK_STREAM},
		{network: "unixgram", address: "@abstract", family: unix.AF_UNIX, typ: unix.SOCK_DGRAM},
		{network: "unixpacket", address: "/x", family: unix.AF_UNIX, typ: unix.SOCK_SEQPACKET},
		{network: "sctp", address: ":1", bad: "unknown network"},
		{network: "tcp", address: "80", bad: "missing port"},
		{network: "tcp", address: "::1:80", bad: "brackets"},
		{network: "tcp", address: "example.com:80", bad: "IP address"},
		{network: "tcp", address: ":http", bad: "port must be a number"},
		{network: "tcp", address: ":70000", bad: "port must be a number"},
		{network: "tcp4", address: "[::1]:1", bad: "not IPv4"},
		{network: "tcp6", address: "127.0.0.1:1", bad: "not IPv6"},
		{network: "tcp", address: "[fe80::1%eth0]:1", bad: "no zone"},
		{network: "unix", address: "relative.sock", bad: "absolute"},
		{network: "unix", address: "/" + strings.Repeat("x", 120), bad: "too long"},
	}
	for _, c := range cases {
		a, err := Parse(c.network, c.address)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("Parse(%q, %q) = %v, want an error with %q", c.network, c.address, err, c.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", c.network, c.address, err)
			continue
		}
		ip := ""
		if a.IP.IsValid() {
			ip = a.IP.String()
		}
		if a.Family != c.family || a.Type != c.typ || ip != c.ip || a.DualStack != c.dual {
			t.Errorf("Parse(%q, %q) = %+v", c.network, c.address, a)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"http": true, "a.b-c_1": true, "": false, "a:b": false, "a b": false, strings.Repeat("x", 256): false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

func TestBindTCPAndUDP(t *testing.T) {
	f, err := Bind(stages.ListenerSpec{Name: "web", Network: "tcp4", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name() != "web" {
		t.Errorf("file name %q", f.Name())
	}
	if fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("socket is not close-on-exec")
	}
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// The port is taken now: 71, naming the listener.
	_, err = Bind(stages.ListenerSpec{Name: "again", Network: "tcp4", Address: ln.Addr().String()})
	if stages.ExitCodeOf(err) != stages.ExitOSErr || !strings.Contains(err.Error(), `listener "again"`) || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind of a taken port: %v (code %d)", err, stages.ExitCodeOf(err))
	}

	u, err := Bind(stages.ListenerSpec{Name: "dns", Network: "udp", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if typ, _ := unix.GetsockoptInt(int(u.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_DGRAM {
		t.Errorf("udp socket type %d", typ)
	}
}

func TestBindUnixStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	spec := stages.ListenerSpec{Name: "ctl", Network: "unix", Address: path}

	// A stale socket file (bound, then its fd closed) is replaced.
	f, err := Bind(spec)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = Bind(spec)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A live one is not touched.
	if _, err := Bind(spec); err == nil || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind over a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was disturbed: %v", err)
	} else {
		c.Close()
	}
	f.Close()

	// Anything but a socket stays.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Bind(stages.ListenerSpec{Name: "x", Network: "unix", Address: plain}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("bind over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(plain); string(data) != "data" {
		t.Error("the regular file was removed or changed")
	}
}

func TestRunSources(t *testing.T) {
	inh, err := Bind(stages.ListenerSpec{Name: "old", Network: "tcp4", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	unclaimed, err := Bind(stages.ListenerSpec{Name: "gone", Network: "tcp4", Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s := &stages.State{
		Config: stages.Config{Listeners: []stages.ListenerSpec{
			{Name: "web", Network: "tcp4", Address: "127.0.0.1:1"}, // inherited
			{Name: "act", Network: "tcp4", Address: "127.0.0.1:2"}, // socket activation
			{Name: "new", Network: "tcp4", Address: "127.0.0.1:0"}, // bound
		}},
		ListenNames: []string{"act"},
		Inherited: &stages.Inherited{LockFD: -1, Sockets: []stages.Socket{
			{ListenerSpec: stages.ListenerSpec{Name: "web", Network: "tcp4", Address: "127.0.0.1:1"}, File: inh},
			{ListenerSpec: stages.ListenerSpec{Name: "other", Network: "tcp4", Address: "127.0.0.1:3"}, File: unclaimed},
		}},
	}
	if err := New().Run(s); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, so := range s.Sockets {
		names = append(names, so.Name)
		defer so.File.Close()
	}
	if strings.Join(names, ",") != "web,new" || s.Sockets[0].File != inh {
		t.Errorf("sockets %v (inherited file kept: %v)", names, s.Sockets[0].File == inh)
	}
	if _, err := unclaimed.Stat(); err == nil {
		t.Error("an inherited socket no listener asks for was left open")
	}
}

func TestUnixSocketFileCleanup(t *testing.T) {
	for _, handedOver := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "ctl.sock")
		s := &stages.State{Config: stages.Config{Listeners: []stages.ListenerSpec{{Name: "ctl", Network: "unix", Address: path}}}}
		if err := New().Run(s); err != nil {
			t.Fatal(err)
		}
		if handedOver {
			s.Successor = 1234
		}
		_ = s.RunCleanups()
		s.Sockets[0].File.Close()
		_, err := os.Lstat(path)
		if removed := os.IsNotExist(err); removed == handedOver {
			t.Errorf("handed over %v: socket file removed %v", handedOver, removed)
		}
	}
}
