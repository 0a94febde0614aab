module github.com/cutover/cutover/services/extractor

go 1.26.0

require (
	github.com/cutover/cutover/gen v0.0.0
	github.com/cutover/cutover/services/kit v0.0.0
)

replace (
	github.com/cutover/cutover/gen => ../../gen
	github.com/cutover/cutover/services/kit => ../kit
)
