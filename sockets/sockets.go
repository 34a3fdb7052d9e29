// Package sockets turns socket-activation files (from blivet's
// Context.Files or systemd.Activation.Files) into net.Listener and
// net.PacketConn values.
//
// It is a package of its own so that programs which never serve a socket,
// like the daemonize command, do not link the net package: it costs a
// Go program about 0.2 ms at every start.
package sockets

import (
	"fmt"
	"net"
	"os"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// sockType returns f's socket type (SOCK_STREAM, ...) and whether it is
// listening.
func sockType(f *os.File) (typ int, listening bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var acc int
	cerr := rc.Control(func(fd uintptr) {
		if typ, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); err == nil {
			acc, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		}
	})
	if cerr != nil {
		return 0, false, cerr
	}
	return typ, acc != 0, err
}

// Listener returns a net.Listener for the activation file f (a stream or
// seqpacket socket in listening state). f stays open; the listener has its
// own fd.
func Listener(f *os.File) (net.Listener, error) {
	typ, listening, err := sockType(f)
	if err == nil && (!listening || (typ != unix.SOCK_STREAM && typ != unix.SOCK_SEQPACKET)) {
		err = fmt.Errorf("socket type %d, listening %v", typ, listening)
	}
	var l net.Listener
	if err == nil {
		l, err = net.FileListener(f)
	}
	if err != nil {
		return nil, stages.Errorf("systemd", stages.ExitOSErr, "activation fd %q is not a listening socket: %w", f.Name(), err)
	}
	return l, nil
}

// PacketConn returns a net.PacketConn for the activation file f (a
// datagram socket). f stays open; the conn has its own fd.
func PacketConn(f *os.File) (net.PacketConn, error) {
	typ, _, err := sockType(f)
	if err == nil && typ != unix.SOCK_DGRAM {
		err = fmt.Errorf("socket type %d", typ)
	}
	var pc net.PacketConn
	if err == nil {
		pc, err = net.FilePacketConn(f)
	}
	if err != nil {
		return nil, stages.Errorf("systemd", stages.ExitOSErr, "activation fd %q is not a datagram socket: %w", f.Name(), err)
	}
	return pc, nil
}

// Listeners returns a net.Listener for each of files (a Context.Files
// result), closing those already made if one fails. It returns nil for no
// files, so a program can fall back to net.Listen when it was not
// socket-activated. Each listener has its own fd; the files stay open.
func Listeners(files []*os.File) ([]net.Listener, error) {
	var out []net.Listener
	for _, f := range files {
		l, err := Listener(f)
		if err != nil {
			for _, prev := range out {
				prev.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// PacketConns returns a net.PacketConn for each of files, like Listeners
// for datagram sockets.
func PacketConns(files []*os.File) ([]net.PacketConn, error) {
	var out []net.PacketConn
	for _, f := range files {
		pc, err := PacketConn(f)
		if err != nil {
			for _, prev := range out {
				prev.Close()
			}
			return nil, err
		}
		out = append(out, pc)
	}
	return out, nil
}
