package chaos

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// restClient watches jobs through the gateway, as an internal system
// would: HTTPS with the suite's CA and the admin token.
type restClient struct {
	base, token string
	hc          *http.Client
}

func newRESTClient(t *testing.T, st *stack) *restClient {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(st.tls, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(st.tls, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("ca.pem holds no certificate")
	}
	return &restClient{base: st.restURL, token: strings.TrimSpace(string(tok)),
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}}
}

// jobState is GET /v1/jobs/{id}: the job's state and error.
func (c *restClient) jobState(id string) (string, string, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+"/v1/jobs/"+url.PathEscape(id), nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.hc.Do(req)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET job %s: HTTP %d", id, res.StatusCode)
	}
	var body struct {
		Job struct {
			State string `json:"state"`
			Error string `json:"error"`
		} `json:"job"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return "", "", fmt.Errorf("GET job %s: %w", id, err)
	}
	return body.Job.State, body.Job.Error, nil
}

// mysqlVia rewrites a MariaDB DSN to pass through the "source" proxy.
func mysqlVia(t *testing.T, st *stack, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = st.link("source", cfg.Addr)
	return cfg.FormatDSN()
}
