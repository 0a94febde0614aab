package extract

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	"github.com/cutover/cutover/services/kit/fsroot"
)

// A CSV source with a pattern is one table over many files: every file of
// the pattern's directory whose name matches, in lexical order of names.
// The directory must lie inside the file roots, and each file is opened
// through them like a single path, so a matched symlink that leads out of
// the roots is refused; all files must have the first one's header.
//
// Positions name their file: a range bound or cursor is the JSON array
// [name, position in that file], the position as for one file ("" for the
// file's start or end, "<offset>:<line>", or an offset for an upper
// bound). A plan gives every file its own partitions, so a partition
// never spans two files; a read without a range goes through the files in
// order, a batch never spanning two. A row's reference names its file:
// "orders-2024-01.csv line 17".

// csvPattern is a pattern source and the files it matches now.
type csvPattern struct {
	src   *commonv1.CsvSource
	dir   string   // the pattern's directory part, as given ("" or ending in a separator)
	names []string // the matched names, in lexical order
}

func listCSVPattern(roots *fsroot.Roots, s *commonv1.CsvSource) (*csvPattern, error) {
	if _, err := parseCSVSpec(s); err != nil {
		return nil, err
	}
	pat := s.GetPattern()
	files, err := roots.Glob(pat)
	var refused *fsroot.RefusedError
	switch {
	case errors.Is(err, fsroot.ErrNoRoots):
		return nil, fmt.Errorf("%w: source.csv.pattern: file sources are disabled on this extractor: set CUTOVER_FILE_ROOTS", ErrPrecondition)
	case errors.Is(err, fsroot.ErrPattern):
		return nil, invalid("source.csv.pattern", "%q: want %v", pat, err)
	case errors.As(err, &refused):
		return nil, invalid("source.csv.pattern", "the directory of pattern %q is not a readable directory inside the configured file roots", pat)
	case err != nil:
		return nil, err
	case len(files) == 0:
		return nil, invalid("source.csv.pattern", "pattern %q matches no file inside the configured file roots", pat)
	}
	p := &csvPattern{src: s, dir: pat[:len(pat)-len(filepath.Base(pat))]}
	for _, f := range files {
		p.names = append(p.names, f[len(p.dir):])
	}
	return p, nil
}

// spec is the parsed spec of the file called name; want, if not nil, is
// the header it must have (the first file's).
func (p *csvPattern) spec(name string, want []string) csvSpec {
	sp, _ := parseCSVSpec(p.src) // checked by listCSVPattern
	sp.path, sp.pattern, sp.field = p.dir+name, "", "source.csv.pattern"
	sp.refPrefix = name + " "
	if want != nil {
		sp.wantNames, sp.wantFrom = want, p.dir+p.names[0]
	}
	return sp
}

// header is the first file's column names (nil without a header line:
// the spec's columns are every file's).
func (p *csvPattern) header(roots *fsroot.Roots, cache *Service) ([]string, error) {
	sp := p.spec(p.names[0], nil)
	if !sp.header {
		return nil, nil
	}
	cf, err := openCSVSpec(roots, cache, sp)
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	return cf.names, nil
}

// open opens file name, its header held to want.
func (p *csvPattern) open(roots *fsroot.Roots, cache *Service, name string, want []string) (*csvFile, error) {
	return openCSVSpec(roots, cache, p.spec(name, want))
}

// index is the place of name among the matches, -1 if it is not one.
func (p *csvPattern) index(name string) int {
	for i, n := range p.names {
		if n == name {
			return i
		}
	}
	return -1
}

// filePos is a position of a pattern source: [name, position in the file].
func filePos(name, pos string) string { return cursorText([][]byte{[]byte(name), []byte(pos)}) }

// parsePos splits a position made by filePos; its file must be a match.
func (p *csvPattern) parsePos(field, v string) (string, string, error) {
	parts, ok := cursorParts(v, 2)
	if !ok {
		return "", "", invalid(field, "%q is not a position of a pattern source: want [\"<file name>\", \"<position>\"]", cut(v))
	}
	if p.index(parts[0]) < 0 {
		return "", "", fmt.Errorf("%w: %s: file %q is not among the files pattern %q matches now", ErrPrecondition, field, parts[0], p.src.GetPattern())
	}
	return parts[0], parts[1], nil
}

func describeCSVPattern(svc *Service, s *commonv1.CsvSource) (*extractorv1.DescribeSourceResponse, error) {
	p, err := listCSVPattern(svc.files, s)
	if err != nil {
		return nil, err
	}
	resp := &extractorv1.DescribeSourceResponse{}
	var want []string
	for i, name := range p.names {
		cf, err := p.open(svc.files, svc, name, want)
		if err != nil {
			return nil, err
		}
		est, err := cf.estimateRows()
		if err == nil && i == 0 {
			for _, n := range cf.names {
				resp.Columns = append(resp.Columns, &commonv1.SourceColumn{Name: n, SourceType: "text", Type: textType, Nullable: true})
			}
			if cf.spec.header {
				want = cf.names
			}
		}
		cf.Close()
		if err != nil {
			return nil, err
		}
		resp.EstimatedRows += est
	}
	return resp, nil
}

