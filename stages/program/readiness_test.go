//go:build linux

package program

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// notifyConn dials the notification socket named by NOTIFY_SOCKET.
func notifyConn(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestNotifyReadyQueuedAtEnd: READY=1 still queued (behind STATUS=
// messages) when the program's end is known counts as ready; without
// READY=1 the end is the outcome.
func TestNotifyReadyQueuedAtEnd(t *testing.T) {
	for _, ready := range []bool{true, false} {
		t.Run(fmt.Sprint("ready=", ready), func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", "/run/prev.sock")
			wait, err := Readiness{Notify: true}.listen()
			if err != nil {
				t.Fatal(err)
			}
			c := notifyConn(t, os.Getenv("NOTIFY_SOCKET"))
			sent := make(chan error, 1)
			go func() {
				for i := 0; i < 20; i++ {
					if _, err := fmt.Fprintf(c, "STATUS=%d", i); err != nil {
						sent <- err
						return
					}
				}
				if ready {
					_, err := c.Write([]byte("READY=1"))
					sent <- err
					return
				}
				sent <- nil
			}()
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			ended := make(chan struct{})
			close(ended)
			err = wait(0, time.Time{}, ended)
			switch {
			case ready && err != nil:
				t.Errorf("READY=1 queued at the end: %v, want ready", err)
			case !ready && err != errEnded:
				t.Errorf("no READY=1: %v, want the end", err)
			}
			if got := os.Getenv("NOTIFY_SOCKET"); got != "/run/prev.sock" {
				t.Errorf("NOTIFY_SOCKET after the wait %q, want the launcher's own back", got)
			}
		})
	}
}

// TestNotifyLaterMessagesNeverBlock: once the wait is over the socket is
// gone: a program's later messages fail at once, never block (the queue
// of a socket nobody reads holds only net.unix.max_dgram_qlen of them).
func TestNotifyLaterMessagesNeverBlock(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	wait, err := Readiness{Notify: true}.listen()
	if err != nil {
		t.Fatal(err)
	}
	c := notifyConn(t, os.Getenv("NOTIFY_SOCKET"))
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	if err := wait(0, time.Time{}, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 1000; i++ {
		_, err := fmt.Fprintf(c, "STATUS=later %d", i)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("message %d after ready blocked", i)
		}
		if err != nil && i == 0 {
			// ENOTCONN on this connected socket, ECONNREFUSED for
			// sendto(2) as sd_notify(3) does it.
			t.Logf("after ready: %v", err)
		}
	}
}
