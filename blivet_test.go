package blivet_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/blivet-go/blivet/blivettest"
)

// TestMain dispatches to a registered helper program when the test binary
// was re-executed as one (see package blivettest), and runs the tests
// otherwise.
//
// The real-process tests spend their time waiting for the processes they
// start, so up to four parallel tests run at once even with fewer CPUs,
// unless -test.parallel says otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("BLIVETTEST_HELPER") == "" { // not a helper: the flags are the test's
		flag.Parse()
		explicit := false
		flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
		if !explicit && runtime.GOMAXPROCS(0) < 4 {
			_ = flag.Set("test.parallel", "4")
		}
	}
	blivettest.Main(m)
}

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