// planCSVPattern gives each file its own partitions: one each when n is
// no more than the files, else about n in all, shared by size.
func planCSVPattern(ctx context.Context, svc *Service, s *commonv1.CsvSource, n int) ([]*commonv1.KeyRange, error) {
	p, err := listCSVPattern(svc.files, s)
	if err != nil {
		return nil, err
	}
	want, err := p.header(svc.files, svc)
	if err != nil {
		return nil, err
	}
	files := make([]*csvFile, len(p.names))
	defer func() {
		for _, cf := range files {
			if cf != nil {
				cf.Close()
			}
		}
	}()
	var total int64
	for i, name := range p.names {
		if files[i], err = p.open(svc.files, svc, name, want); err != nil {
			return nil, err
		}
		total += max(files[i].size-files[i].dataStart, 0)
	}
	parts := shareParts(files, n, total)
	var out []*commonv1.KeyRange
	for i, cf := range files {
		k := parts[i]
		ranges := []*commonv1.KeyRange{{}}
		if k > 1 {
			if ranges, err = cf.chunks(ctx, k); err != nil {
				return nil, err
			}
		}
		for _, r := range ranges {
			out = append(out, &commonv1.KeyRange{Lower: filePos(p.names[i], r.GetLower()), Upper: filePos(p.names[i], r.GetUpper())})
		}
	}
	return out, nil
}

// shareParts shares n partitions among the files by their data bytes
// (largest remainders), at least one each.
func shareParts(files []*csvFile, n int, total int64) []int {
	parts := make([]int, len(files))
	rest := make([]int64, len(files)) // remainders, in units of 1/total
	used := 0
	for i, cf := range files {
		parts[i] = 1
		if n > len(files) && total > 0 {
			q := int64(n) * max(cf.size-cf.dataStart, 0)
			parts[i] = max(1, int(q/total))
			rest[i] = q % total
		}
		used += parts[i]
	}
	for ; used < n && total > 0; used++ {
		at := 0
		for i := range rest {
			if rest[i] > rest[at] {
				at = i
			}
		}
		if rest[at] <= 0 {
			break
		}
		parts[at]++
		rest[at] = 0
	}
	return parts
}

// readCSVPattern reads the batch after cursor: within the range's file,
// or, without a range, from the first file on, moving to the next file at
// the end of one.
func readCSVPattern(roots *fsroot.Roots, cache *Service, s *commonv1.CsvSource, rng *commonv1.KeyRange, cursor string, lim readLimits) (*commonv1.Batch, bool, error) {
	p, err := listCSVPattern(roots, s)
	if err != nil {
		return nil, false, err
	}
	var name, lower, upper, at string
	ranged := rng.GetLower() != "" || rng.GetUpper() != ""
	if ranged {
		ln, lv, err := p.parsePos("range.lower", rng.GetLower())
		if err != nil {
			return nil, false, err
		}
		un, uv, err := p.parsePos("range.upper", rng.GetUpper())
		if err != nil {
			return nil, false, err
		}
		if ln != un {
			return nil, false, invalid("range", "its bounds name two files, %q and %q: a partition of a pattern source is in one file", ln, un)
		}
		name, lower, upper = ln, lv, uv
	}
	if cursor != "" {
		cn, cv, err := p.parsePos("cursor", cursor)
		if err != nil {
			return nil, false, err
		}
		if ranged && cn != name {
			return nil, false, invalid("cursor", "names file %q, the range file %q", cn, name)
		}
		name, at = cn, cv
	}
	if name == "" {
		name = p.names[0]
	}
	want, err := p.header(roots, cache)
	if err != nil {
		return nil, false, err
	}
	for {
		cf, err := p.open(roots, cache, name, want)
		if err != nil {
			return nil, false, err
		}
		b, done, err := cf.read(&commonv1.KeyRange{Lower: lower, Upper: upper}, at, lim)
		cf.Close()
		if err != nil {
			return nil, false, err
		}
		b.LastKey = filePos(name, b.GetLastKey())
		if ranged || !done {
			return b, done, nil
		}
		i := p.index(name)
		if i == len(p.names)-1 {
			return b, true, nil
		}
		if b.GetNumRows() > 0 {
			return b, false, nil
		}
		name, at = p.names[i+1], ""
	}
}

// quoteNames renders column names for a message.
func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "(" + strings.Join(q, ", ") + ")"
}
