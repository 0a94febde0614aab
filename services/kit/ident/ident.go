// Package ident derives new identifiers from (system, entity, old id).
// The derivation is part of the data contract: a rerun, a resumed job or a
// later job must give every record the same new id, so it never changes
// (a change would need a new "cutover-id/vN" domain, never an edit).
package ident

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// domain separates these digests from any other SHA-256 use of the same text.
const domain = "cutover-id/v1\x00"

// digest hashes the parts with NUL separators, so ("a","bc") and ("ab","c")
// differ (NUL cannot occur in the text columns ids come from).
func digest(system, entity, old string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte(system))
	h.Write([]byte{0})
	h.Write([]byte(entity))
	h.Write([]byte{0})
	h.Write([]byte(old))
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Int64 is a positive 63-bit identifier: the first 8 bytes of the digest,
// big-endian, shifted right by one; 0 becomes 1 so that 0 never means "id".
func Int64(system, entity, old string) int64 {
	d := digest(system, entity, old)
	v := int64(binary.BigEndian.Uint64(d[:8]) >> 1)
	if v == 0 {
		return 1
	}
	return v
}

// UUID is the first 16 bytes of the digest as a version-8 (custom) UUID with
// the RFC 4122 variant, lower-case 8-4-4-4-12.
func UUID(system, entity, old string) string {
	d := digest(system, entity, old)
	var u [16]byte
	copy(u[:], d[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10xx
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], u[10:16])
	return string(out[:])
}
