// Command cutoverctl is the client CI calls: `cutoverctl validate --spec F
// [--dry-run]` and `cutoverctl reconcile JOB` against a running
// orchestrator. Exit 0 passed, 1 checks failed, 2 usage or connection error.
package main

import (
	"os"

	"github.com/cutover/cutover/services/cutover/ctl"
	"github.com/cutover/cutover/services/kit/server"
)

func main() {
	ctx, stop := server.SignalContext()
	code := ctl.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
