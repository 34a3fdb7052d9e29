package stages

import (
	"errors"
	"fmt"
)

// Exit codes, from sysexits.h. Every failure blivet reports carries one of
// them; the launcher exits with it.
const (
	ExitOK          = 0  // the daemon said ready (CLI: the program was exec'd)
	ExitUsage       = 64 // EX_USAGE: invalid configuration, detected before any fork
	ExitNoInput     = 66 // EX_NOINPUT: CLI program missing or not executable
	ExitNoUser      = 67 // EX_NOUSER: user or group not found
	ExitUnavailable = 69 // EX_UNAVAILABLE: another instance holds the lock
	ExitSoftware    = 70 // EX_SOFTWARE: died before ready, ready refused, untyped error
	ExitOSErr       = 71 // EX_OSERR: re-exec, setsid, chdir, signals, exec, the readiness pipe
	ExitCantCreate  = 73 // EX_CANTCREAT: pidfile, lockfile, output files, chown
	ExitTempFail    = 75 // EX_TEMPFAIL: ready timeout
	ExitNoPerm      = 77 // EX_NOPERM: privileges: not root, or the drop failed
)

var codeNames = map[int]string{
	ExitUsage:       "invalid configuration",
	ExitNoInput:     "program missing or not executable",
	ExitNoUser:      "user or group not found",
	ExitUnavailable: "lock held by another instance",
	ExitSoftware:    "internal software error",
	ExitOSErr:       "operating system error",
	ExitCantCreate:  "cannot create or write file",
	ExitTempFail:    "ready timeout",
	ExitNoPerm:      "permission denied",
}

// Error is the error every blivet failure is reported as. It names the
// stage (or hook, or option) that failed, wraps the underlying error, and
// carries the exit code the launcher ends with.
//
// The package-level sentinels (ErrUsage, ErrLocked, ...) match any *Error
// with the same code, so callers can write errors.Is(err, stages.ErrLocked).
type Error struct {
	// Stage names where the failure happened: a stage name, "hook before
	// privdrop (main.go:42)", "config", "app", ...
	Stage string
	// Code is the exit code, one of the Exit* constants or an application
	// code in 1..255.
	Code int
	// Err is the underlying error (a *os.PathError, a syscall.Errno, ...).
	Err error
	// Fatal marks a failure the process must not survive (a half-done
	// privilege drop): the pipeline reports it and exits even when it was
	// run from a Context method.
	Fatal bool
}

// Errorf returns an *Error for stage with code, formatting its message like
// fmt.Errorf (so %w wraps).
func Errorf(stage string, code int, format string, args ...any) *Error {
	return &Error{Stage: stage, Code: code, Err: fmt.Errorf(format, args...)}
}

// Wrap returns an *Error for stage with code around err. If err is nil it
// returns nil. If err already is an *Error it is returned as is, so the
// innermost (most precise) stage and code win.
func Wrap(stage string, code int, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Stage: stage, Code: code, Err: err}
}

func (e *Error) Error() string {
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
	} else if name, ok := codeNames[e.Code]; ok {
		msg = name
	} else {
		msg = fmt.Sprintf("exit code %d", e.Code)
	}
	if e.Stage == "" {
		return msg
	}
	return e.Stage + ": " + msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit code the launcher ends with for this error.
func (e *Error) ExitCode() int { return e.Code }

// Is reports whether target is a sentinel *Error (no stage, no wrapped
// error) with the same exit code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Stage == "" && t.Err == nil && t.Code == e.Code && t != e
}

// Sentinels, one per exit code, for errors.Is.
var (
	ErrUsage      = &Error{Code: ExitUsage}
	ErrNoInput    = &Error{Code: ExitNoInput}
	ErrNoUser     = &Error{Code: ExitNoUser}
	ErrLocked     = &Error{Code: ExitUnavailable}
	ErrSoftware   = &Error{Code: ExitSoftware}
	ErrOS         = &Error{Code: ExitOSErr}
	ErrCantCreate = &Error{Code: ExitCantCreate}
	ErrTimeout    = &Error{Code: ExitTempFail}
	ErrNoPerm     = &Error{Code: ExitNoPerm}
)

// ExitCodeOf returns the exit code for err: 0 for nil, the code of any
// error in its chain with an ExitCode() int method when it is in 1..255,
// and ExitSoftware (70) otherwise.
func ExitCodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		if code := c.ExitCode(); code >= 1 && code <= 255 {
			return code
		}
	}
	return ExitSoftware
}
