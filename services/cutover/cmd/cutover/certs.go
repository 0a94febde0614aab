package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/config"
	"github.com/cutover/cutover/services/kit/server"
)

// certs makes a development CA, a certificate per service, an admin token
// and the key sealing DSN secrets in a directory (kept when they exist).
func certs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cutover certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", config.DefaultTLSDir(), "directory to write to (env CUTOVER_TLS_DIR)")
	hosts := fs.String("hosts", "", "extra DNS names or IPs the services are reached by, comma separated")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var extra []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			extra = append(extra, h)
		}
	}
	if err := server.WriteDevDir(*dir, auth.ServiceNames, extra...); err != nil {
		fmt.Fprintf(stderr, "cutover certs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "certificates and tokens in %s\n  export CUTOVER_TLS_DIR=%s\n", *dir, *dir)
	return 0
}

// token makes a bearer token for a user and role: the token goes to stdout
// (once; only its hash is kept) and its line is appended to the token file.
func token(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cutover token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "who the token is for")
	role := fs.String("role", "", "admin, operator, ci or viewer")
	file := config.String(fs, "tokens-file", filepath.Join(config.DefaultTLSDir(), auth.TokensFileName), "token file to append to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := auth.ParseRole(*role)
	if err != nil || *name == "" || strings.ContainsAny(*name, " \t\n") {
		fmt.Fprintln(stderr, "usage: cutover token --name NAME --role admin|operator|ci|viewer [--tokens-file FILE]")
		return 2
	}
	tok := auth.NewToken()
	f, err := os.OpenFile(*file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "cutover token: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintln(f, auth.TokenLine(*name, r, tok)); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "cutover token: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "cutover token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
