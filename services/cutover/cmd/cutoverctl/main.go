// Command cutoverctl is the client CI and operators call against a running
// orchestrator: `cutoverctl validate --spec F [--dry-run]`; `create --spec
// F`, `list`, `status JOB`, `watch JOB`, `cancel JOB`, `resume JOB`,
// `delete JOB` and `audit` for jobs; `reconcile JOB`, `readiness JOB
// [--watch]`, `stop-following JOB` and `rollback JOB`. Exit 0 passed, ready
// or done; 1 checks failed, not ready, refused or the watched job did not
// succeed; 2 usage or connection error (`cutoverctl help`).
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
