// Package wire is the one encoding of everything blivet's process
// generations tell each other: the handover marker a parent puts in its
// child's environment, and the records a daemon writes on the readiness
// pipe to its launcher.
//
// Both are versioned text, one line each. Every string travels quoted
// (strconv.Quote), so any byte of a path, a stage name or a message,
// newlines and backslashes included, comes out as it went in. An error
// record keeps the error's stage and exit code, and the typed errors
// callers test for with errors.As come back as themselves in the
// launcher: *pidfile.ConflictError (with the holder's PID), and the errno
// of an *os.PathError or *os.SyscallError.
package wire

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/blivet-go/blivet/internal/sys"
	"github.com/blivet-go/blivet/pidfile"
	"github.com/blivet-go/blivet/stages"
	"golang.org/x/sys/unix"
)

// Version starts every marker and record.
const Version = "blivet2"

// EnvKey is the environment variable that carries the marker.
const EnvKey = "BLIVET_HANDOVER"

// ErrForged is wrapped by every error about a marker that cannot be a
// genuine handover.
var ErrForged = errors.New("invalid " + EnvKey + " handover (was the program started by hand with a copied environment?)")

// ExeID identifies an executable file by device and inode.
type ExeID = sys.ExeID

// Marker is what a parent generation hands to its child.
type Marker struct {
	Role     string // "intermediate", "daemon" or "foreground"
	Next     int    // pipeline step to resume at
	FD       int    // readiness pipe write end; -1 when none
	Pipeline string // fingerprint of the pipeline
	Exe      ExeID  // identity of the executable
	PID      int    // foreground re-exec in place: the PID that must read it
	// Name is the process name (/proc/PID/comm) the program had in the
	// launcher; a generation started through /proc/self/exe takes it back.
	Name string
	// ListenFDs is how many socket-activation fds (from 3) the launcher
	// took over; ListenNames holds their names, one each, or none.
	ListenFDs   int
	ListenNames []string
	// Keep lists fds (beyond socket activation) every generation keeps at
	// their numbers.
	Keep []int
	// Extra carries fields added by features (upgrade, listeners), as
	// key and quoted value pairs.
	Extra map[string]string
}

// NewMarker returns the marker for the next generation of s: it plays role,
// resumes at step next with the readiness pipe at fd (-1: none), and runs
// the executable exe through path (see internal/sys.Executable). It
// carries the pipeline's fingerprint, the socket-activation fds, the fds
// every generation keeps, and, when path is /proc/self/exe (which the
// kernel names "exe"), this process's name for the next to take back.
func NewMarker(s *stages.State, role string, next, fd int, path string, exe ExeID) Marker {
	keep := slices.Clone(s.HandedFDs)
	for n := range s.PassFDs {
		keep = append(keep, n)
	}
	slices.Sort(keep)
	m := Marker{Role: role, Next: next, FD: fd, Pipeline: s.Fingerprint, Exe: exe, ListenFDs: s.ListenFDs,
		ListenNames: s.ListenNames, Keep: slices.Compact(keep)}
	if path == sys.SelfExe {
		m.Name = sys.ProcessName()
	}
	return m
}

// Encode renders m as the value of EnvKey.
func (m Marker) Encode() string { return m.encode() }

func (m Marker) encode() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s marker role=%s next=%d fd=%d pipeline=%s exe=%d:%d pid=%d listen=%d",
		Version, token(m.Role), m.Next, m.FD, token(m.Pipeline), m.Exe.Dev, m.Exe.Ino, m.PID, m.ListenFDs)
	if len(m.Keep) > 0 {
		ks := make([]string, len(m.Keep))
		for i, k := range m.Keep {
			ks[i] = strconv.Itoa(k)
		}
		fmt.Fprintf(&b, " keep=%s", strings.Join(ks, ","))
	}
	if m.Name != "" {
		fmt.Fprintf(&b, " comm=%s", strconv.Quote(m.Name))
	}
	for i, n := range m.ListenNames {
		fmt.Fprintf(&b, " name%d=%s", i, strconv.Quote(n))
	}
	for k, v := range m.Extra {
		fmt.Fprintf(&b, " x.%s=%s", k, strconv.Quote(v))
	}
	return b.String()
}

