// Command extractor serves the ExtractorService.
package main

import (
	"context"

	"github.com/cutover/cutover/services/extractor/extract"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
)

func main() {
	server.Main("extractor", config.ExtractorAddr, nil, func(ctx context.Context) (server.Service, error) {
		return extract.New(), nil
	})
}
