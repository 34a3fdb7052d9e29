//go:build linux && (amd64 || arm64)

package rawfork

import (
	"io"
	"os"
	"testing"
)

// BenchmarkDoubleForkExec measures the raw launch: two forks (setsid in
// between), the daemon child's fd table, signal reset, and an exec of
// /bin/true, until the launcher sees the exec happen (end of file on the
// readiness pipe) and has reaped the intermediate.
func BenchmarkDoubleForkExec(b *testing.B) {
	for _, vfork := range []bool{false, true} {
		name := "fork"
		if vfork {
			name = "vfork"
		}
		b.Run(name, func(b *testing.B) {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			nfd := int(null.Fd())
			for i := 0; i < b.N; i++ {
				r, w, err := os.Pipe()
				if err != nil {
					b.Fatal(err)
				}
				pr := &Program{Umask: 0o22, Dir: "/", UID: -1, LockFD: -1, Vfork: vfork,
					Env: []string{"PATH=/usr/bin:/bin"}, Candidates: []string{"/bin/true"},
					Argv: []string{"true"}, Shell: "/bin/sh", Name: "true"}
				files := []int{nfd, nfd, nfd, int(w.Fd())}
				pid, err := DoubleForkExec(pr, files, int(w.Fd()), 3)
				w.Close()
				if err != nil {
					b.Fatal(err)
				}
				data, err := io.ReadAll(r)
				r.Close()
				if err != nil || len(data) == 0 {
					b.Fatalf("pipe: %q, %v", data, err)
				}
				p, err := os.FindProcess(pid)
				if err != nil {
					b.Fatal(err)
				}
				if st, err := p.Wait(); err != nil || !st.Success() {
					b.Fatalf("intermediate: %v %v", st, err)
				}
			}
		})
	}
}
