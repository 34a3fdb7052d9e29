//go:build !((cgo || darwin) && !osusergo)

package privdrop

// Without cgo (or with the osusergo tag) os/user reads the files only.
const (
	userSource  = "/etc/passwd"
	groupSource = "/etc/group"
)
