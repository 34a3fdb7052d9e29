package pidfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blivet-go/blivet/stages"
)

// TestPlanFailureRemovesOnlyWhatItCreated: after a failed raw launch whose
// daemon never wrote its PID, the launcher removes the empty pidfile this
// launch created, and leaves one that was there before it (someone else's
// file, however empty).
func TestPlanFailureRemovesOnlyWhatItCreated(t *testing.T) {
	for _, existed := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "d.pid")
		if existed {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s := &stages.State{Config: stages.Config{Pidfile: path}}
		p := &stages.Plan{Final: true}
		if err := New().Plan(s, p); err != nil {
			t.Fatalf("existed=%v: Plan: %v", existed, err)
		}
		if len(p.Ops) == 0 {
			t.Fatalf("existed=%v: no steps planned", existed)
		}
		p.Done()
		p.Failed(0) // the daemon failed before writing its PID
		_, err := os.Stat(path)
		switch {
		case existed && err != nil:
			t.Errorf("a pidfile that was there before the launch was removed: %v", err)
		case !existed && err == nil:
			t.Error("the empty pidfile this launch created was left behind")
		}
	}
}
