// Command cutoverctl is the client CI and operators call against a running
// orchestrator: `cutoverctl validate --spec F [--dry-run]`, `cutoverctl
// reconcile JOB`, `cutoverctl readiness JOB [--watch]`, `cutoverctl
// stop-following JOB` and `cutoverctl rollback JOB`. Exit 0 passed, ready
// or done; 1 checks failed, not ready or refused; 2 usage or connection
// error.
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