// token writes s bare when it is a plain word (a role, a fingerprint), so
// the marker stays readable, and quoted otherwise.
func token(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// DecodeMarker parses a marker value.
func DecodeMarker(v string) (Marker, error) { return decodeMarker(v, false) }

func decodeMarker(v string, upgrade bool) (Marker, error) {
	f, ok := fields(v, "marker")
	if !ok {
		return Marker{}, fmt.Errorf("%w: not a %s marker: %q", ErrForged, Version, v)
	}
	m := Marker{FD: -1}
	var err error
	num := func(k string) int {
		n, e := strconv.Atoi(f[k])
		if e != nil && err == nil {
			err = fmt.Errorf("%w: field %s: %q", ErrForged, k, f[k])
		}
		return n
	}
	for _, k := range []string{"role", "next", "fd", "pipeline", "exe", "pid", "listen"} {
		if _, ok := f[k]; !ok {
			return Marker{}, fmt.Errorf("%w: no field %s", ErrForged, k)
		}
	}
	m.Role, m.Pipeline, m.Name = f["role"], f["pipeline"], f["comm"]
	if k := f["keep"]; k != "" {
		for _, s := range strings.Split(k, ",") {
			n, e := strconv.Atoi(s)
			if e != nil || n < 3 {
				return Marker{}, fmt.Errorf("%w: field keep: %q", ErrForged, k)
			}
			m.Keep = append(m.Keep, n)
		}
	}
	m.Next, m.FD, m.PID = num("next"), num("fd"), num("pid")
	n := num("listen")
	d, i, _ := strings.Cut(f["exe"], ":")
	dev, e1 := strconv.ParseUint(d, 10, 64)
	ino, e2 := strconv.ParseUint(i, 10, 64)
	if e1 != nil || e2 != nil {
		return Marker{}, fmt.Errorf("%w: field exe: %q", ErrForged, f["exe"])
	}
	m.Exe = ExeID{Dev: dev, Ino: ino}
	if err != nil {
		return Marker{}, err
	}
	if n < 0 || n > 1<<16 {
		return Marker{}, fmt.Errorf("%w: %d socket-activation fds", ErrForged, n)
	}
	m.ListenFDs = n
	for j := 0; j < n; j++ {
		name, ok := f["name"+strconv.Itoa(j)]
		if !ok {
			break
		}
		m.ListenNames = append(m.ListenNames, name)
	}
	if len(m.ListenNames) != 0 && len(m.ListenNames) != n {
		return Marker{}, fmt.Errorf("%w: %d socket-activation fds with %d names", ErrForged, n, len(m.ListenNames))
	}
	if _, extra := f["name"+strconv.Itoa(n)]; extra {
		return Marker{}, fmt.Errorf("%w: more socket-activation names than fds", ErrForged)
	}
	for k, val := range f {
		if x, ok := strings.CutPrefix(k, "x."); ok {
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[x] = val
		}
	}
	if upgrade != (m.Role == "upgrade") {
		return Marker{}, fmt.Errorf("%w: role %q in a %s", ErrForged, m.Role, map[bool]string{true: UpgradeEnvKey, false: EnvKey}[upgrade])
	}
	switch m.Role {
	case "upgrade":
	case "intermediate", "daemon":
		if m.FD < 3 {
			return Marker{}, fmt.Errorf("%w: no readiness pipe", ErrForged)
		}
	case "foreground":
	default:
		return Marker{}, fmt.Errorf("%w: unknown role %q", ErrForged, m.Role)
	}
	return m, nil
}

// Take reads the marker from the environment and removes it, so nothing
// this process starts inherits it. ok is false when there is none.
func Take() (m Marker, ok bool, err error) {
	v, ok := os.LookupEnv(EnvKey)
	if !ok {
		return Marker{}, false, nil
	}
	os.Unsetenv(EnvKey)
	m, err = DecodeMarker(v)
	return m, true, err
}

// Environ returns env without any marker, plus the marker m when m is not nil.
func Environ(env []string, m *Marker) []string {
	out := stages.UnsetEnv(slices.Clone(env), EnvKey)
	if m != nil {
		out = append(out, EnvKey+"="+m.Encode())
	}
	return out
}

// Kind tells what a record says.
type Kind int

// Record kinds.
const (
	KindPID   Kind = iota + 1 // the daemon's PID
	KindReady                 // the daemon is up
	KindExec                  // exec pending: the next end of file means the program runs
	KindError                 // a failure, with stage and exit code
	KindRaw                   // a failure of a plan step in a process without a Go runtime
	KindEnded                 // how the daemon ended, from its waiting parent
)

// Record is one message on the readiness pipe.
type Record struct {
	Kind  Kind
	PID   int           // KindPID
	Err   *stages.Error // KindError
	Step  int           // KindRaw: the pipeline step that failed
	Errno syscall.Errno // KindRaw
	// Status is the daemon's wait status (KindEnded).
	Status syscall.WaitStatus
}

// Encode renders r as one line, newline included.
func Encode(r Record) []byte {
	var b strings.Builder
	b.WriteString(Version)
	switch r.Kind {
	case KindPID:
		fmt.Fprintf(&b, " pid %d", r.PID)
	case KindReady:
		b.WriteString(" ready")
	case KindExec:
		b.WriteString(" exec")
	case KindEnded:
		fmt.Fprintf(&b, " ended status=%d", uint32(r.Status))
	case KindRaw:
		var buf [48]byte
		b.Write(AppendRawPrefix(buf[:0], r.Step))
		b.WriteString(strconv.Itoa(int(r.Errno)))
	case KindError:
		encodeError(&b, r.Err)
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

// AppendRawPrefix appends what a raw child writes before the decimal
// errno and a newline to report that pipeline step step failed.
func AppendRawPrefix(b []byte, step int) []byte {
	b = append(b, " raw step="...)
	b = strconv.AppendInt(b, int64(step), 10)
	return append(b, " errno="...)
}

// AppendRawRecordPrefix appends AppendRawPrefix's text after the
// version: a whole record's start.
func AppendRawRecordPrefix(b []byte, step int) []byte {
	return AppendRawPrefix(append(b, Version...), step)
}

func encodeError(b *strings.Builder, e *stages.Error) {
	if e == nil {
		e = stages.Errorf("", stages.ExitSoftware, "unknown error")
	}
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
	}
	fmt.Fprintf(b, " error code=%d stage=%s msg=%s", e.Code, strconv.Quote(e.Stage), strconv.Quote(msg))
	if e.Fatal {
		b.WriteString(" fatal=1")
	}
	var c *pidfile.ConflictError
	var pe *os.PathError
	var se *os.SyscallError
	var errno syscall.Errno
	switch {
	case errors.As(e.Err, &c):
		fmt.Fprintf(b, " conflict=%s holder=%d fromfile=%t", strconv.Quote(c.Path), c.PID, c.FromFile)
	case errors.As(e.Err, &pe):
		fmt.Fprintf(b, " op=%s path=%s", strconv.Quote(pe.Op), strconv.Quote(pe.Path))
		if errors.As(pe.Err, &errno) {
			fmt.Fprintf(b, " errno=%d", int(errno))
		}
	case errors.As(e.Err, &se):
		fmt.Fprintf(b, " syscall=%s", strconv.Quote(se.Syscall))
		if errors.As(se.Err, &errno) {
			fmt.Fprintf(b, " errno=%d", int(errno))
		}
	case errors.As(e.Err, &errno):
		fmt.Fprintf(b, " errno=%d", int(errno))
	}
}

// Decode parses one line (without its newline). ok is false for anything
// that is not a record (crash output, for instance).
func Decode(line string) (r Record, ok bool) {
	rest, ok := strings.CutPrefix(line, Version+" ")
	if !ok {
		return Record{}, false
	}
	kind, _, _ := strings.Cut(rest, " ")
	switch kind {
	case "ready":
		return Record{Kind: KindReady}, rest == "ready"
	case "exec":
		return Record{Kind: KindExec}, rest == "exec"
	case "pid":
		n, err := strconv.Atoi(strings.TrimPrefix(rest, "pid "))
		return Record{Kind: KindPID, PID: n}, err == nil && n > 0
	}
	f, ok := fields(line, kind)
	if !ok {
		return Record{}, false
	}
	switch kind {
	case "ended":
		st, err := strconv.ParseUint(f["status"], 10, 32)
		return Record{Kind: KindEnded, Status: syscall.WaitStatus(st)}, err == nil
	case "raw":
		step, err1 := strconv.Atoi(f["step"])
		errno, err2 := strconv.Atoi(f["errno"])
		return Record{Kind: KindRaw, Step: step, Errno: syscall.Errno(errno)}, err1 == nil && err2 == nil
	case "error":
		code, err := strconv.Atoi(f["code"])
		if err != nil || code < 1 || code > 255 {
			code = stages.ExitSoftware
		}
		e := &stages.Error{Stage: f["stage"], Code: code, Fatal: f["fatal"] == "1", Err: &remoteError{msg: f["msg"], leaf: leafOf(f)}}
		return Record{Kind: KindError, Err: e}, true
	}
	return Record{}, false
}

// leafOf rebuilds the typed error an error record names.
func leafOf(f map[string]string) error {
	var errno error
	if n, err := strconv.Atoi(f["errno"]); err == nil {
		errno = syscall.Errno(n)
	}
	switch {
	case f["conflict"] != "" || f["holder"] != "":
		pid, _ := strconv.Atoi(f["holder"])
		return &pidfile.ConflictError{Path: f["conflict"], PID: pid, FromFile: f["fromfile"] == "true"}
	case f["op"] != "" || f["path"] != "":
		return &fs.PathError{Op: f["op"], Path: f["path"], Err: errno}
	case f["syscall"] != "":
		return os.NewSyscallError(f["syscall"], errno)
	}
	return errno
}

// remoteError is an error as the daemon reported it: its message, exactly,
// around the typed error it carried.
type remoteError struct {
	msg  string
	leaf error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.leaf }

// fields splits "Version kind k=v k=v ..." where each v is a bare token or
// a quoted string. ok is false when the line is malformed.
func fields(line, kind string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(line, Version+" "+kind)
	if !ok {
		return nil, false
	}
	f := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return f, true
		}
		k, v, ok := strings.Cut(rest, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil, false
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return nil, false
			}
			u, err := strconv.Unquote(q)
			if err != nil {
				return nil, false
			}
			f[k], rest = u, v[len(q):]
			continue
		}
		val, after, _ := strings.Cut(v, " ")
		f[k], rest = val, after
	}
}

