package blivet_test

import (
	"fmt"
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

// appError is an application error carrying its own exit code.
type appError struct{ code int }

func (e *appError) Error() string { return fmt.Sprintf("application error %d", e.code) }
func (e *appError) ExitCode() int { return e.code }
