package extract

import (
	"errors"
	"fmt"
	"os"

	"github.com/cutover/cutover/services/kit/fsroot"
)

// openSourceFile opens a file source's path, confined to the configured
// roots. Every refusal reads the same (fsroot.RefusedError) so that no
// answer tells what exists on the host.
func openSourceFile(roots *fsroot.Roots, field, path string) (*os.File, error) {
	f, err := roots.Open(path)
	if err != nil {
		return nil, fileErr(field, path, err)
	}
	return f, nil
}

// resolveSourceFile is openSourceFile for drivers that open by name.
func resolveSourceFile(roots *fsroot.Roots, field, path string) (string, error) {
	p, err := roots.Resolve(path)
	if err != nil {
		return "", fileErr(field, path, err)
	}
	return p, nil
}

func fileErr(field, path string, err error) error {
	if errors.Is(err, fsroot.ErrNoRoots) {
		return fmt.Errorf("%w: %s: file sources are disabled on this extractor: set CUTOVER_FILE_ROOTS", ErrPrecondition, field)
	}
	// Whatever else went wrong, say only the one thing: a system error's
	// text would tell missing from unreadable.
	return invalid(field, "%s", (&fsroot.RefusedError{Path: path}).Error())
}
