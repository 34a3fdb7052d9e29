// Package privdrop: placeholder, being written.
package privdrop

import "github.com/blivet-go/blivet/stages"

// Stage is the privdrop stage.
type Stage struct{}

// New returns the privdrop stage.
func New() *Stage { return &Stage{} }

// Name returns "privdrop".
func (*Stage) Name() string { return "privdrop" }

// Run is being written.
func (*Stage) Run(s *stages.State) error {
	if s.Config.DropConfigured() {
		return stages.Errorf("privdrop", stages.ExitSoftware, "not implemented yet")
	}
	return nil
}

// Chown hands s.ChownPaths to the target user: being written.
func Chown(s *stages.State) error { return nil }
