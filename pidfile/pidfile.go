// Package pidfile: placeholder, being written.
package pidfile

import "github.com/blivet-go/blivet/stages"

// Stage is the pidfile stage.
type Stage struct{}

// New returns the pidfile stage.
func New() *Stage { return &Stage{} }

// Name returns "pidfile".
func (*Stage) Name() string { return "pidfile" }

// Run is being written.
func (*Stage) Run(s *stages.State) error {
	if s.Config.Pidfile != "" || s.Config.Lockfile != "" {
		return stages.Errorf("pidfile", stages.ExitSoftware, "not implemented yet")
	}
	return nil
}
