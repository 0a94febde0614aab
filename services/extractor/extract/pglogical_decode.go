package extract

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// This file decodes the messages of PostgreSQL's built-in pgoutput plugin
// (logical replication protocol version 1), as pg_logical_slot_peek_binary_changes
// returns them: one message per row. Only what a follower needs is kept.
// Every error names the message kind and what is wrong; nothing panics,
// whatever the bytes (see FuzzDecodePgoutput).

// lsn is a WAL position.
type lsn uint64

// String is PostgreSQL's text form of a pg_lsn, e.g. "0/16B3748".
func (l lsn) String() string {
	return strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xffffffff, 16)
}

// parseLSN reads the text form of a pg_lsn ("16/B374D848"); upper and
// lower case hex digits are both accepted, as PostgreSQL does.
func parseLSN(s string) (lsn, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || len(hi) == 0 || len(hi) > 8 || len(lo) == 0 || len(lo) > 8 {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return lsn(h<<32 | l), true
}

// pgoMsg is one decoded pgoutput message: exactly one of the pointers is set.
type pgoMsg struct {
	begin    *pgoBegin
	commit   *pgoCommit
	relation *pgoRelation
	change   *pgoChange // insert, update or delete
	truncate *pgoTruncate
	// origin and type messages carry nothing a follower uses.
	skip byte
}

type pgoBegin struct {
	finalLSN   lsn   // the commit record's LSN
	commitTime int64 // µs since 2000-01-01 UTC
	xid        uint32
}

type pgoCommit struct {
	commitLSN  lsn // the commit record's LSN
	endLSN     lsn // the end of the commit record: the position after the transaction
	commitTime int64
}

type pgoColumn struct {
	key     bool // part of the replica identity
	name    string
	typeOID uint32
	typmod  int32
}

type pgoRelation struct {
	oid       uint32
	namespace string
	name      string
	identity  byte // replica identity: d default, n nothing, f full, i index
	cols      []pgoColumn
}

// pgoValue is one column of a tuple: kind 'n' NULL, 'u' an unchanged
// TOAST value that the log does not carry, 't' text, 'b' binary.
type pgoValue struct {
	kind byte
	data []byte
}

type pgoChange struct {
	op  byte // 'I', 'U' or 'D'
	rel uint32
	// oldKind is 'K' when old holds the replica identity's columns only
	// (the others NULL), 'O' for the whole old row (REPLICA IDENTITY FULL),
	// 0 when there is no old tuple (inserts, updates that keep the key).
	oldKind byte
	old     []pgoValue
	new     []pgoValue // nil for deletes
}

type pgoTruncate struct {
	options byte
	rels    []uint32
}

// pgoReader walks a message's bytes; the first short read sets err and
// every later read returns zero values.
type pgoReader struct {
	kind byte
	b    []byte
	off  int
	err  error
}

func (r *pgoReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("pgoutput %s message: %s", msgName(r.kind), fmt.Sprintf(format, args...))
	}
}

func (r *pgoReader) need(n int, what string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("%s: needs %d bytes at offset %d, the message has %d", what, n, r.off, len(r.b))
		return false
	}
	return true
}

func (r *pgoReader) u8(what string) byte {
	if !r.need(1, what) {
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *pgoReader) u16(what string) uint16 {
	if !r.need(2, what) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *pgoReader) u32(what string) uint32 {
	if !r.need(4, what) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *pgoReader) u64(what string) uint64 {
	if !r.need(8, what) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

// str reads a NUL-terminated string.
func (r *pgoReader) str(what string) string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b[r.off:], 0)
	if i < 0 {
		r.fail("%s: no terminating NUL after offset %d", what, r.off)
		return ""
	}
	s := string(r.b[r.off : r.off+i])
	r.off += i + 1
	return s
}

// tuple reads TupleData. Values alias the message's bytes.
func (r *pgoReader) tuple(what string) []pgoValue {
	n := int(r.u16(what + " column count"))
	if r.err != nil {
		return nil
	}
	// Each column takes at least one byte: a count beyond what is left is
	// malformed, and checking it first bounds the allocation.
	if n > len(r.b)-r.off {
		r.fail("%s: %d columns but only %d bytes left", what, n, len(r.b)-r.off)
		return nil
	}
	vals := make([]pgoValue, n)
	for i := range vals {
		k := r.u8(what + " value kind")
		switch k {
		case 'n', 'u':
			vals[i].kind = k
		case 't', 'b':
			l := r.u32(what + " value length")
			if r.err == nil && uint64(l) > uint64(len(r.b)-r.off) {
				r.fail("%s: column %d: value of %d bytes but only %d left", what, i+1, l, len(r.b)-r.off)
			}
			if !r.need(int(l), what+" value") {
				return nil
			}
			vals[i] = pgoValue{kind: k, data: r.b[r.off : r.off+int(l)]}
			r.off += int(l)
		default:
			if r.err == nil {
				r.fail("%s: column %d: unknown value kind %q", what, i+1, k)
			}
		}
		if r.err != nil {
			return nil
		}
	}
	return vals
}

