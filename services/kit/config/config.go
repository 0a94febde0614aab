// Package config reads service settings from flags, with CUTOVER_* environment
// variables as defaults, so a flag always wins over the environment.
package config

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvName turns a flag name such as "control-url" into CUTOVER_CONTROL_URL.
func EnvName(flagName string) string {
	return "CUTOVER_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// String registers a string flag whose default comes from the environment.
func String(fs *flag.FlagSet, name, def, usage string) *string {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		def = v
	}
	return fs.String(name, def, usage+" (env "+EnvName(name)+")")
}

// Int registers an int flag whose default comes from the environment.
func Int(fs *flag.FlagSet, name string, def int, usage string) *int {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		}
	}
	return fs.Int(name, def, usage+" (env "+EnvName(name)+")")
}

// Duration registers a duration flag whose default comes from the environment.
func Duration(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	return fs.Duration(name, def, usage+" (env "+EnvName(name)+")")
}

// Default addresses of the services on one machine.
const (
	ExtractorAddr    = "127.0.0.1:7001"
	TransformerAddr  = "127.0.0.1:7002"
	ValidatorAddr    = "127.0.0.1:7003"
	LoaderAddr       = "127.0.0.1:7004"
	OrchestratorAddr = "127.0.0.1:7005"
	GatewayAddr      = "127.0.0.1:8080"
)

// StringVar is String writing into p.
func StringVar(fs *flag.FlagSet, p *string, name, def, usage string) {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		def = v
	}
	fs.StringVar(p, name, def, usage+" (env "+EnvName(name)+")")
}

// IntVar is Int writing into p.
func IntVar(fs *flag.FlagSet, p *int, name string, def int, usage string) {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		}
	}
	fs.IntVar(p, name, def, usage+" (env "+EnvName(name)+")")
}

// DurationVar is Duration writing into p.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		}
	}
	fs.DurationVar(p, name, def, usage+" (env "+EnvName(name)+")")
}

// DefaultTLSDir is where `cutover certs`, `cutover serve` and cutoverctl
// keep or find the development CA, certificates and tokens:
// CUTOVER_TLS_DIR, else cutover/tls in the user's configuration directory.
func DefaultTLSDir() string {
	if v := os.Getenv("CUTOVER_TLS_DIR"); v != "" {
		return v
	}
	if d, err := os.UserConfigDir(); err == nil {
		return d + "/cutover/tls"
	}
	return ".cutover-tls"
}

// List splits a list setting, dropping empty items.
func List(s, sep string) []string {
	var out []string
	for _, v := range strings.Split(s, sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
