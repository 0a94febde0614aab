package clean

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// phone normalises a telephone number to E.164 ("+8613812345678") with
// Google's libphonenumber metadata (github.com/nyaruka/phonenumbers), so the
// numbering plans stay maintained upstream rather than hand-written here.
//
// Arguments:
//   - region: ISO 3166 region (CN, US, DE…) assumed for numbers written
//     without a country code; it also sets the international prefix that is
//     understood ("0086…" with CN, "011…" with US). Without it, only numbers
//     written with "+" are accepted.
//   - type: "any" (default) or "mobile" to refuse numbers that are not mobile.
//     Where the plan cannot tell mobile from fixed line (US/CA), a valid
//     number passes: refusing every US number would be worse than useless.
//
// The library allocates per parse; a phone column is not a hot enough path
// to justify reimplementing the numbering plans.
type phoneFunc struct {
	region     string
	mobileOnly bool
}

func init() { register("phone", compilePhone) }

func compilePhone(a *Args) (Func, error) {
	f := &phoneFunc{}
	if r := a.String("region", ""); r != "" {
		r = strings.ToUpper(strings.TrimSpace(r))
		if !phonenumbers.GetSupportedRegions()[r] {
			return nil, a.Errorf("region", "unknown region %q (want an ISO 3166 code such as CN, US, DE)", r)
		}
		f.region = r
	}
	t, err := a.OneOf("type", "any", "any", "mobile")
	if err != nil {
		return nil, err
	}
	f.mobileOnly = t == "mobile"
	return f, nil
}

// phoneChar reports whether r may appear in a written phone number. Letters
// are refused: vanity numbers and "ext." suffixes cannot be carried by E.164
// and legacy free text in a phone column is more often a note than a number.
func phoneChar(r rune) bool {
	switch r {
	case ' ', '-', '.', '(', ')', '/', '+',
		'\u00a0', '\u3000', // no-break and ideographic space
		'\uff0b', '\uff0d', '\uff0e', '\uff08', '\uff09', '\uff0f', // full-width + - . ( ) /
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212': // dashes and minus
		return true
	}
	return unicode.IsDigit(r)
}

func (f *phoneFunc) Apply(in, dst []byte) ([]byte, error) {
	s := strings.TrimFunc(string(in), unicode.IsSpace)
	if s == "" {
		return dst, badValue("empty phone number")
	}
	digits := 0
	for i, r := range s {
		if r == utf8.RuneError {
			return dst, badValue("invalid phone number %s: not valid UTF-8 at byte %d", quoteValue(in), i)
		}
		if !phoneChar(r) {
			return dst, badValue("invalid phone number %s: %q is not a phone number character", quoteValue([]byte(s)), r)
		}
		if unicode.IsDigit(r) {
			digits++
		}
	}
	if digits == 0 {
		return dst, badValue("invalid phone number %s: not a number (no digits)", quoteValue([]byte(s)))
	}
	region := f.region
	if region == "" {
		region = "ZZ" // unknown: the library then demands a leading '+'
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return dst, badValue("invalid phone number %s: %s", quoteValue([]byte(s)), f.parseReason(s, err))
	}
	if num.GetExtension() != "" {
		return dst, badValue("invalid phone number %s: has an extension, which E.164 cannot carry", quoteValue([]byte(s)))
	}
	where := phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
	if where == "" || where == "ZZ" || where == "001" {
		where = "+" + strconv.Itoa(int(num.GetCountryCode()))
	}
	switch phonenumbers.IsPossibleNumberWithReason(num) {
	case phonenumbers.IS_POSSIBLE:
	case phonenumbers.TOO_SHORT:
		return dst, badValue("invalid phone number %s: too short for %s", quoteValue([]byte(s)), where)
	case phonenumbers.TOO_LONG:
		return dst, badValue("invalid phone number %s: too long for %s", quoteValue([]byte(s)), where)
	case phonenumbers.INVALID_COUNTRY_CODE:
		return dst, badValue("invalid phone number %s: unknown country code %d", quoteValue([]byte(s)), num.GetCountryCode())
	default: // IS_POSSIBLE_LOCAL_ONLY, INVALID_LENGTH
		return dst, badValue("invalid phone number %s: wrong length for %s (a local number without its area code?)", quoteValue([]byte(s)), where)
	}
	if !phonenumbers.IsValidNumber(num) {
		return dst, badValue("invalid phone number %s: not a valid number for %s", quoteValue([]byte(s)), where)
	}
	if f.mobileOnly {
		switch phonenumbers.GetNumberType(num) {
		case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
		default:
			return dst, badValue("invalid phone number %s: not a mobile number", quoteValue([]byte(s)))
		}
	}
	return append(dst, phonenumbers.Format(num, phonenumbers.E164)...), nil
}

func (f *phoneFunc) parseReason(s string, err error) string {
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		if f.region == "" && !strings.ContainsAny(s, "+\uff0b") {
			return "no country code (write it as +<code>… or set the region argument)"
		}
		return "unknown country code"
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return "too short"
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return "too long"
	}
	return "not a number"
}
