package clean

//go:generate go run gen_divisions.go

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Address splitting.
//
// Design: a Func has one output, and a mapping spec gives each target column
// its own chain, so address_cn and address output ONE part chosen by the
// argument part (province|city|district|rest, or a group name). Four target
// columns use the same function with four part arguments. Each splits the
// value again; a split costs a few map lookups and prefix compares, far less
// than carrying a multi-output type through the spec, the chain and the
// transformer. Callers that want all parts at once use SplitCN.

// address_cn parts.
const (
	cnPartProvince = iota
	cnPartCity
	cnPartDistrict
	cnPartRest
)

var cnPartNames = []string{"province", "city", "district", "rest"}

type cnProvince struct {
	name, short  string
	municipality bool
	cities       []int
}

type cnCity struct {
	name     string
	province int
	// names are the full name then unambiguous short names and aliases.
	names []string
	// hasTable: districts lists ALL county-level divisions (possibly none,
	// as for 东莞市); without it districts are not bundled for this city.
	hasTable  bool
	districts []string
}

// cnName is one way to write a province or city, indexed by its first rune.
type cnName struct {
	text     string
	province int // -1 for a city
	city     int // -1 for a province
	short    bool
}

// cnIndex holds every province and city name by first rune, longest first,
// so the first match at a position is the longest.
var cnIndex = func() map[rune][]cnName {
	idx := map[rune][]cnName{}
	add := func(n cnName) {
		r, _ := utf8.DecodeRuneInString(n.text)
		idx[r] = append(idx[r], n)
	}
	for i, p := range cnProvinces {
		add(cnName{text: p.name, province: i, city: -1})
		add(cnName{text: p.short, province: i, city: -1, short: true})
	}
	for i, c := range cnCities {
		if cnProvinces[c.province].municipality {
			continue // reached through the province
		}
		for j, n := range c.names {
			add(cnName{text: n, province: -1, city: i, short: j > 0})
		}
	}
	for r := range idx {
		slices.SortStableFunc(idx[r], func(a, b cnName) int { return len(b.text) - len(a.text) })
	}
	return idx
}()

// shortStop reports whether r after a short name shows that the short name is
// only the start of a longer word: "长沙县" is a county, not 长沙市, and
// "北京路" is a street, not 北京市.
func shortStop(r rune) bool {
	return strings.ContainsRune("省市区县州盟旗路街道巷", r)
}

func matchName(s []byte, pos int, text string, short bool) bool {
	if !bytes.HasPrefix(s[pos:], []byte(text)) {
		return false
	}
	if short {
		if r, _ := utf8.DecodeRune(s[pos+len(text):]); shortStop(r) {
			return false
		}
	}
	return true
}

// cnSep: separators written between the parts of an address.
func cnSep(r rune) bool {
	return r == ' ' || r == '\t' || r == ',' || r == '、' || r == '\u00a0'
}

func skipSep(s []byte, pos int) int {
	for pos < len(s) {
		r, n := utf8.DecodeRune(s[pos:])
		if !cnSep(r) {
			break
		}
		pos += n
	}
	return pos
}

// District states.
const (
	distFound   = iota
	distNone    // the city has no county level (东莞市, 中山市)
	distMissing // the city's table is bundled and nothing in it matched
	distNoTable // the city's districts are not bundled
	distNoCity  // no city recognised
)

// cnSplit is the result of splitting; strings point into the tables and
// rest into the input, so splitting does not allocate.
type cnSplit struct {
	province, city int
	dist           int
	district       string
	rest           []byte
}

