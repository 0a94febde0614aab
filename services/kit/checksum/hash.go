package checksum

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
)

// MD5Hex and Hex32 are the two functions SQLite lacks, for the extractor
// to register (as cutover_md5 and cutover_hex32): the same md5 as MySQL's
// and PostgreSQL's, over the text's UTF-8 bytes.
func MD5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Hex32 is the unsigned value of up to 8 hex digits; -1 for anything else
// (never produced by MD5Hex).
func Hex32(s string) int64 {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return -1
	}
	return int64(v)
}

// Hash60 is a row hash as the digests sum it: the value of its md5's first
// 15 hex digits (for SQLite's cutover_hsum).
func Hash60(md5hex string) uint64 {
	if len(md5hex) < 15 {
		return 0
	}
	v, _ := strconv.ParseUint(md5hex[:15], 16, 64)
	return v
}

// RowHash is a listed row's hash as the digests sum it.
func RowHash(md5hex string) int64 { return int64(Hash60(md5hex)) }
