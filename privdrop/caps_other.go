//go:build !linux

package privdrop

import (
	"fmt"
	"runtime"
)

// capsSupported: ambient capabilities are Linux's.
func capsSupported() error {
	return fmt.Errorf("capabilities are Linux-only, and this is %s", runtime.GOOS)
}
