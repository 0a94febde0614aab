// Command validator serves the ValidatorService.
package main

import (
	"context"

	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/validator/validate"
)

func main() {
	server.Main("validator", config.ValidatorAddr, nil, func(ctx context.Context) (server.Service, error) {
		return validate.New(), nil
	})
}
