// Package pidfile makes "one daemon per pidfile" hold under any race, and
// makes the pidfile something init scripts and operators can trust.
//
// It has three parts: the lock and the file (Acquire, Lock.WritePID,
// Write), the question operators ask (Probe: is it held, and by which
// process?), and the pipeline stage blivet runs (New), configured by
// blivet.WithPidfile, WithLockfile, WithoutLockfile and WithCleanupOnSignal.
//
// # Taking the lock
//
// Acquire opens the file safely (through the rules blivet applies to every
// file it opens as root, see docs/security.md), then takes an exclusive,
// non-blocking flock(2) lock on it:
//
//   - The last path component must not be a symbolic link: the file is
//     opened with O_NOFOLLOW. Symbolic links higher up (/var/run -> /run)
//     are followed as usual.
//   - When the effective user is root, the file's directory must not be
//     writable by group or others unless it has the sticky bit (as /tmp
//     does): anyone who can write there could swap the file for something
//     root should not truncate. The directory is opened first and the file
//     is opened relative to it, so the checked directory is the one used.
//   - The file is created with mode 0644 (subject to the umask) and opened
//     close-on-exec, so the lock never leaks into programs the daemon runs.
//   - A regular file with more than one hard link is refused (root must not
//     be tricked into truncating a file linked from elsewhere), and so is
//     anything that is neither a regular file nor a character device. A
//     character device (/dev/null, /dev/full) is written to but never
//     truncated or removed.
//   - After locking, the locked file must still be the file at the path
//     (same device and inode, and still linked): an instance that was
//     shutting down may have removed it between our open and our lock.
//     If it is not, the file is closed and everything starts again.
//
// Only then does the winner write its PID in decimal followed by "\n",
// through the locked file descriptor: it writes from offset 0 and then
// truncates to the length written, so a reader never sees an empty file.
// A losing instance never truncates, rewrites or removes the winner's
// file: it fails with exit code 69 (stages.ErrLocked) and a
// *ConflictError naming the path and, when the kernel (or, failing that,
// the file) tells, the PID holding the lock. Failing to open, lock or
// write is exit code 73 (stages.ErrCantCreate), ENOSPC included.
//
// The lock belongs to the open file description, so it is released when
// the process ends in any way, SIGKILL included: a stale pidfile left by a
// killed daemon never blocks the next start, which simply overwrites it.
// The package keeps every held Lock reachable, so a Lock (or the Context
// that owns it) that the program drops is never closed by the garbage
// collector: the lock is held until Unlock or the end of the process.
//
// # What happens to the pidfile
//
//	exit                                        pidfile
//	------------------------------------------  --------------------------------------------
//	ctx.Close() / ctx.Cleanup()                 removed while the lock is still held, then
//	(idempotent, best effort)                   unlocked; emptied instead when removal is
//	                                            not permitted (after a privilege drop)
//	ctx.ReportError, or a stage failing after   removed before the process ends (the
//	the pidfile stage                           launcher exits only after that)
//	SIGTERM/SIGINT with WithCleanupOnSignal()   removed, then the process ends by that
//	                                            signal (its wait status shows it)
//	return from main without Close, os.Exit,    left on disk, unlocked; the next start
//	panic after ready, SIGKILL                  overwrites it
//	CLI (cmd/daemonize): the program exits      left on disk, unlocked (the program owns
//	                                            the process)
//
// A standalone lockfile (WithLockfile) is never removed: removing a lock
// file opens a window where two instances lock two different files. The
// pidfile next to it is written after the lock is taken, and removed on
// the same occasions as above. With WithoutLockfile the pidfile is written
// without any lock, several instances may run, and an instance removes the
// pidfile only while it still holds that instance's own PID.
//
// Removal needs write access to the pidfile's directory. After a privilege
// drop the daemon usually has none (a root-owned /run, or a sticky
// directory and a root-owned file), so Close cannot remove the file. It
// then truncates it to zero bytes through the descriptor it still holds
// (the lock's own descriptor when the pidfile is the lock, or one the
// stage keeps open on a pidfile written without its lock), while the lock
// is still held, and only then unlocks; Close reports no error. No PID is
// left behind for a tool to find alive or, once reused, to signal: an
// empty pidfile that is not locked means "not running" (Probe reports it
// as not held, and the next start writes its PID into it). With
// WithoutLockfile the file is emptied only while it still holds this
// instance's PID. To have the file removed instead, put it in a directory
// owned by the target user, such as /run/mydaemon/ created by the service
// manager (systemd's RuntimeDirectory=). The pidfile itself is never handed to
// the target user (WithChownPaths hands over the output files and a
// standalone lockfile): a pidfile the daemon owns would let a compromised
// daemon aim root's kill at any process, and start-stop-daemon refuses
// such files.
//
// # Signals
//
// WithCleanupOnSignal installs handling for SIGTERM and SIGINT in one
// call, as the last thing the stage does, so it is all or nothing and
// nothing that runs before it (the signal reset of the first stage) can
// undo it. On either signal the pidfile is removed, the lock released, the
// signal's default disposition restored and the signal raised again: the
// process ends by that signal, as a supervisor expects. Close stops the
// handling. A program that handles SIGTERM itself for a graceful shutdown
// should not use WithCleanupOnSignal but call ctx.Close on its way out.
//
// # Asking who holds a pidfile
//
// Probe answers, for init scripts and operators, whether a live process
// holds the lock on a pidfile (or lockfile) and which PID it has, by
// asking the kernel, without taking a lock (which could make a concurrent
// start fail) and without trusting the number written in the file. On
// Linux it reads /proc/locks, matching the file's device and inode. On
// other systems it asks fcntl(F_GETLK), which on the BSDs and macOS also
// sees flock(2) locks but usually cannot name their owner (PID 0).
//
// # Interoperability
//
// The file format is the traditional one, so the usual tools work on it:
// start-stop-daemon --stop --pidfile FILE, pkill -F FILE, kill $(cat FILE),
// and flock -n FILE (which fails while the daemon runs).
package pidfile
