package blivet

import (
	"fmt"

	"github.com/blivet-go/blivet/stages"
	"github.com/blivet-go/blivet/stages/listen"
)

// WithListener gives the daemon a named listening socket: network is
// "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixpacket" or
// "unixgram"; address is "host:port" with an IP address, "localhost" or
// nothing as the host and a numeric port (":80" is every address), or a
// socket path ("@name" for a Linux abstract socket). The daemon gets it
// with ctx.Files(name), and package sockets turns that into a
// net.Listener (net.PacketConn for udp and unixgram).
//
// The socket comes from the first source that has it: the previous
// generation during an upgrade (Context.Upgrade), then the service
// manager's socket activation (an fd whose LISTEN_FDNAMES name is name),
// and otherwise the "listen" stage binds it in the daemon, before the
// privilege drop (so port 80 works with WithUser). A bind failure is
// reported to the launcher, naming the listener, with exit code 77 when
// the system refuses permission and 71 otherwise. Options are checked
// before any fork (64 for an unknown network, a malformed address, an
// empty, repeated or ':'-containing name). Repeated use accumulates.
//
// A stale unix socket file (nobody accepts on it) is removed before
// binding; anything else at the path is an error.
func WithListener(name, network, address string) Option {
	return option(func(c *config) {
		c.Listeners = append(c.Listeners, stages.ListenerSpec{Name: name, Network: network, Address: address})
	}, "WithListener(%q, %q, %q)", name, network, address)
}

// validateListeners checks WithListener's values.
func validateListeners(specs []stages.ListenerSpec) error {
	seen := map[string]bool{}
	for _, l := range specs {
		desc := fmt.Sprintf("WithListener(%q, %q, %q)", l.Name, l.Network, l.Address)
		if err := listen.CheckName(l.Name); err != nil {
			return usageErr("%s: %v", desc, err)
		}
		if seen[l.Name] {
			return usageErr("%s: the name %q is used twice", desc, l.Name)
		}
		seen[l.Name] = true
		if _, err := listen.Parse(l.Network, l.Address); err != nil {
			return usageErr("%s: %v", desc, err)
		}
	}
	return nil
}

// withListenStage inserts the listen stage, when listeners are configured,
// before privdrop (or notify, or at the end).
func withListenStage(list []Stage, c *config) []Stage {
	if len(c.Listeners) == 0 {
		return list
	}
	at := stageIndex(list, "privdrop")
	if at < 0 {
		at = stageIndex(list, "notify")
	}
	if at < 0 {
		at = len(list)
	}
	return append(list[:at], append([]Stage{listen.New()}, list[at:]...)...)
}

func stageIndex(list []Stage, name string) int {
	for i, st := range list {
		if st.Name() == name {
			return i
		}
	}
	return -1
}
