// Package blivettest helps test programs that use blivet, in the spirit
// of net/http/httptest.
//
// Real-process mode runs a helper function of the test binary as a real
// daemon: the test binary re-executes itself, the helper calls
// blivet.Daemonize like a real main, and the test inspects the real
// process (/proc, files, exit codes). Register helpers and dispatch from
// TestMain:
//
//	func init() {
//		blivettest.Register("server", func(h *blivettest.H) {
//			ctx, err := blivet.Daemonize(blivet.WithPidfile(h.Dir + "/d.pid"))
//			...
//			h.Report("pid", os.Getpid())
//			ctx.NotifyParent()
//			select {}
//		})
//	}
//
//	func TestMain(m *testing.M) { blivettest.Main(m) }
//
//	func TestServer(t *testing.T) {
//		run := blivettest.Launch(t, "server")
//		var pid int
//		run.Await("pid", &pid)
//		...
//	}
//
// Every process a run starts is killed when the test ends.
package blivettest
