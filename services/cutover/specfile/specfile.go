// Package specfile reads job spec files, for `cutover run` and cutoverctl
// alike; it depends on nothing but the contracts, so the CLI stays small.
package specfile

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads a JSON or YAML job spec. ${NAME} is replaced by the
// environment variable NAME (so DSNs stay out of files), and relative CSV
// paths are taken relative to the spec file.
func Load(path string) (*commonv1.JobSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var missing []string
	text := envRef.ReplaceAllStringFunc(string(raw), func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return jsonEscape(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("spec %s: environment variable %s is not set", path, strings.Join(missing, ", "))
	}
	data := []byte(text)
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return nil, fmt.Errorf("spec %s: %w", path, err)
		}
	}
	spec := &commonv1.JobSpec{}
	if err := protojson.Unmarshal(data, spec); err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for _, t := range spec.GetTables() {
		src := t.GetSource()
		if c := src.GetCsv(); c != nil {
			rel(&c.Path)
			rel(&c.Pattern)
		}
		if c := src.GetJsonl(); c != nil {
			rel(&c.Path)
		}
		if c := src.GetXlsx(); c != nil {
			rel(&c.Path)
		}
		if c := src.GetSqlite(); c != nil {
			rel(&c.Path)
		}
	}
	return spec, nil
}

// jsonEscape keeps a substituted value from breaking the JSON string it is in.
func jsonEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s)
}