func (r *pgoReader) end() {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes left over after the message", len(r.b)-r.off)
	}
}

func msgName(k byte) string {
	switch k {
	case 'B':
		return "Begin"
	case 'C':
		return "Commit"
	case 'R':
		return "Relation"
	case 'I':
		return "Insert"
	case 'U':
		return "Update"
	case 'D':
		return "Delete"
	case 'T':
		return "Truncate"
	case 'O':
		return "Origin"
	case 'Y':
		return "Type"
	}
	return fmt.Sprintf("%q", k)
}

// decodePgoutput decodes one pgoutput message.
func decodePgoutput(b []byte) (pgoMsg, error) {
	if len(b) == 0 {
		return pgoMsg{}, fmt.Errorf("pgoutput message: empty")
	}
	r := &pgoReader{kind: b[0], b: b, off: 1}
	var m pgoMsg
	switch b[0] {
	case 'B':
		m.begin = &pgoBegin{finalLSN: lsn(r.u64("final LSN")), commitTime: int64(r.u64("commit time")), xid: r.u32("xid")}
	case 'C':
		flags := r.u8("flags")
		if r.err == nil && flags != 0 {
			r.fail("unknown flags %#x", flags)
		}
		m.commit = &pgoCommit{commitLSN: lsn(r.u64("commit LSN")), endLSN: lsn(r.u64("end LSN")), commitTime: int64(r.u64("commit time"))}
	case 'O':
		r.u64("origin LSN")
		r.str("origin name")
		m.skip = 'O'
	case 'Y':
		r.u32("type oid")
		r.str("type namespace")
		r.str("type name")
		m.skip = 'Y'
	case 'R':
		rel := &pgoRelation{oid: r.u32("relation oid"), namespace: r.str("namespace"), name: r.str("relation name"), identity: r.u8("replica identity")}
		n := int(r.u16("column count"))
		// A column takes at least 10 bytes (flags, NUL, type, typmod).
		if r.err == nil && n > (len(b)-r.off)/10 {
			r.fail("%d columns do not fit in the %d bytes left", n, len(b)-r.off)
		}
		if r.err == nil {
			rel.cols = make([]pgoColumn, n)
		}
		for i := range rel.cols {
			flags := r.u8("column flags")
			rel.cols[i] = pgoColumn{key: flags&1 != 0, name: r.str("column name"), typeOID: r.u32("column type"), typmod: int32(r.u32("column typmod"))}
		}
		m.relation = rel
	case 'I':
		c := &pgoChange{op: 'I', rel: r.u32("relation oid")}
		if k := r.u8("tuple marker"); r.err == nil && k != 'N' {
			r.fail("want new tuple marker 'N', got %q", k)
		}
		c.new = r.tuple("new tuple")
		m.change = c
	case 'U':
		c := &pgoChange{op: 'U', rel: r.u32("relation oid")}
		k := r.u8("tuple marker")
		if k == 'K' || k == 'O' {
			c.oldKind = k
			c.old = r.tuple("old tuple")
			k = r.u8("tuple marker")
		}
		if r.err == nil && k != 'N' {
			r.fail("want new tuple marker 'N', got %q", k)
		}
		c.new = r.tuple("new tuple")
		m.change = c
	case 'D':
		c := &pgoChange{op: 'D', rel: r.u32("relation oid")}
		k := r.u8("tuple marker")
		if r.err == nil && k != 'K' && k != 'O' {
			r.fail("want old tuple marker 'K' or 'O', got %q", k)
		}
		c.oldKind = k
		c.old = r.tuple("old tuple")
		m.change = c
	case 'T':
		n := r.u32("relation count")
		t := &pgoTruncate{options: r.u8("options")}
		if r.err == nil && uint64(n)*4 > uint64(len(b)-r.off) {
			r.fail("%d relations need %d bytes, %d left", n, uint64(n)*4, len(b)-r.off)
		}
		if r.err == nil {
			t.rels = make([]uint32, n)
		}
		for i := range t.rels {
			t.rels[i] = r.u32("relation oid")
		}
		m.truncate = t
	default:
		return pgoMsg{}, fmt.Errorf("pgoutput message: unknown kind %q (streamed, two-phase and logical messages are not requested)", b[0])
	}
	r.end()
	if r.err != nil {
		return pgoMsg{}, r.err
	}
	return m, nil
}

