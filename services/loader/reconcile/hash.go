package reconcile

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Rows in canonical text, their hashes and their key buckets, computed the
// same in Go (the source side) and in SQL (the target side).

// canonRow is one row rendered: every compared column's text (or NULL).
type canonRow struct {
	buf   []byte
	ends  []int
	nulls []bool
}

func (c *canonRow) value(k int) ([]byte, bool) {
	if c.nulls[k] {
		return nil, false
	}
	start := 0
	if k > 0 {
		start = c.ends[k-1]
	}
	return c.buf[start:c.ends[k]], true
}

// appendLP appends a value length-prefixed ("len:value"), NULL as "~":
// unambiguous without escaping, and easy to write the same in SQL.
func appendLP(dst, v []byte, ok bool) []byte {
	if !ok {
		return append(dst, '~')
	}
	dst = strconv.AppendInt(dst, int64(len(v)), 10)
	dst = append(dst, ':')
	return append(dst, v...)
}

// sqlLP is appendLP in SQL for one column's text.
func sqlLP(col string) string {
	x := "(t." + pgx.Identifier{col}.Sanitize() + ")::text"
	return "coalesce(octet_length(" + x + ")::text || ':' || " + x + ", '~')"
}

func rowHash(lp []byte) int64 {
	s := md5.Sum(lp)
	return int64(binary.BigEndian.Uint64(s[:8]))
}

func keyBucket(lp []byte) int {
	s := md5.Sum(lp)
	return int(s[0])<<4 | int(s[1]>>4)
}

// intKey reports whether rows are bucketed by the value of a single
// integer key (modulo reconBuckets) instead of the key's md5: a hash less
// per row on both sides, and integer keys spread evenly anyway.
func (p *tablePlan) intKey() bool {
	if len(p.key) != 1 {
		return false
	}
	switch p.compared[p.key[0]].typname {
	case "int2", "int4", "int8":
		return true
	}
	return false
}

// bucketOf is the bucket of a row's key given its canonical text.
func (p *tablePlan) bucketOf(klp []byte, key []byte) int {
	if p.intKey() {
		if v, err := strconv.ParseInt(string(key), 10, 64); err == nil {
			return int((v%reconBuckets + reconBuckets) % reconBuckets)
		}
	}
	return keyBucket(klp)
}

func (p *tablePlan) sqlRowHash() string {
	parts := make([]string, len(p.compared))
	for k, c := range p.compared {
		parts[k] = sqlLP(c.name)
	}
	return "('x' || substr(md5(" + strings.Join(parts, " || ") + "), 1, 16))::bit(64)::bigint"
}

func (p *tablePlan) sqlBucket() string {
	if p.intKey() {
		col := "t." + pgx.Identifier{p.compared[p.key[0]].name}.Sanitize()
		return fmt.Sprintf("coalesce(((%s %% %d + %d) %% %d)::int, %d)", col, reconBuckets, reconBuckets, reconBuckets, keyBucket(appendLP(nil, nil, false)))
	}
	parts := make([]string, len(p.key))
	for k, pos := range p.key {
		parts[k] = sqlLP(p.compared[pos].name)
	}
	return "('x' || substr(md5(" + strings.Join(parts, " || ") + "), 1, 3))::bit(12)::int"
}

// display renders a row for a difference: "col=value, …", NULL as NULL.
func (p *tablePlan) display(vals []*string) string {
	var sb strings.Builder
	for k, c := range p.compared {
		if k > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.name)
		sb.WriteByte('=')
		if vals[k] == nil {
			sb.WriteString("NULL")
		} else {
			sb.WriteString(*vals[k])
		}
	}
	return sb.String()
}

// keyOf returns a row's key as "a=1,b=2" (lineage's form), its values and
// its length-prefixed text.
func (p *tablePlan) keyOf(vals []*string) (string, []string, string) {
	var sb strings.Builder
	var lp []byte
	kv := make([]string, len(p.key))
	for k, pos := range p.key {
		if k > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(p.compared[pos].name)
		sb.WriteByte('=')
		if vals[pos] == nil {
			sb.WriteString("NULL")
			kv[k] = "NULL"
			lp = appendLP(lp, nil, false)
		} else {
			sb.WriteString(*vals[pos])
			kv[k] = *vals[pos]
			lp = appendLP(lp, []byte(*vals[pos]), true)
		}
	}
	return sb.String(), kv, string(lp)
}