// Verify checks the marker against this process: the executable is the one
// the parent ran, the pipeline is the same, the pipe fd is a pipe open for
// writing (and is then made close-on-exec), and an in-place re-exec is
// read by the PID that wrote it.
func (m Marker) Verify(pipeline string) error {
	_, exe, err := sys.Executable()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if exe != m.Exe {
		return fmt.Errorf("%w: the executable changed between generations (was %d:%d, now %d:%d)",
			ErrForged, m.Exe.Dev, m.Exe.Ino, exe.Dev, exe.Ino)
	}
	if m.Pipeline != pipeline {
		return fmt.Errorf("%w: the pipeline differs from the parent's (options, stages or hooks changed between generations: is the code before Daemonize deterministic?)", ErrForged)
	}
	if m.Role == "foreground" {
		if m.PID != os.Getpid() {
			return fmt.Errorf("%w: foreground handover for PID %d read by PID %d", ErrForged, m.PID, os.Getpid())
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.FD, &st); err != nil {
		return fmt.Errorf("%w: fd %d: %v", ErrForged, m.FD, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("%w: fd %d is not a pipe", ErrForged, m.FD)
	}
	fl, err := unix.FcntlInt(uintptr(m.FD), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_ACCMODE != unix.O_WRONLY {
		return fmt.Errorf("%w: fd %d is not the write end of a pipe", ErrForged, m.FD)
	}
	if _, err := unix.FcntlInt(uintptr(m.FD), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("fd %d: %w", m.FD, err)
	}
	return nil
}
