package sealbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const secret = "postgres://postgres:Pl4nted@127.0.0.1:5432/db"

func TestSealOpen(t *testing.T) {
	k := NewKey()
	box := New(k)
	sealed := box.Seal(secret)
	other := New(NewKey())
	// edit changes the sealed payload (after the prefix) and re-encodes it.
	edit := func(f func(raw []byte) []byte) string {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, Prefix))
		if err != nil {
			t.Fatal(err)
		}
		return Prefix + base64.RawURLEncoding.EncodeToString(f(raw))
	}
	// flip changes one byte of the payload (from the end when i < 0).
	flip := func(i int) string {
		return edit(func(raw []byte) []byte {
			if i < 0 {
				i += len(raw)
			}
			raw[i] ^= 0x01
			return raw
		})
	}
	for _, tc := range []struct {
		name  string
		box   *Box
		in    string
		want  string
		err   error
		cause string
	}{
		{name: "round trip", box: box, in: sealed, want: secret},
		{name: "empty plaintext", box: box, in: box.Seal(""), want: ""},
		{name: "unicode and NUL", box: box, in: box.Seal("pässwörd\x00✓"), want: "pässwörd\x00✓"},
		{name: "wrong key", box: other, in: sealed, err: ErrWrongKey},
		{name: "nonce altered", box: box, in: flip(0), err: ErrWrongKey},
		{name: "ciphertext altered", box: box, in: flip(nonceSize + 3), err: ErrWrongKey},
		{name: "tag altered", box: box, in: flip(-1), err: ErrWrongKey},
		{name: "truncated", box: box, in: edit(func(raw []byte) []byte { return raw[:len(raw)-1] }), err: ErrWrongKey},
		{name: "appended", box: box, in: edit(func(raw []byte) []byte { return append(raw, 0) }), err: ErrWrongKey},
		{name: "plain text", box: box, in: secret, err: ErrMalformed, cause: "prefix"},
		{name: "empty", box: box, in: "", err: ErrMalformed, cause: "prefix"},
		{name: "other version", box: box, in: "enc:v2:" + strings.TrimPrefix(sealed, Prefix), err: ErrMalformed, cause: "prefix"},
		{name: "prefix only", box: box, in: Prefix, err: ErrMalformed, cause: "shorter"},
		{name: "too short", box: box, in: Prefix + base64.RawURLEncoding.EncodeToString(make([]byte, nonceSize+15)), err: ErrMalformed, cause: "shorter"},
		{name: "not base64", box: box, in: Prefix + "!!!!" + strings.TrimPrefix(sealed, Prefix), err: ErrMalformed, cause: "base64"},
		{name: "padded", box: box, in: sealed + "=", err: ErrMalformed, cause: "base64"},
		{name: "standard alphabet", box: box, in: Prefix + strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimPrefix(box.Seal(strings.Repeat("?", 300)), Prefix)), err: ErrMalformed, cause: "base64"},
		{name: "newline inside", box: box, in: sealed[:20] + "\n" + sealed[20:], err: ErrMalformed, cause: "base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.box.Open(tc.in)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Open = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) || got != "" {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.cause) {
				t.Errorf("error %q does not say %q", err, tc.cause)
			}
			// The error quotes neither the value nor the secret.
			body := strings.TrimPrefix(tc.in, Prefix)
			if strings.Contains(err.Error(), "Pl4nted") || (len(body) > 8 && strings.Contains(err.Error(), body[:8])) {
				t.Errorf("error %q quotes its input", err)
			}
		})
	}
}