// splitCN splits s (already width-folded and trimmed). The error message is
// a complete quarantine reason.
func splitCN(s []byte) (cnSplit, error) {
	sp := cnSplit{province: -1, city: -1, dist: distNoCity}
	pos := skipSep(s, 0)
	if pos == len(s) {
		return sp, badValue("empty address")
	}
	r, _ := utf8.DecodeRune(s[pos:])
	var first *cnName
	for i, n := range cnIndex[r] {
		if matchName(s, pos, n.text, n.short) {
			first = &cnIndex[r][i]
			break
		}
	}
	if first == nil {
		if d := cnDistrictAt(s, pos); d != "" {
			return sp, badValue("no province or city recognised in %s (district %s alone does not say which city)", quoteValue(s), d)
		}
		return sp, badValue("no province or city recognised in %s", quoteValue(s))
	}
	pos = skipSep(s, pos+len(first.text))
	if first.city >= 0 {
		sp.city, sp.province = first.city, cnCities[first.city].province
	} else {
		sp.province = first.province
		p := &cnProvinces[sp.province]
		if p.municipality {
			sp.city = p.cities[0]
			// "北京市北京市朝阳区" and "北京北京市…": the city repeated.
			if matchName(s, pos, p.name, false) {
				pos = skipSep(s, pos+len(p.name))
			} else if matchName(s, pos, p.short, true) {
				pos = skipSep(s, pos+len(p.short))
			}
		} else {
		cities:
			for _, ci := range p.cities {
				for j, n := range cnCities[ci].names {
					if matchName(s, pos, n, j > 0) {
						sp.city = ci
						pos = skipSep(s, pos+len(n))
						break cities
					}
				}
			}
			if sp.city < 0 && pos < len(s) {
				r, _ := utf8.DecodeRune(s[pos:])
				for _, n := range cnIndex[r] {
					if n.city >= 0 && matchName(s, pos, n.text, n.short) {
						c := &cnCities[n.city]
						return sp, badValue("city %s is in %s, not in %s: %s", c.name, cnProvinces[c.province].name, p.name, quoteValue(s))
					}
				}
			}
		}
	}
	sp.rest = s[pos:]
	if sp.city < 0 {
		return sp, nil
	}
	c := &cnCities[sp.city]
	switch {
	case !c.hasTable:
		sp.dist = distNoTable
	case len(c.districts) == 0:
		sp.dist = distNone
	default:
		sp.dist = distMissing
		for _, d := range c.districts {
			if matchName(s, pos, d, false) {
				sp.dist, sp.district = distFound, d
				sp.rest = s[skipSep(s, pos+len(d)):]
				break
			}
		}
	}
	return sp, nil
}

// cnDistrictAt is the longest bundled district name at pos, for error
// messages only: a district is never used to infer its city, since several
// cities have one of that name (普陀区, 通州区, 鼓楼区, 朝阳区…) and most
// cities' tables are not bundled.
func cnDistrictAt(s []byte, pos int) string {
	best := ""
	for i := range cnCities {
		for _, d := range cnCities[i].districts {
			if len(d) > len(best) && matchName(s, pos, d, false) {
				best = d
			}
		}
	}
	return best
}

// CNAddress is a Chinese address split by SplitCN. Empty City or District
// means that level was not recognised (see the Err fields).
type CNAddress struct {
	Province, City, District, Rest string
	// CityErr and DistrictErr say why City or District is empty (nil for a
	// city with no county level, such as 东莞市).
	CityErr, DistrictErr error
}

// SplitCN splits a Chinese address into all its parts at once. The error
// (no province or city recognised, conflicting province and city) wraps
// ErrBadValue.
func SplitCN(addr string) (CNAddress, error) {
	buf := appendFoldWidth(nil, trimSpace([]byte(addr)))
	sp, err := splitCN(buf)
	if err != nil {
		return CNAddress{}, err
	}
	out := CNAddress{Province: cnProvinces[sp.province].name, Rest: string(sp.rest)}
	if out.City, out.CityErr = sp.cityName(buf); out.CityErr == nil {
		out.District, out.DistrictErr = sp.districtName(buf)
	} else {
		out.DistrictErr = out.CityErr
	}
	return out, nil
}

