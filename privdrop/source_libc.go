//go:build (cgo || darwin) && !osusergo

package privdrop

// os/user asks the C library, which follows the system's NSS
// configuration (nsswitch.conf).
const (
	userSource  = "the user database (NSS, via the C library)"
	groupSource = "the group database (NSS, via the C library)"
)
