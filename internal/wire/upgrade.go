package wire

import (
	"fmt"
	"os"
	"strconv"
)

// UpgradeEnvKey is the environment variable that carries an upgrade's
// marker from a daemon to its next generation (blivet's Context.Upgrade).
const UpgradeEnvKey = "BLIVET_UPGRADE"

// Upgrade is what a daemon hands to the next generation of an upgrade.
type Upgrade struct {
	Parent      int    // the previous generation's PID
	FD          int    // readiness pipe write end
	Lock        int    // locked lockfile, -1 when none
	Dropped     bool   // the previous generation had dropped its privileges
	Notify      string // NOTIFY_SOCKET of the previous generation
	ListenFDs   int    // socket-activation fds at 3..
	ListenNames []string
	Sockets     []UpgradeSocket
}

// UpgradeSocket is one named socket handed over, at fd FD.
type UpgradeSocket struct {
	Name, Network, Address string
	FD                     int
}

// Encode renders u as the value of UpgradeEnvKey.
func (u Upgrade) Encode() string {
	m := Marker{Role: "upgrade", Next: u.Parent, FD: u.FD, PID: u.Parent, ListenFDs: u.ListenFDs, ListenNames: u.ListenNames,
		Extra: map[string]string{"lock": strconv.Itoa(u.Lock), "dropped": strconv.FormatBool(u.Dropped), "notify": u.Notify,
			"sockets": strconv.Itoa(len(u.Sockets))}}
	for i, s := range u.Sockets {
		k := "sock" + strconv.Itoa(i) + "."
		m.Extra[k+"name"], m.Extra[k+"net"], m.Extra[k+"addr"], m.Extra[k+"fd"] = s.Name, s.Network, s.Address, strconv.Itoa(s.FD)
	}
	return m.encode()
}

// DecodeUpgrade parses an upgrade marker.
func DecodeUpgrade(v string) (Upgrade, error) {
	m, err := decodeMarker(v, true)
	if err != nil {
		return Upgrade{}, err
	}
	bad := func(format string, args ...any) (Upgrade, error) {
		return Upgrade{}, fmt.Errorf("%w: upgrade: %s", ErrForged, fmt.Sprintf(format, args...))
	}
	u := Upgrade{Parent: m.PID, FD: m.FD, Notify: m.Extra["notify"], ListenFDs: m.ListenFDs, ListenNames: m.ListenNames}
	var e1, e2, e3 error
	u.Lock, e1 = strconv.Atoi(m.Extra["lock"])
	u.Dropped, e2 = strconv.ParseBool(m.Extra["dropped"])
	n, e3 := strconv.Atoi(m.Extra["sockets"])
	if e1 != nil || e2 != nil || e3 != nil || n < 0 || n > 1<<12 || u.FD < 3 || u.Parent <= 1 {
		return bad("missing or invalid fields in %q", v)
	}
	for i := 0; i < n; i++ {
		k := "sock" + strconv.Itoa(i) + "."
		fd, err := strconv.Atoi(m.Extra[k+"fd"])
		if err != nil || fd < 0 {
			return bad("socket %d: fd %q", i, m.Extra[k+"fd"])
		}
		u.Sockets = append(u.Sockets, UpgradeSocket{Name: m.Extra[k+"name"], Network: m.Extra[k+"net"], Address: m.Extra[k+"addr"], FD: fd})
	}
	return u, nil
}

// TakeUpgrade reads the upgrade marker from the environment and removes it.
// ok is false when there is none.
func TakeUpgrade() (u Upgrade, ok bool, err error) {
	v, ok := os.LookupEnv(UpgradeEnvKey)
	if !ok {
		return Upgrade{}, false, nil
	}
	os.Unsetenv(UpgradeEnvKey)
	u, err = DecodeUpgrade(v)
	return u, true, err
}