// Sealing is randomised (a fresh nonce each time) and hides the value.
func TestSealIsRandomAndHides(t *testing.T) {
	box := New(NewKey())
	a, b := box.Seal(secret), box.Seal(secret)
	if a == b {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	for _, s := range []string{a, b} {
		if !IsSealed(s) || strings.Contains(s, "Pl4nted") || strings.Contains(s, "127.0.0.1") {
			t.Fatalf("sealed value %q", s)
		}
	}
	if IsSealed(secret) {
		t.Fatal("a plain DSN looks sealed")
	}
}

func TestParseKey(t *testing.T) {
	k := NewKey()
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
		want []byte // default k
	}{
		{"raw", k[:], true, nil},
		{"hex", []byte(hex.EncodeToString(k[:])), true, nil},
		{"hex upper with newline", []byte(strings.ToUpper(hex.EncodeToString(k[:])) + "\n"), true, nil},
		{"hex with CRLF", []byte(hex.EncodeToString(k[:]) + "\r\n"), true, nil},
		{"base64", []byte(base64.StdEncoding.EncodeToString(k[:])), true, nil},
		{"base64 with newline", []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n"), true, nil},
		{"base64 unpadded", []byte(base64.RawStdEncoding.EncodeToString(k[:])), true, nil},
		{"base64url", []byte(base64.URLEncoding.EncodeToString(k[:]) + "\n"), true, nil},
		{"base64url unpadded", []byte(base64.RawURLEncoding.EncodeToString(k[:])), true, nil},
		{"empty", nil, false, nil},
		{"newline", []byte("\n"), false, nil},
		{"31 raw bytes", k[:31], false, nil},
		{"33 raw bytes", append(append([]byte{}, k[:]...), 7), false, nil},
		{"short hex", []byte(hex.EncodeToString(k[:31])), false, nil},
		{"long hex", []byte(hex.EncodeToString(append(append([]byte{}, k[:]...), 1))), false, nil},
		{"bad hex", []byte(strings.Repeat("zz", 32)), false, nil},
		{"base64 of 24 bytes", []byte(base64.StdEncoding.EncodeToString(k[:24]) + "\n"), false, nil},
		// Exactly 32 bytes are always a raw key, whatever they look like.
		{"32 characters are raw", []byte(base64.StdEncoding.EncodeToString(k[:24])), true, []byte(base64.StdEncoding.EncodeToString(k[:24]))},
		{"base64 of 48 bytes", []byte(base64.StdEncoding.EncodeToString(append(k[:], k[:16]...))), false, nil},
		{"passphrase", []byte("correct horse battery staple\n"), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.data)
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if len(tc.data) >= 8 && strings.Contains(err.Error(), strings.TrimSpace(string(tc.data))[:6]) {
					t.Errorf("error %q quotes the data", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = k[:]
			}
			if !bytes.Equal(got[:], want) {
				t.Fatal("a different key")
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.key")
	if _, err := LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: %v, want an error naming it", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("loading a missing key file created it")
	}
	if err := WriteKeyFile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Written again: the key stays.
	if err := WriteKeyFile(path); err != nil {
		t.Fatal(err)
	}
	k2, err := LoadKeyFile(path)
	if err != nil || k2 != k {
		t.Fatalf("second WriteKeyFile changed the key (err %v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".sealbox-key-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A file of the wrong size names the file, not its content.
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("hunter2-is-not-a-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(bad); err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad key file: %v", err)
	}
	// No such directory: an error, not a panic.
	if err := WriteKeyFile(filepath.Join(dir, "nope", "secret.key")); err == nil {
		t.Fatal("WriteKeyFile into a missing directory succeeded")
	}
}

// Processes starting together all end up with the one same key.
func TestWriteKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	keys := make([]Key, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = WriteKeyFile(path); errs[i] == nil {
				keys[i], errs[i] = LoadKeyFile(path)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		if keys[i] != keys[0] {
			t.Fatalf("writer %d read another key", i)
		}
	}
}

// A key never prints, whatever the verb, nor in slog.
func TestKeyDoesNotPrint(t *testing.T) {
	k := NewKey()
	hexKey := hex.EncodeToString(k[:])
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", k, "p", &k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %X %s %q %d", k, k, k, k, k, k, k, k), fmt.Sprintf("%x", &k), logged.String()} {
		if strings.Contains(strings.ToLower(s), hexKey[:8]) || strings.Contains(s, fmt.Sprint(k[0])+" "+fmt.Sprint(k[1])) {
			t.Fatalf("key printed: %s", s)
		}
	}
}

// FuzzOpen: Open never panics and never returns a value for input Seal
// did not write with this key.
func FuzzOpen(f *testing.F) {
	var k Key
	copy(k[:], "0123456789abcdef0123456789abcdef")
	box := New(k)
	f.Add(box.Seal(secret))
	f.Add(box.Seal(""))
	f.Add(Prefix)
	f.Add(Prefix + "AAAA")
	f.Add("enc:v1:!!")
	f.Add(secret)
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := box.Open(in)
		if err != nil {
			if got != "" {
				t.Fatalf("Open returned %q with error %v", got, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// It opened: then it must be a value sealed by this key, and
		// sealing the plaintext again must open to the same.
		if back, err := box.Open(box.Seal(got)); err != nil || back != got {
			t.Fatalf("re-seal of an opened value: %q, %v", back, err)
		}
	})
}
