// Command transformer serves the TransformerService.
package main

import (
	"context"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/transformer/transform"
)

func main() {
	server.Main("transformer", config.TransformerAddr, nil, func(ctx context.Context) (server.Service, error) {
		return transform.New(), nil
	})
}
