// Command cutover runs all six services in one process (`cutover` or
// `cutover serve`), or one job on that embedded stack (`cutover run`); it
// also makes development certificates (`cutover certs`) and tokens
// (`cutover token`).
package main

import (
	"fmt"
	"os"

	"github.com/cutover/cutover/services/cutover/runjob"
	"github.com/cutover/cutover/services/kit/server"
)

func main() {
	ctx, stop := server.SignalContext()
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var code int
	switch cmd {
	case "serve":
		code = serve(ctx, args)
	case "run":
		code = runjob.Main(ctx, args, os.Stdout, os.Stderr)
	case "certs":
		code = certs(args, os.Stdout, os.Stderr)
	case "token":
		code = token(args, os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "usage: cutover [serve] [flags] | cutover run --spec FILE | cutover certs [--dir DIR] | cutover token --name N --role R\nunknown command %q\n", cmd)
		code = runjob.ExitBadSpec
	}
	stop()
	os.Exit(code)
}
