//go:build !(linux && (amd64 || arm64))

package rawfork

// Supported reports whether DoubleFork works here.
func Supported() bool { return false }

// DoubleFork is not available on this platform.
func DoubleFork(path string, argv, env []string, files []int, pipe, pipeAt int, closeFrom bool, resetSignals bool) (int, error) {
	return 0, ErrUnsupported
}

// DoubleForkExec is not available on this platform.
func DoubleForkExec(pr *Program, files []int, pipe, pipeAt int) (int, error) {
	return 0, ErrUnsupported
}
