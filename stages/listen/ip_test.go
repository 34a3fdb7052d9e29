package listen

import (
	"net/netip"
	"strings"
	"testing"
)

// checkAgainstNetip parses s with ParseIP and with netip.ParseAddr (the
// reference; zones are refused here) and fails on any difference in
// acceptance, bytes, family or text form.
func checkAgainstNetip(t *testing.T, s string) {
	t.Helper()
	got, ok := ParseIP(s)
	want, err := netip.ParseAddr(s)
	wantOK := err == nil && want.Zone() == ""
	if ok != wantOK {
		t.Fatalf("ParseIP(%q) ok = %v, netip says %v (%v)", s, ok, wantOK, err)
	}
	if !ok {
		return
	}
	if got.Is4() != want.Is4() || got.Is6() != want.Is6() || got.Is4In6() != want.Is4In6() {
		t.Fatalf("ParseIP(%q): is4 %v is6 %v 4in6 %v, netip %v %v %v", s, got.Is4(), got.Is6(), got.Is4In6(), want.Is4(), want.Is6(), want.Is4In6())
	}
	if got.As16() != want.As16() {
		t.Fatalf("ParseIP(%q) = % x, netip % x", s, got.As16(), want.As16())
	}
	if got.String() != want.String() {
		t.Fatalf("ParseIP(%q).String() = %q, netip %q", s, got.String(), want.String())
	}
	if got.Unmap().Is4() != want.Unmap().Is4() || got.Unmap().String() != want.Unmap().String() {
		t.Fatalf("ParseIP(%q).Unmap() = %v, netip %v", s, got.Unmap(), want.Unmap())
	}
}

var ipCases = []string{
	"0.0.0.0", "127.0.0.1", "255.255.255.255", "1.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
	"1..2.3", ".1.2.3", "1.2.3.", "1.2.3.-4", "1.2.3.4 ", "", ".", ":", "::", ":::", "::1", "1::", "1::2",
	"::ffff:1.2.3.4", "::ffff:01.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4", "fe80::1%eth0", "FE80::ABCD", "2001:db8::1",
	"2001:db8:0:0:1:0:0:1", "2001:0db8:0000:0000:0000:0000:0000:0001", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
	"1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::3:4:5:6:7:8",
	"12345::", "1:2::3::4", "1:", ":1", "1:2:3:4:5:6:7:", "0:0:0:0:0:0:0:0", "0:0:1:0:0:1:0:0",
	"1:0:0:2:0:0:0:3", "::ffff:0:0", "::ffff:ffff:ffff", "0:0:0:0:0:ffff:102:304", "::1.2.3", "::1.2.3.4.5",
	"[::1]", "localhost", "g::1", "1.2.3.4:80", "::ffff:1.2.3.256",
}

func TestParseIPMatchesNetip(t *testing.T) {
	for _, s := range ipCases {
		checkAgainstNetip(t, s)
	}
	// Every IPv6 address with groups 0 or 1 in every position, in both
	// full and compressed text.
	for m := 0; m < 256; m++ {
		var g []string
		for i := 0; i < 8; i++ {
			g = append(g, []string{"0", "1"}[m>>i&1])
		}
		full := strings.Join(g, ":")
		checkAgainstNetip(t, full)
		a, _ := netip.ParseAddr(full)
		checkAgainstNetip(t, a.String())
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range ipCases {
		f.Add(s)
	}
	f.Fuzz(checkAgainstNetip)
}