// ---- text values ----

// parseISODate reads "YYYY-MM-DD" with an optional " BC" (DateStyle ISO)
// into days since 1970-01-01; inf is +1/-1 for ±infinity.
func parseISODate(s string) (days int64, inf int, ok bool) {
	switch s {
	case "infinity":
		return 0, 1, true
	case "-infinity":
		return 0, -1, true
	}
	s, bc := strings.CutSuffix(s, " BC")
	y, m, d, ok := splitDate(s)
	if !ok {
		return 0, 0, false
	}
	if bc {
		y = 1 - y // 1 BC is year 0
	}
	return daysFromCivil(y, m, d), 0, true
}

// parseISOTimestamp reads a timestamp (withTZ false, taken as UTC, as the
// full load takes it) or timestamptz in DateStyle ISO, e.g.
// "2024-01-02 03:04:05.25+05:30" or "0044-03-15 12:00:00+05:53:28 BC",
// into µs since the Unix epoch.
func parseISOTimestamp(s string, withTZ bool) (us int64, inf int, ok bool) {
	switch s {
	case "infinity":
		return 0, 1, true
	case "-infinity":
		return 0, -1, true
	}
	s, bc := strings.CutSuffix(s, " BC")
	date, clock, found := strings.Cut(s, " ")
	if !found {
		return 0, 0, false
	}
	y, mo, d, ok := splitDate(date)
	if !ok {
		return 0, 0, false
	}
	if bc {
		y = 1 - y
	}
	var offset int64 // seconds east of UTC
	if withTZ {
		i := strings.LastIndexAny(clock, "+-")
		if i < 0 {
			return 0, 0, false
		}
		sign := int64(1)
		if clock[i] == '-' {
			sign = -1
		}
		var secs int64
		for k, part := range strings.Split(clock[i+1:], ":") {
			v, ok := digits(part, 2, 2)
			if !ok || k > 2 {
				return 0, 0, false
			}
			secs += v * [3]int64{3600, 60, 1}[k]
		}
		offset = sign * secs
		clock = clock[:i]
	}
	hms, frac, hasFrac := strings.Cut(clock, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, 0, false
	}
	h, ok1 := digits(parts[0], 2, 2)
	mi, ok2 := digits(parts[1], 2, 2)
	sec, ok3 := digits(parts[2], 2, 2)
	if !ok1 || !ok2 || !ok3 || h > 24 || mi > 59 || sec > 60 {
		return 0, 0, false
	}
	var micros int64
	if hasFrac {
		f, ok := digits(frac, 1, 6)
		if !ok {
			return 0, 0, false
		}
		for n := len(frac); n < 6; n++ {
			f *= 10
		}
		micros = f
	}
	secsOfDay := h*3600 + mi*60 + sec - offset
	return daysFromCivil(y, mo, d)*86_400_000_000 + secsOfDay*1_000_000 + micros, 0, true
}

// splitDate reads "Y-MM-DD" with a year of at least 4 digits.
func splitDate(s string) (y, m, d int64, ok bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	y, ok1 := digits(parts[0], 4, 7)
	m, ok2 := digits(parts[1], 2, 2)
	d, ok3 := digits(parts[2], 2, 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// digits reads between lo and hi decimal digits.
func digits(s string, lo, hi int) (int64, bool) {
	if len(s) < lo || len(s) > hi {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// daysFromCivil is the number of days from 1970-01-01 to a date of the
// proleptic Gregorian calendar (astronomical years: 0 is 1 BC), after
// Howard Hinnant's days_from_civil.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// decodeBytea reads bytea's text output, hex ("\x0aff") or escape format.
func decodeBytea(v []byte) ([]byte, bool) {
	if len(v) >= 2 && v[0] == '\\' && v[1] == 'x' {
		h := v[2:]
		if len(h)%2 != 0 {
			return nil, false
		}
		out := make([]byte, len(h)/2)
		for i := range out {
			hi, ok1 := unhex(h[2*i])
			lo, ok2 := unhex(h[2*i+1])
			if !ok1 || !ok2 {
				return nil, false
			}
			out[i] = hi<<4 | lo
		}
		return out, true
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			out = append(out, v[i])
			continue
		}
		switch {
		case i+1 < len(v) && v[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(v) && isOct(v[i+1]) && isOct(v[i+2]) && isOct(v[i+3]) && v[i+1] <= '3':
			out = append(out, (v[i+1]-'0')<<6|(v[i+2]-'0')<<3|(v[i+3]-'0'))
			i += 3
		default:
			return nil, false
		}
	}
	return out, true
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
