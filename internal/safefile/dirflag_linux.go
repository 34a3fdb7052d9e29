//go:build linux

package safefile

import "golang.org/x/sys/unix"

// dirFlags opens directories for use as *at(2) anchors only: O_PATH needs
// search permission, not read permission, and performs no access.
const dirFlags = unix.O_PATH
