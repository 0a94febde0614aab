// Command loader serves cutover.loader.v1.LoaderService: the only writer to
// the target PostgreSQL database.
package main

import (
	"context"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/loader/load"
)

func main() {
	server.Main("loader", config.LoaderAddr, nil, func(ctx context.Context) (server.Service, error) {
		return load.New(), nil
	})
}
