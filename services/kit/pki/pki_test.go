package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

// TestWriteDirAndReload: a second WriteDir keeps the CA and certificates;
// a certificate replaced on disk is served without a restart.
func TestWriteDirAndReload(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDir(dir, []string{"loader"}); err != nil {
		t.Fatal(err)
	}
	f := DirFiles(dir, "loader")
	ca1, _ := os.ReadFile(f.CA)
	if err := WriteDir(dir, []string{"loader", "extractor"}); err != nil {
		t.Fatal(err)
	}
	if ca2, _ := os.ReadFile(f.CA); !bytes.Equal(ca1, ca2) {
		t.Fatal("a second WriteDir made a new CA")
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v %v", st, err)
	}
	src, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := src.current()
	leaf, err := x509.ParseCertificate(first.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if ServiceName(leaf) != "loader" {
		t.Fatalf("service name %q", ServiceName(leaf))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: src.Pool(), DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	// Renew: remove and reissue; the source picks it up within a second.
	os.Remove(f.Cert)
	if err := WriteDir(dir, []string{"loader"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _ := src.current()
		if !bytes.Equal(c.Certificate[0], first.Certificate[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("renewed certificate not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(DirFiles(dir, "x")); err == nil {
		t.Fatal("loaded from an empty directory")
	}
	os.WriteFile(DirFiles(dir, "x").CA, []byte("not pem"), 0o600)
	if _, err := Load(DirFiles(dir, "x")); err == nil || !bytes.Contains([]byte(err.Error()), []byte("holds no certificate")) {
		t.Fatalf("got %v", err)
	}
}
