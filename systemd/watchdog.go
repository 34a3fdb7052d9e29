package systemd

import (
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/blivet-go/blivet/stages"
)

// WatchdogEnabled returns the watchdog timeout the service manager set for
// this process (WATCHDOG_USEC), or 0 when there is none or it is addressed
// to another process (WATCHDOG_PID names another PID). An absent
// WATCHDOG_PID means this process. A malformed value is an error with exit
// code 64.
func WatchdogEnabled() (time.Duration, error) {
	v, ok := os.LookupEnv(EnvWatchdogUSec)
	if !ok {
		return 0, nil
	}
	usec, err := strconv.ParseUint(v, 10, 63)
	if err != nil || usec == 0 || usec > uint64(1<<63-1)/1000 {
		return 0, stages.Errorf(stageName, stages.ExitUsage, "%s=%q is not a positive number of microseconds", EnvWatchdogUSec, v)
	}
	if p, ok := os.LookupEnv(EnvWatchdogPID); ok {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return 0, stages.Errorf(stageName, stages.ExitUsage, "%s=%q is not a PID", EnvWatchdogPID, p)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// Watchdog sends "WATCHDOG=1" periodically from its own goroutine until
// stopped.
type Watchdog struct {
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	interval time.Duration

	mu   sync.Mutex
	err  error
	sent int
}

// StartWatchdog pings the notification socket socket at once and then
// every timeout/2, until Stop. A failed ping does not stop it (the
// manager's watchdog decides); Stop returns the first failure.
func StartWatchdog(socket string, timeout time.Duration) *Watchdog {
	w := &Watchdog{stop: make(chan struct{}), done: make(chan struct{}), interval: timeout / 2}
	if w.interval <= 0 {
		w.interval = time.Microsecond
	}
	go w.loop(socket)
	return w
}

func (w *Watchdog) loop(socket string) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		err := Send(socket, WatchdogPing)
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		if err == nil {
			w.sent++
		}
		w.mu.Unlock()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// Interval returns the time between pings (half the timeout).
func (w *Watchdog) Interval() time.Duration { return w.interval }

// Sent returns how many pings were sent successfully so far.
func (w *Watchdog) Sent() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent
}

// Stop stops the pings and waits for the goroutine to end. It returns the
// first send failure, if any. Calling it again is a no-op.
func (w *Watchdog) Stop() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}
