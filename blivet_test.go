package blivet_test

import (
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
)

// TestMain dispatches to a registered helper program when the test binary
// was re-executed as one (see package blivettest), and runs the tests
// otherwise.
func TestMain(m *testing.M) { blivettest.Main(m) }

// sleepForever blocks without tripping the runtime's deadlock detector.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