func (sp *cnSplit) cityName(s []byte) (string, error) {
	if sp.city >= 0 {
		return cnCities[sp.city].name, nil
	}
	p := &cnProvinces[sp.province]
	if len(p.cities) == 0 {
		return "", badValue("cities of %s are not bundled: %s", p.name, quoteValue(s))
	}
	return "", badValue("no city of %s recognised in %s", p.name, quoteValue(s))
}

func (sp *cnSplit) districtName(s []byte) (string, error) {
	switch sp.dist {
	case distFound:
		return sp.district, nil
	case distNone:
		return "", nil
	case distMissing:
		return "", badValue("no district of %s recognised in %s", cnCities[sp.city].name, quoteValue(s))
	case distNoTable:
		return "", badValue("districts of %s are not bundled: %s", cnCities[sp.city].name, quoteValue(s))
	}
	return sp.cityName(s)
}

// addressCNFunc outputs one part of a Chinese address: province, city,
// district (county-level division) or rest (what follows the last
// recognised part). Province and city come from the bundled table of all 34
// provincial-level and 333 prefecture-level divisions; districts are bundled
// for Beijing, Shanghai, Guangdong, Zhejiang and Jiangsu only.
type addressCNFunc struct{ part int }

func init() {
	register("address_cn", compileAddressCN)
	register("address", compileAddress)
}

func compileAddressCN(a *Args) (Func, error) {
	p, err := a.Required("part")
	if err != nil {
		return nil, err
	}
	i := slices.Index(cnPartNames, p)
	if i < 0 {
		return nil, a.Errorf("part", "want one of %s, got %q", strings.Join(cnPartNames, "|"), p)
	}
	return &addressCNFunc{part: i}, nil
}

func (f *addressCNFunc) Apply(in, dst []byte) ([]byte, error) {
	start := len(dst)
	dst = appendFoldWidth(dst, trimSpace(in))
	s := dst[start:]
	sp, err := splitCN(s)
	if err != nil {
		return dst[:start], err
	}
	var part string
	switch f.part {
	case cnPartProvince:
		part = cnProvinces[sp.province].name
	case cnPartCity:
		part, err = sp.cityName(s)
	case cnPartDistrict:
		part, err = sp.districtName(s)
	case cnPartRest:
		n := copy(dst[start:], sp.rest) // overlapping copy downwards is safe
		return dst[:start+n], nil
	}
	if err != nil {
		return dst[:start], err
	}
	return append(dst[:start], part...), nil
}

// addressFunc splits an address with a regular expression whose named
// groups are the parts, e.g.
// `^(?P<street>.+?),\s*(?P<city>[^,]+),\s*(?P<postcode>\d{5})$`, and
// outputs the group named by part, trimmed. A value the pattern does not
// match is an error; an optional group that did not take part is "".
type addressFunc struct {
	re    *regexp.Regexp
	group int
	part  string
}

func compileAddress(a *Args) (Func, error) {
	pat, err := a.Required("pattern")
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, a.Errorf("pattern", "%v", err)
	}
	var groups []string
	for _, n := range re.SubexpNames() {
		if n != "" {
			groups = append(groups, n)
		}
	}
	if len(groups) == 0 {
		return nil, a.Errorf("pattern", "has no named groups (write parts as (?P<name>...))")
	}
	part, err := a.Required("part")
	if err != nil {
		return nil, err
	}
	g := re.SubexpIndex(part)
	if g < 0 {
		return nil, a.Errorf("part", "pattern has no group %q (groups: %s)", part, strings.Join(groups, ", "))
	}
	return &addressFunc{re: re, group: g, part: part}, nil
}

func (f *addressFunc) Apply(in, dst []byte) ([]byte, error) {
	s := trimSpace(in)
	if len(s) == 0 {
		return dst, badValue("empty address")
	}
	m := f.re.FindSubmatchIndex(s)
	if m == nil {
		return dst, badValue("address %s does not match the pattern", quoteValue(s))
	}
	if m[2*f.group] < 0 {
		return dst, nil
	}
	return append(dst, trimSpace(s[m[2*f.group]:m[2*f.group+1]])...), nil
}
