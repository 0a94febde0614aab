//go:build !unix

package fsroot

import "os"

func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
