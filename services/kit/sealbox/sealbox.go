// Package sealbox seals short secrets (DSN passwords) for storage at rest:
// AES-256-GCM with a random 12-byte nonce, written as
// "enc:v1:" + base64url(nonce | ciphertext). The key comes from a file, so
// that every replica sharing a store can open what another sealed.
//
// Nothing here ever puts a key, a plaintext or a sealed value into an
// error message: errors say what is wrong, not with what.
package sealbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Prefix starts every sealed value; the version lets the format change
// without guessing.
const Prefix = "enc:v1:"

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

const nonceSize = 12

// Errors of Open. Both hide the value they refused.
var (
	// ErrMalformed: the value is not one Seal writes (no prefix, not
	// base64url, too short).
	ErrMalformed = errors.New("sealbox: malformed sealed value")
	// ErrWrongKey: the value is well formed but does not open with this
	// key: it was sealed with another key, or altered. GCM cannot tell
	// the two apart.
	ErrWrongKey = errors.New("sealbox: sealed value does not open with this key (sealed with another key, or altered)")
)

// Key is an AES-256 key. It prints as a mask in every fmt verb and in
// slog, so that logging one by mistake leaks nothing.
type Key [KeySize]byte

// String hides the key.
func (Key) String() string { return "sealbox.Key(xxxxx)" }

// GoString hides the key from %#v.
func (k Key) GoString() string { return k.String() }

// Format hides the key from every verb (%x and %v of an array would print
// its bytes otherwise).
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue hides the key from slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// NewKey makes a random key (tests, a process's own key, a new key file).
func NewKey() Key {
	var k Key
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return k
}

// ParseKey reads a key as a key file holds it: 32 raw bytes, 64 hex
// characters, or base64 (standard or URL alphabet, padded or not) of 32
// bytes; text forms may end in a newline. Exactly 32 bytes are always
// taken raw, whatever they look like. The error never quotes data.
func ParseKey(data []byte) (Key, error) {
	var k Key
	if len(data) == KeySize {
		copy(k[:], data)
		return k, nil
	}
	text := string(bytes.TrimRight(data, " \t\r\n"))
	if len(text) == 2*KeySize {
		if b, err := hex.DecodeString(text); err == nil {
			copy(k[:], b)
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == KeySize {
			copy(k[:], b)
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("want %d raw bytes, %d hex characters or base64 of %d bytes; got %d bytes that are none of these",
		KeySize, 2*KeySize, KeySize, len(data))
}

// LoadKeyFile reads a key file (see ParseKey). A missing file is an error:
// a key is never made up where one was asked for. Errors name the file,
// never its content.
func LoadKeyFile(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err) // *PathError names the file
	}
	k, err := ParseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes a new random key to path (64 hex characters and a
// newline, mode 0600) unless a file is already there, which it leaves as
// it is. The file appears whole or not at all (written aside, then linked
// into place), so processes starting together never read half a key and
// never overwrite each other's.
func WriteKeyFile(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sealbox-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	k := NewKey()
	_, err = tmp.WriteString(hex.EncodeToString(k[:]) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("key file: %w", err)
	}
	return nil
}

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New returns a Box for key k.
func New(k Key) *Box {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // unreachable: a Key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // unreachable: standard nonce and tag sizes
	}
	return &Box{aead: aead}
}

// Seal encrypts plaintext under a fresh random nonce: sealing the same
// value twice gives different outputs.
func (b *Box) Seal(plaintext string) string {
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+b.aead.Overhead())
	_, _ = rand.Read(buf) // never fails
	buf = b.aead.Seal(buf, buf[:nonceSize], []byte(plaintext), nil)
	return Prefix + base64.RawURLEncoding.EncodeToString(buf)
}

// Open decrypts a value Seal wrote. It refuses anything else with
// ErrMalformed or ErrWrongKey, whose messages never quote the value.
func (b *Box) Open(sealed string) (string, error) {
	body, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return "", fmt.Errorf("%w: no %s prefix", ErrMalformed, Prefix)
	}
	// Seal writes unpadded base64url: padding, another alphabet, stray
	// bits or line breaks (which the decoder would skip) are not its output.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || strings.ContainsAny(body, "\r\n") {
		return "", fmt.Errorf("%w: not unpadded base64url", ErrMalformed)
	}
	if len(raw) < nonceSize+b.aead.Overhead() {
		return "", fmt.Errorf("%w: %d bytes, shorter than a nonce and a tag", ErrMalformed, len(raw))
	}
	plain, err := b.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], nil)
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}

// IsSealed says whether s looks like a sealed value (has the prefix);
// values stored before sealing began do not.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }
