// Package openapiv2 embeds the generated OpenAPI document of the REST API.
// This file is written by hand; the JSON beside it is generated.
package openapiv2

import _ "embed"

// JSON is the OpenAPI v2 document of the cutover REST API.
//
//go:embed cutover.swagger.json
var JSON []byte
