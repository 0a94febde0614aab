//go:build !linux

package fsroot

import "os"

func fdPath(*os.File) (string, bool) { return "", false }
