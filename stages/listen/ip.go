package listen

import "strconv"

// IP is a listener's host address: IPv4 or IPv6, without a zone.
//
// It is parsed here rather than with net/netip: netip's package variables
// start the unique package's cleanup goroutine in every process that
// links it, and every blivet program links this stage, so each start of a
// daemon (two per launch) paid for it. The tests check the parser and the
// text form against netip on every input they and the fuzzer try.
type IP struct {
	b     [16]byte // IPv4 in the last 4 bytes
	is4   bool
	valid bool
}

// IPv4 returns the IPv4 address a.b.c.d.
func IPv4(a, b, c, d byte) IP {
	ip := IP{is4: true, valid: true}
	ip.b[10], ip.b[11] = 0xff, 0xff
	ip.b[12], ip.b[13], ip.b[14], ip.b[15] = a, b, c, d
	return ip
}

// IPv6 returns the IPv6 address with bytes b.
func IPv6(b [16]byte) IP { return IP{b: b, valid: true} }

// IsValid reports whether ip is an address (the zero IP is not).
func (ip IP) IsValid() bool { return ip.valid }

// Is4 reports whether ip is an IPv4 address.
func (ip IP) Is4() bool { return ip.valid && ip.is4 }

// Is6 reports whether ip is an IPv6 address (IPv4-mapped ones included).
func (ip IP) Is6() bool { return ip.valid && !ip.is4 }

// Is4In6 reports whether ip is an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d).
func (ip IP) Is4In6() bool {
	return ip.Is6() && ip.b[10] == 0xff && ip.b[11] == 0xff && [10]byte(ip.b[:10]) == [10]byte{}
}

// Unmap returns the IPv4 address of an IPv4-mapped one, else ip.
func (ip IP) Unmap() IP {
	if ip.Is4In6() {
		ip.is4 = true
	}
	return ip
}

// As4 returns an IPv4 address's bytes.
func (ip IP) As4() [4]byte { return [4]byte(ip.b[12:]) }

// As16 returns the address as IPv6 bytes (IPv4 mapped).
func (ip IP) As16() [16]byte { return ip.b }

// String returns the address in its usual text form: dotted IPv4, or IPv6
// as RFC 5952 writes it (lower case, the longest run of two or more zero
// groups as "::", an IPv4-mapped address with a dotted tail). The zero IP
// is "invalid IP", as netip says.
func (ip IP) String() string {
	switch {
	case !ip.valid:
		return "invalid IP"
	case ip.is4:
		return dotted(nil, ip.b[12:])
	case ip.Is4In6():
		return dotted([]byte("::ffff:"), ip.b[12:])
	}
	// The longest run of zero groups, the first if two are as long.
	zs, zl := -1, 0
	for i := 0; i < 8; {
		j := i
		for j < 8 && ip.b[2*j] == 0 && ip.b[2*j+1] == 0 {
			j++
		}
		if j-i > zl && j-i >= 2 {
			zs, zl = i, j-i
		}
		i = max(j, i+1)
	}
	out := make([]byte, 0, 39)
	for i := 0; i < 8; i++ {
		if i == zs {
			out = append(out, ':', ':')
			i += zl - 1
			continue
		}
		if i > 0 && out[len(out)-1] != ':' {
			out = append(out, ':')
		}
		out = strconv.AppendUint(out, uint64(ip.b[2*i])<<8|uint64(ip.b[2*i+1]), 16)
	}
	return string(out)
}

func dotted(out, b []byte) string {
	for i, x := range b {
		if i > 0 {
			out = append(out, '.')
		}
		out = strconv.AppendUint(out, uint64(x), 10)
	}
	return string(out)
}

// ParseIP parses an IPv4 address in dotted decimal (no leading zeros) or
// an IPv6 address (with "::", a dotted IPv4 tail allowed), as netip's
// ParseAddr does; zones are refused.
func ParseIP(s string) (IP, bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ':':
			return parse6(s)
		case '.':
			var b [4]byte
			if !parse4(s, b[:]) {
				return IP{}, false
			}
			return IPv4(b[0], b[1], b[2], b[3]), true
		}
	}
	return IP{}, false
}

// parse4 parses dotted decimal s into the 4 bytes of out.
func parse4(s string, out []byte) bool {
	n, digits, field := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || field == 4 {
				return false
			}
			out[field] = byte(n)
			field++
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && n == 0) { // no leading zero
			return false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return false
		}
	}
	return field == 4
}

// parse6 parses an IPv6 address.
func parse6(s string) (IP, bool) {
	var b [16]byte
	ellipsis := -1 // the byte index where "::" stands
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if s == "" {
			return IPv6(b), true
		}
	}
	i := 0 // bytes filled
	for i < 16 {
		// A group: up to 4 hex digits.
		n, digits := 0, 0
		for digits < len(s) {
			c := s[digits]
			var v int
			switch {
			case c >= '0' && c <= '9':
				v = int(c - '0')
			case c >= 'a' && c <= 'f':
				v = int(c-'a') + 10
			case c >= 'A' && c <= 'F':
				v = int(c-'A') + 10
			default:
				v = -1
			}
			if v < 0 {
				break
			}
			n = n<<4 | v
			digits++
			if digits > 4 {
				return IP{}, false
			}
		}
		if digits == 0 {
			return IP{}, false
		}
		if digits < len(s) && s[digits] == '.' {
			// A dotted IPv4 tail: the last 4 bytes.
			if (ellipsis < 0 && i != 12) || i+4 > 16 || !parse4(s, b[i:i+4]) {
				return IP{}, false
			}
			i += 4
			s = ""
			break
		}
		b[i], b[i+1] = byte(n>>8), byte(n)
		i += 2
		s = s[digits:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return IP{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return IP{}, false // a second "::"
			}
			ellipsis = i
			s = s[1:]
			if s == "" {
				break
			}
		}
	}
	if s != "" {
		return IP{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return IP{}, false
		}
		n := 16 - i
		copy(b[ellipsis+n:], b[ellipsis:i])
		clear(b[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return IP{}, false // "::" must stand for at least one group
	}
	return IPv6(b), true
}
