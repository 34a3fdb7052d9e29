package sockets_test

import (
	"fmt"
	"log"
	"net"

	"github.com/blivet-go/blivet"
	"github.com/blivet-go/blivet/sockets"
)

// Listener turns an activation fd into a net.Listener. Here a socket the
// program opened itself stands in for one systemd passed.
func ExampleListener() {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tcp.Close()
	f, _ := tcp.(*net.TCPListener).File() // as systemd would pass it: a listening fd
	defer f.Close()

	l, err := sockets.Listener(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	fmt.Println(l.Addr().String() == tcp.Addr().String())

	udp, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer udp.Close()
	uf, _ := udp.(*net.UDPConn).File()
	defer uf.Close()
	_, err = sockets.Listener(uf)
	fmt.Println(err != nil) // not a listening stream socket (71)
	// Output:
	// true
	// true
}

// PacketConn is Listener's counterpart for datagram sockets
// (ListenDatagram=).
func ExamplePacketConn() {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer udp.Close()
	f, _ := udp.(*net.UDPConn).File()
	defer f.Close()

	pc, err := sockets.PacketConn(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	fmt.Println(pc.LocalAddr().String() == udp.LocalAddr().String())
	// Output: true
}

// A service for Type=notify (with an optional .socket unit): serve the
// activation sockets named "web", or listen on our own when not
// socket-activated.
func ExampleListeners() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	ls, err := sockets.Listeners(ctx.Files("web"))
	if err != nil { // not a listening socket (71)
		ctx.ReportError(err)
	}
	if len(ls) == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:8080")
		if err != nil {
			ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
		}
		ls = append(ls, l)
	}
	if err := ctx.NotifyParent(); err != nil {
		ctx.ReportError(err)
	}
	for {
		c, err := ls[0].Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// A DNS-like service activated by a ListenDatagram= socket named "dns".
func ExamplePacketConns() {
	ctx, err := blivet.Daemonize(blivet.WithForeground(true))
	if err != nil {
		log.Fatal(err)
	}
	defer ctx.Close()
	pcs, err := sockets.PacketConns(ctx.Files("dns"))
	if err != nil { // not a datagram socket (71)
		ctx.ReportError(err)
	}
	if len(pcs) == 0 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:5353")
		if err != nil {
			ctx.ReportError(blivet.WrapError("listen", blivet.ExitOSErr, err))
		}
		pcs = append(pcs, pc)
	}
	_ = ctx.NotifyParent()
	buf := make([]byte, 512)
	n, addr, err := pcs[0].ReadFrom(buf)
	if err == nil {
		_, _ = pcs[0].WriteTo(buf[:n], addr)
	}
}
