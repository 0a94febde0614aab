package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files name a service's CA bundle, certificate and key.
type Files struct{ CA, Cert, Key string }

// DirFiles are the files `cutover certs` writes for service in dir.
func DirFiles(dir, service string) Files {
	return Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, service+".pem"), Key: filepath.Join(dir, service+"-key.pem")}
}

// WriteDir makes a development CA in dir (or reuses the one there) and a
// certificate for each service that has none yet. Keys are written 0600.
func WriteDir(dir string, services []string, hosts ...string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caFile, caKeyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	var ca *CA
	if certPEM, err := os.ReadFile(caFile); err == nil {
		keyPEM, err := os.ReadFile(caKeyFile)
		if err != nil {
			return fmt.Errorf("%s exists but its key %s cannot be read: %w", caFile, caKeyFile, err)
		}
		cert, err := parseCert(certPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", caFile, err)
		}
		key, err := parseCAKey(keyPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", caKeyFile, err)
		}
		ca = &CA{Cert: cert, Key: key, CertPEM: certPEM}
	} else if errors.Is(err, fs.ErrNotExist) {
		if ca, err = NewCA("cutover development CA"); err != nil {
			return err
		}
		kder, err := x509.MarshalECPrivateKey(ca.Key)
		if err != nil {
			return err
		}
		if err := writeNew(caKeyFile, pemBlock("EC PRIVATE KEY", kder), 0o600); err != nil {
			return err
		}
		if err := writeNew(caFile, ca.CertPEM, 0o644); err != nil {
			return err
		}
	} else {
		return err
	}
	for _, s := range services {
		f := DirFiles(dir, s)
		if _, err := os.Stat(f.Cert); err == nil {
			continue
		}
		is, err := ca.Issue(s, hosts...)
		if err != nil {
			return err
		}
		if err := writeNew(f.Key, is.KeyPEM, 0o600); err != nil {
			return err
		}
		if err := writeNew(f.Cert, is.CertPEM, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeNew writes through a temporary file and a rename, so a reader never
// sees half a file.
func writeNew(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Source hands out a service's TLS configurations. The CA pool is read once;
// the certificate and key are read again when either file changes, so a
// renewed certificate is used without a restart.
type Source struct {
	pool  *x509.CertPool
	files Files // empty for an in-memory source

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// Load reads f; every file must exist and the pair must match.
func Load(f Files) (*Source, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA bundle %s holds no certificate", f.CA)
	}
	s := &Source{pool: pool, files: f}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Memory is a source from an issued certificate, for the embedded stack.
func Memory(ca *CA, cert *Issued) *Source {
	c := cert.TLS
	return &Source{pool: ca.Pool(), cert: &c}
}

// RootsOnly is a client source that verifies servers against the CA bundle
// and presents no certificate (a user calling with a bearer token).
func RootsOnly(caFile string) (*Source, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA bundle %s holds no certificate", caFile)
	}
	return &Source{pool: pool}, nil
}

func (s *Source) reload() error {
	stamp := fileStamp(s.files.Cert) + "|" + fileStamp(s.files.Key)
	if s.cert != nil && stamp == s.stamp {
		return nil
	}
	c, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("load certificate: %w", err)
	}
	s.cert, s.stamp = &c, stamp
	return nil
}

func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprint(st.ModTime().UnixNano(), st.Size())
}

// current is the certificate to present, re-read from disk at most once a
// second when the files changed; a failed re-read keeps the previous one
// (a renewal caught half-written is picked up on the next check).
func (s *Source) current() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files.Cert != "" && time.Since(s.checked) > time.Second {
		s.checked = time.Now()
		_ = s.reload()
	}
	if s.cert == nil {
		return nil, errors.New("no certificate loaded")
	}
	return s.cert, nil
}

// Pool is the CA pool peers are verified against.
func (s *Source) Pool() *x509.CertPool { return s.pool }

// Server is the configuration for a listener: a client certificate is
// verified when given (services present one; users may instead send a
// bearer token, checked by the auth interceptor).
func (s *Source) Server() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      s.pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.current() },
	}
}

// Client is the configuration for dialing a peer, presenting this source's
// certificate when it has one.
func (s *Source) Client() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.pool}
	if s.cert != nil || s.files.Cert != "" {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.current() }
	}
	return c
}

// HTTPS is the configuration for the gateway's REST listener: browsers and
// curl present no client certificate, so none is asked for.
func (s *Source) HTTPS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.current() },
	}
}
