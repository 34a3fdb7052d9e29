//go:build !(linux && (amd64 || arm64))

package rawfork

import (
	"os"

	"github.com/blivet-go/blivet/stages"
)

// Supported reports whether Start works here.
func Supported() bool { return false }

// Start is not available on this platform.
func Start(p *stages.Plan, pipe *os.File, o Options) (int, error) { return 0, ErrUnsupported }
