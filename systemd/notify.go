// Package systemd speaks the service manager protocols a daemon meets
// under systemd (and compatible managers): readiness notification
// (sd_notify(3)), the watchdog (sd_watchdog_enabled(3)) and socket
// activation (sd_listen_fds(3)). It has no dependency on libsystemd and
// does nothing when not running under a service manager.
//
// # Notification
//
// The manager passes the address of a datagram socket in NOTIFY_SOCKET: a
// file system path ("/run/systemd/notify") or an abstract address written
// with a leading "@". A message is one datagram of newline-separated
// VAR=VALUE assignments ("READY=1\nMAINPID=1234"). Not running under a
// service manager (NOTIFY_SOCKET unset) is not an error: Notify reports
// that nothing was sent.
//
// # Socket activation
//
// The manager opens the listening sockets and passes them as fds 3, 4, ...
// with LISTEN_FDS (how many), LISTEN_PID (the process they are addressed
// to) and optionally LISTEN_FDNAMES (colon-separated names). TakeActivation
// reads and unsets them; Files wraps the fds.
//
// # Watchdog
//
// With WatchdogSec= the manager sets WATCHDOG_USEC (and WATCHDOG_PID) and
// expects "WATCHDOG=1" more often than that; StartWatchdog sends it at half
// the interval.
//
// See https://www.freedesktop.org/software/systemd/man/sd_notify.html and
// https://www.freedesktop.org/software/systemd/man/sd_listen_fds.html.
package systemd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// Environment variables of the protocols.
const (
	EnvNotifySocket = "NOTIFY_SOCKET"
	EnvWatchdogUSec = "WATCHDOG_USEC"
	EnvWatchdogPID  = "WATCHDOG_PID"
	EnvListenPID    = "LISTEN_PID"
	EnvListenFDs    = "LISTEN_FDS"
	EnvListenNames  = "LISTEN_FDNAMES"
)

// Notification states (one assignment each; join several with "\n").
const (
	// Ready tells the manager start-up (or a reload) is finished.
	Ready = "READY=1"
	// Stopping tells the manager the service is shutting down.
	Stopping = "STOPPING=1"
	// Reloading tells the manager the service is reloading its
	// configuration; see ReloadingNow for the form Type=notify-reload needs.
	Reloading = "RELOADING=1"
	// WatchdogPing keeps the watchdog from firing.
	WatchdogPing = "WATCHDOG=1"
)

// stageName names the systemd protocols in errors.
const stageName = "systemd"

// ErrUnsupportedAddress is wrapped by the error for a NOTIFY_SOCKET that is
// neither a path nor an abstract address (such as "vsock:...").
var ErrUnsupportedAddress = errors.New("unsupported notification socket address")

// MainPID returns the assignment that names pid as the service's main
// process: "MAINPID=1234".
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status returns the assignment "STATUS=msg" that systemctl status shows.
// A message with a newline cannot be sent (it would start a new
// assignment) and gives an error with exit code 64.
func Status(msg string) (string, error) {
	if strings.ContainsAny(msg, "\n\x00") {
		return "", stages.Errorf(stageName, stages.ExitUsage, "status message %q contains a newline or NUL", msg)
	}
	return "STATUS=" + msg, nil
}

// ReloadingNow returns "RELOADING=1" with MONOTONIC_USEC set to the current
// CLOCK_MONOTONIC time in microseconds, as Type=notify-reload requires.
func ReloadingNow() string {
	return Reloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)
}

// sockaddr returns the datagram address of a NOTIFY_SOCKET value: a path
// (starting with "/") or an abstract address (starting with "@", which
// stands for the leading NUL byte).
func sockaddr(socket string) (*unix.SockaddrUnix, error) {
	if socket == "" || (socket[0] != '/' && socket[0] != '@') || len(socket) < 2 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedAddress, socket)
	}
	// x/sys/unix maps a leading "@" to the abstract namespace.
	return &unix.SockaddrUnix{Name: socket}, nil
}

// Send sends state as one datagram to the notification socket socket (a
// NOTIFY_SOCKET value: a path, or an abstract address written with a
// leading "@"). Errors, an unsupported address included (it wraps
// ErrUnsupportedAddress), have exit code 71.
func Send(socket, state string) error {
	addr, err := sockaddr(socket)
	if err != nil {
		return stages.Wrap(stageName, stages.ExitOSErr, err)
	}
	// Close-on-exec from the start (SOCK_CLOEXEC is not portable): hold
	// the fork lock so no concurrent exec inherits it.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return stages.Errorf(stageName, stages.ExitOSErr, "notifying the service manager at %s: %w", socket, os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	// A datagram to a full queue would block; the manager reads quickly,
	// but never hang the daemon on it.
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	for {
		err = unix.Sendto(fd, []byte(state), 0, addr)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return stages.Errorf(stageName, stages.ExitOSErr, "notifying the service manager at %s: %w", socket, os.NewSyscallError("sendto", err))
	}
	return nil
}

// Notify sends state to the socket named by NOTIFY_SOCKET. It returns
// false and no error when the variable is unset (not running under a
// service manager), true when the message was sent, and false with an
// error (exit code 71) when sending failed. It leaves the variable set;
// see the notify stage for who removes it.
func Notify(state string) (sent bool, err error) {
	socket := os.Getenv(EnvNotifySocket)
	if socket == "" {
		return false, nil
	}
	if err := Send(socket, state); err != nil {
		return false, err
	}
	return true, nil
}
