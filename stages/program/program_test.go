package program

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/blivet-go/blivet/stages"
)

func TestNewResolvesPaths(t *testing.T) {
	p, err := New([]string{"./bin/x", "-v"})
	if err != nil || !filepath.IsAbs(p.Path) || p.Argv[0] != "./bin/x" {
		t.Errorf("New(./bin/x) = %+v, %v", p, err)
	}
	if p, err := New([]string{"sleep", "1"}); err != nil || p.Path != "" {
		t.Errorf("New(sleep) = %+v, %v", p, err)
	}
	for _, bad := range [][]string{nil, {""}, {"a\x00b"}, {"x", "y\x00"}} {
		if _, err := New(bad); stages.ExitCodeOf(err) != stages.ExitUsage {
			t.Errorf("New(%q) = %v, want 64", bad, err)
		}
	}
}

func TestCandidatesFollowPATH(t *testing.T) {
	p, _ := New([]string{"prog"})
	got := p.Candidates([]string{"PATH=/a::/b"})
	if want := []string{"/a/prog", "prog", "/b/prog"}; !slices.Equal(got, want) {
		t.Errorf("Candidates = %q, want %q", got, want)
	}
	if got := p.Candidates(nil); !slices.Equal(got, []string{"/bin/prog", "/usr/bin/prog"}) {
		t.Errorf("without PATH: %q", got)
	}
}

func TestCheckAndExecErrors(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s")
	if err := os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := New([]string{script})
	if err := p.Check(); stages.ExitCodeOf(err) != stages.ExitNoInput {
		t.Errorf("Check of a non-executable file: %v, want 66", err)
	}
	os.Chmod(script, 0o755)
	if err := p.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	// ENOENT for an existing file means its interpreter is missing.
	err := p.execError(nil, syscall.ENOENT)
	if stages.ExitCodeOf(err) != stages.ExitNoInput || !errors.Is(err, syscall.ENOENT) || !contains(err.Error(), "#! interpreter") {
		t.Errorf("execError = %v", err)
	}
	q, _ := New([]string{"prog"})
	if err := q.execError([]string{"PATH=/x"}, syscall.ENOENT); !contains(err.Error(), `prog not found in PATH "/x"`) {
		t.Errorf("execError = %v", err)
	}
	if err := q.execError(nil, syscall.E2BIG); stages.ExitCodeOf(err) != stages.ExitOSErr {
		t.Errorf("E2BIG: %v, want 71", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
