// Package listen provides the stage that gives the daemon its named
// listening sockets (blivet.WithListener).
//
// For each configured listener the stage takes the first source that has
// it: the previous generation of an upgrade (State.Inherited, same name,
// network and address), the service manager's socket activation (an fd
// whose LISTEN_FDNAMES name is the listener's name: nothing to do, the
// Context's Files returns it), and otherwise a socket it binds itself. It
// runs before privdrop, so a daemon started as root binds port 80 and then
// drops.
//
// Sockets are made with raw system calls, without package net (which costs
// every program that links it a little at each start): the daemon turns
// the files into net values with package sockets. Hosts are IP addresses,
// "localhost" or empty (every address); ports are numbers.
package listen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// Name is the stage's name.
const Name = "listen"

const stageName = Name

// Stage is the listen stage.
type Stage struct{}

var _ stages.Stage = (*Stage)(nil)

// New returns the listen stage.
func New() *Stage { return &Stage{} }

// Name returns "listen".
func (*Stage) Name() string { return stageName }

// Addr is a parsed listener address.
type Addr struct {
	Family    int // unix.AF_INET, AF_INET6 or AF_UNIX
	Type      int // unix.SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
	IP        IP  // the host (IPv6 unspecified for every address, with DualStack)
	Port      int
	Path      string // unix socket path; "@name" is abstract
	DualStack bool   // "tcp"/"udp" with every address: IPv6 socket accepting IPv4 too
}

// CheckName reports whether name can name a listener: non-empty, at most
// 255 bytes, printable ASCII without ':' (the LISTEN_FDNAMES rules).
func CheckName(name string) error {
	if name == "" || len(name) > 255 {
		return errors.New("a listener name must have 1 to 255 characters")
	}
	for _, r := range name {
		if r <= ' ' || r > '~' || r == ':' {
			return fmt.Errorf("listener name %q: only printable ASCII without spaces or ':'", name)
		}
	}
	return nil
}

// Parse checks network and address as WithListener takes them.
func Parse(network, address string) (Addr, error) {
	var a Addr
	switch network {
	case "unix", "unixpacket", "unixgram":
		a.Family = unix.AF_UNIX
		a.Type = map[string]int{"unix": unix.SOCK_STREAM, "unixpacket": unix.SOCK_SEQPACKET, "unixgram": unix.SOCK_DGRAM}[network]
		if address == "" || address == "@" || strings.IndexByte(address, 0) >= 0 {
			return a, fmt.Errorf("unix socket path %q: empty or contains NUL", address)
		}
		if len(address) >= 108 {
			return a, fmt.Errorf("unix socket path %q is too long (at most 107 bytes)", address)
		}
		if !strings.HasPrefix(address, "@") && !strings.HasPrefix(address, "/") {
			return a, fmt.Errorf("unix socket path %q must be absolute (or @abstract)", address)
		}
		a.Path = address
		return a, nil
	case "tcp", "tcp4", "tcp6":
		a.Type = unix.SOCK_STREAM
	case "udp", "udp4", "udp6":
		a.Type = unix.SOCK_DGRAM
	default:
		return a, fmt.Errorf("unknown network %q (tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixpacket, unixgram)", network)
	}
	i := strings.LastIndexByte(address, ':')
	if i < 0 {
		return a, fmt.Errorf("address %q: missing port (host:port)", address)
	}
	host, port := address[:i], address[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.ContainsRune(host, ':') {
		return a, fmt.Errorf("address %q: an IPv6 host goes in brackets", address)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return a, fmt.Errorf("address %q: port must be a number in 0..65535", address)
	}
	a.Port = p
	v := network[len(network)-1]
	switch host {
	case "":
		switch v {
		case '4':
			a.IP = IPv4(0, 0, 0, 0)
		case '6':
			a.IP = IPv6([16]byte{})
		default:
			a.IP, a.DualStack = IPv6([16]byte{}), true
		}
	case "localhost":
		a.IP = IPv4(127, 0, 0, 1)
		if v == '6' {
			a.IP = IPv6([16]byte{15: 1})
		}
	default:
		ip, ok := ParseIP(host)
		if !ok {
			return a, fmt.Errorf("address %q: host must be an IP address (no zone), \"localhost\" or empty", address)
		}
		a.IP = ip.Unmap()
		if ip.Is4In6() && v == '6' {
			a.IP = ip
		}
	}
	switch {
	case v == '4' && !a.IP.Is4():
		return a, fmt.Errorf("address %q is not IPv4 (%s)", address, network)
	case v == '6' && a.IP.Is4():
		return a, fmt.Errorf("address %q is not IPv6 (%s)", address, network)
	}
	a.Family = unix.AF_INET
	if a.IP.Is6() {
		a.Family = unix.AF_INET6
	}
	return a, nil
}

// Run gives the daemon every configured listener; see the package
// documentation. Inherited sockets no listener asks for are closed.
func (*Stage) Run(s *stages.State) error {
	var inherited []stages.Socket
	if s.Inherited != nil {
		inherited = s.Inherited.Sockets
	}
	used := make([]bool, len(inherited))
	for _, spec := range s.Config.Listeners {
		var f *os.File
		for i, in := range inherited {
			if f == nil && !used[i] && in.ListenerSpec == spec {
				used[i], f = true, in.File
			}
		}
		if f == nil && activated(s, spec.Name) {
			continue
		}
		if f == nil {
			var err error
			if f, err = Bind(spec); err != nil {
				return err
			}
		}
		s.Sockets = append(s.Sockets, stages.Socket{ListenerSpec: spec, File: f})
		if a, _ := Parse(spec.Network, spec.Address); a.Family == unix.AF_UNIX && !strings.HasPrefix(a.Path, "@") {
			// The generation that closes last removes the socket file.
			s.OnCleanup(unlinker(s, a.Path))
		}
	}
	for i, in := range inherited {
		if !used[i] {
			in.File.Close()
		}
	}
	return nil
}

func activated(s *stages.State, name string) bool {
	for _, n := range s.ListenNames {
		if n == name {
			return true
		}
	}
	return false
}

// unlinker returns a cleanup that removes the socket file at path if it
// still is the one there now, unless another generation of an upgrade
// owns it.
func unlinker(s *stages.State, path string) func() error {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return func() error { return nil }
	}
	dev, ino := uint64(st.Dev), uint64(st.Ino)
	return func() error {
		if s.HandedOver() {
			return nil
		}
		var now unix.Stat_t
		if unix.Lstat(path, &now) == nil && uint64(now.Dev) == dev && uint64(now.Ino) == ino && now.Mode&unix.S_IFMT == unix.S_IFSOCK {
			_ = os.Remove(path)
		}
		return nil
	}
}

