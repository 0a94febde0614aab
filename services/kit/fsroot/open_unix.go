//go:build unix

package fsroot

import (
	"os"
	"syscall"
)

// openNoFollow opens read-only without following a final symlink (one put
// there after the check) and without blocking on a FIFO or device, which
// Open then refuses as not regular.
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
