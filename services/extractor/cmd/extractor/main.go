// Command extractor serves the ExtractorService.
package main

import (
	"context"
	"flag"

	"github.com/cutover/cutover/services/extractor/extract"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
)

func main() {
	var fileRoots, sourceHosts string
	flags := func(fs *flag.FlagSet) {
		config.StringVar(fs, &fileRoots, "file-roots", "",
			"directories CSV, JSONL, XLSX and SQLite sources must lie in, separated by ':'; relative paths start at the first (empty: file sources disabled)")
		config.StringVar(fs, &sourceHosts, "source-hosts", "",
			"database hosts sources may connect to, separated by ',': host, host:port or [v6]:port, '*' for any host or port (empty: any host)")
	}
	server.Main("extractor", config.ExtractorAddr, flags, func(ctx context.Context) (server.Service, error) {
		// A root that does not exist or a bad host entry stops start-up;
		// the error names the setting.
		s, err := extract.NewWithOptions(extract.ParseOptions(fileRoots, sourceHosts))
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}