// Bind makes the socket spec describes, bound (and listening for stream
// sockets), close-on-exec, as a file named spec.Name. Errors name the
// listener; the exit code is 77 when the system refused permission, 71
// otherwise (64 for a malformed spec).
func Bind(spec stages.ListenerSpec) (*os.File, error) {
	a, err := Parse(spec.Network, spec.Address)
	if err != nil {
		return nil, stages.Errorf(stageName, stages.ExitUsage, "listener %q: %v", spec.Name, err)
	}
	fd, err := bind(a)
	if err != nil {
		code := stages.ExitOSErr
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			code = stages.ExitNoPerm
		}
		return nil, stages.Errorf(stageName, code, "listener %q (%s %s): %w", spec.Name, spec.Network, spec.Address, err)
	}
	return os.NewFile(uintptr(fd), spec.Name), nil
}

func bind(a Addr) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(a.Family, a.Type, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil && a.DualStack && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)) {
		a.Family, a.IP, a.DualStack = unix.AF_INET, IPv4(0, 0, 0, 0), false
		return bind(a)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(op, err)
	}
	var sa unix.Sockaddr
	switch a.Family {
	case unix.AF_UNIX:
		if !strings.HasPrefix(a.Path, "@") {
			if err := removeStale(a.Path, a.Type); err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
		sa = &unix.SockaddrUnix{Name: a.Path}
	case unix.AF_INET:
		sa = &unix.SockaddrInet4{Port: a.Port, Addr: a.IP.As4()}
	default:
		sa = &unix.SockaddrInet6{Port: a.Port, Addr: a.IP.As16()}
		v6only := 1
		if a.DualStack {
			v6only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fail("setsockopt", err)
		}
	}
	if a.Family != unix.AF_UNIX && a.Type == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if a.Type != unix.SOCK_DGRAM {
		if err := unix.Listen(fd, 4096); err != nil {
			return fail("listen", err)
		}
	}
	return fd, nil
}

// removeStale removes a socket file at path that nobody accepts on (a
// previous run's leftover). A missing path is fine; anything but a socket
// is an error, and so is a socket that is in use.
func removeStale(path string, typ int) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is not a socket: not removed", path)
	}
	probe, err := unix.Socket(unix.AF_UNIX, typ, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	err = unix.Connect(probe, &unix.SockaddrUnix{Name: path})
	unix.Close(probe)
	if err == nil {
		return fmt.Errorf("%s: another process accepts on this socket: %w", path, unix.EADDRINUSE)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		return &os.PathError{Op: "probe", Path: path, Err: err}
	}
	// Remove it only if the path still names the socket that refused.
	var again unix.Stat_t
	if unix.Lstat(path, &again) != nil || again.Dev != st.Dev || again.Ino != st.Ino {
		return fmt.Errorf("%s changed while being checked: not removed", path)
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}
