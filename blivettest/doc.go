// Package blivettest helps test programs that use blivet, in the spirit
// of net/http/httptest. It has two modes.
//
// # In-process mode
//
// A Recorder runs the program's real pipeline (its options, hooks and
// custom stages) inside the test process, with every default stage that
// changes process-wide state replaced by a recording fake. The test
// process keeps its cwd, umask, environment, signals and fds, so tests may
// call t.Parallel:
//
//	func TestStartup(t *testing.T) {
//		t.Parallel()
//		rec := blivettest.NewRecorder(t)
//		ctx, err := rec.Daemonize(app.Options()...) // the app's own options and hooks
//		if err != nil {
//			t.Fatal(err)
//		}
//		if err := ctx.DropPrivileges(); err != nil { // recorded, not done
//			t.Fatal(err)
//		}
//		if err := ctx.NotifyParent(); err != nil {
//			t.Fatal(err)
//		}
//		rec.Stages()   // which stages ran, in order
//		rec.Hooks()    // which hooks ran
//		rec.Steps()    // both, with the generation and the outcome of each
//		rec.Launcher() // what the launcher was told: ready, or an error and its exit code
//		rec.Drop()     // what the privilege drop would have done
//		rec.Actions()  // "umask 022", "chdir /", "lock /run/app.pid", ...
//	}
//
// The fork fakes walk the State through the launcher, intermediate and
// daemon roles, so a failure after the fork is reported to the recorded
// launcher with its exit code, exactly as in a real daemon. Where blivet
// would end the process (ReportError, such a failure), Recorder.Daemonize
// and Recorder.Call return an *ExitError instead. Real opts a stage back
// into its real form (the test then gives up parallelism for it).
//
// # Real-process mode
//
// A helper function of the test binary runs as a real daemon: the test
// binary re-executes itself, the helper calls blivet.Daemonize like a real
// main (it runs in every process generation, like main), and the test
// inspects the real process (/proc, files, exit codes). Register helpers
// and dispatch from TestMain:
//
//	func init() {
//		blivettest.Register("server", func(h *blivettest.H) {
//			ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Pidfile()))
//			if err != nil {
//				os.Exit(blivet.ExitCodeOf(err))
//			}
//			defer ctx.Close()
//			h.Report("uid", os.Getuid())
//			ctx.NotifyParent()
//			select {}
//		})
//	}
//
//	func TestMain(m *testing.M) { blivettest.Main(m) }
//
//	func TestServer(t *testing.T) {
//		d := blivettest.StartDaemon(t, "server") // waits for ready
//		var uid int
//		d.Await("uid", &uid)
//		... inspect /proc/<d.PID> ...
//		d.Stop() // SIGTERM, wait until gone
//	}
//
// Launch and Start give the launcher's exit code and output for tests of
// failures. Every process a run starts is killed when the test ends.
//
// Alive, Gone and AwaitGone judge a process by every one of its threads:
// a Go daemon whose main thread has exited may still have threads holding
// its fds and locks, and kill(pid, 0) succeeds until init reaps it, which
// may come late. Wait for the effect a test checks (a lock released, every
// thread gone, a report written) with Eventually, never with a sleep.
//
// When the tests run as root, the report directory of a run (H.Dir) is
// open to every user (mode 01777, its parent 0755), so a helper that drops
// privileges can still report and keep its pidfile there; a directory
// given with WithDir is the caller's to prepare.
package blivettest
