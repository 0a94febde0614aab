package orchestrate

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/cutover/cutover/services/kit/sealbox"
)

// processBox seals with a random key made once per process and shared by
// every Service in it: the embedded stack (and tests) start several
// against one control database, and each must read the others' jobs.
var processBox = sync.OnceValue(func() *sealbox.Box {
	slog.Warn("no --secret-key-file (CUTOVER_SECRET_KEY_FILE): DSN secrets in the control schema are sealed with a random key held only by this process; " +
		"its jobs cannot be read, resumed or finished by another process or after a restart")
	return sealbox.New(sealbox.NewKey())
})

// secretBox is the box the control schema's secrets are sealed with: the
// key in file, which must exist and hold a key, or this process's own.
func secretBox(file string) (*sealbox.Box, error) {
	if file == "" {
		return processBox(), nil
	}
	k, err := sealbox.LoadKeyFile(file)
	if err != nil {
		return nil, fmt.Errorf("--secret-key-file (CUTOVER_SECRET_KEY_FILE): %w", err)
	}
	return sealbox.New(k), nil
}
