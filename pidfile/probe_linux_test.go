package pidfile

import "testing"

func TestScanLocks(t *testing.T) {
	data := []byte(`1: POSIX  ADVISORY  WRITE 11 fd:00:500 0 EOF
2: FLOCK  ADVISORY  WRITE 22 fd:00:501 0 EOF
2: -> FLOCK  ADVISORY  WRITE 23 fd:00:500 0 EOF
3: OFDLCK ADVISORY  WRITE -1 fd:00:500 0 EOF
4: FLOCK  ADVISORY  READ  44 103:1a:500 0 EOF
5: FLOCK  ADVISORY  WRITE 0 08:02:600 0 EOF
`)
	for _, tc := range []struct {
		key  fileKey
		want Status
	}{
		{fileKey{0xfd, 0, 500}, Status{}},                        // POSIX, waiter and OFD only
		{fileKey{0xfd, 0, 501}, Status{Held: true, PID: 22}},     // plain flock
		{fileKey{0x103, 0x1a, 500}, Status{Held: true, PID: 44}}, // shared lock, hex device
		{fileKey{8, 2, 600}, Status{Held: true}},                 // holder not visible
		{fileKey{8, 2, 601}, Status{}},
	} {
		if got := scanLocks(data, []fileKey{{1, 1, 1}, tc.key}); got != tc.want {
			t.Errorf("%+v: %+v, want %+v", tc.key, got, tc.want)
		}
	}
}
