package stack_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
	extractorv1 "github.com/cutover/cutover/gen/cutover/extractor/v1"
	loaderv1 "github.com/cutover/cutover/gen/cutover/loader/v1"
	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	transformerv1 "github.com/cutover/cutover/gen/cutover/transformer/v1"
	validatorv1 "github.com/cutover/cutover/gen/cutover/validator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
	"github.com/cutover/cutover/services/kit/auth"
	"github.com/cutover/cutover/services/kit/pki"
	"github.com/cutover/cutover/services/kit/server"
	"github.com/cutover/cutover/services/orchestrator/orchestrate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// secStack is a stack whose TLS directory the test holds, with a token
// per role, so calls can be made as each user and as each service.
type secStack struct {
	*stack.Stack
	dir    string
	tokens map[auth.Role]string
}

var roles = []auth.Role{auth.RoleAdmin, auth.RoleOperator, auth.RoleCI, auth.RoleViewer}

func startSecStack(t *testing.T, db *testenv.DB, roots []string) *secStack {
	t.Helper()
	dir := t.TempDir()
	if err := auth.WriteDevTokens(dir); err != nil {
		t.Fatal(err)
	}
	s := &secStack{dir: dir, tokens: map[auth.Role]string{}}
	f, err := os.OpenFile(filepath.Join(dir, auth.TokensFileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		s.tokens[r] = auth.NewToken()
		fmt.Fprintln(f, auth.TokenLine("user-"+string(r), r, s.tokens[r]))
	}
	f.Close()
	st, err := stack.Start(context.Background(), stack.Config{
		Addrs:        stack.EphemeralAddrs(),
		Orchestrator: orchestrate.Config{ControlURL: db.URL, DefaultTarget: db.URL, Workers: 2, Poll: 20 * time.Millisecond, TraceSink: traceSink},
		Grace:        5 * time.Second,
		TLSDir:       dir,
		FileRoots:    roots,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s.Stack = st
	return s
}

// rest calls the gateway with token ("" none) and returns status and body.
func (s *secStack) rest(t *testing.T, method, path, contentType, body, token string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.GatewayURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// asService dials addr with the named service's certificate.
func (s *secStack) asService(t *testing.T, addr, service string) *grpc.ClientConn {
	t.Helper()
	src, err := pki.Load(pki.DirFiles(s.dir, service))
	if err != nil {
		t.Fatal(err)
	}
	return dialWith(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(src.Client())))
}

// asUser dials addr over TLS with a bearer token ("" none).
func (s *secStack) asUser(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.CA}))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(token)))
	}
	return dialWith(t, addr, opts...)
}

func dialWith(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := server.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestSecurityREST is the method × role table on the gateway: each role
// gets exactly its rights; no token and a wrong token are 401.
func TestSecurityREST(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	s := startSecStack(t, db, testenv.FileRoots(t))
	csv := testenv.WriteFile(t, "orders.csv", "id,customer,amount,status,day,note\n1,10,1.00,new,2023-01-05,a\n")
	spec := `{"name":"sec","tables":[{"name":"orders","target_table":"orders","source":{"csv":{"path":"` + csv + `"}},
		"columns":[{"target":"id","source":"id"},{"target":"customer_id","source":"customer"},{"target":"status","source":"status"},{"target":"source","default":"x"}]}]}`
	code, body := s.rest(t, "POST", "/v1/jobs", "application/json", spec, s.Token)
	if code != 200 {
		t.Fatalf("admin create: %d %s", code, body)
	}
	done := testenv.WaitJob(t, orchestratorv1.NewJobServiceClient(s.asUser(t, s.Addrs.Orchestrator, s.Token)), jobIDFrom(t, body), time.Minute)
	id := done.GetId()
	type call struct{ method, path, body string }
	calls := map[string]call{
		"create":   {"POST", "/v1/jobs", spec},
		"list":     {"GET", "/v1/jobs", ""},
		"get":      {"GET", "/v1/jobs/" + id, ""},
		"report":   {"GET", "/v1/jobs/" + id + "/report.md", ""},
		"validate": {"POST", "/v1/validate", spec},
		"cancel":   {"POST", "/v1/jobs/" + id + ":cancel", "{}"},
		"audit":    {"GET", "/v1/audit", ""},
		"delete":   {"DELETE", "/v1/jobs/" + id, ""},
	}
	allowed := map[string][]auth.Role{
		"create":   {auth.RoleAdmin, auth.RoleOperator},
		"list":     roles,
		"get":      roles,
		"report":   roles,
		"validate": {auth.RoleAdmin, auth.RoleOperator, auth.RoleCI},
		"cancel":   {auth.RoleAdmin, auth.RoleOperator},
		"audit":    {auth.RoleAdmin},
		"delete":   {auth.RoleAdmin},
	}
	for _, name := range []string{"create", "list", "get", "report", "validate", "cancel", "audit", "delete"} {
		c := calls[name]
		for _, who := range append([]auth.Role{"nobody", "wrong"}, roles...) {
			if name == "delete" && who == auth.RoleAdmin {
				continue // done last, below: it removes the job the others read
			}
			tok := s.tokens[who]
			if who == "wrong" {
				tok = "cut_wrong"
			}
			code, body := s.rest(t, c.method, c.path, "application/json", c.body, tok)
			ok := false
			for _, r := range allowed[name] {
				ok = ok || r == who
			}
			// Allowed means the call got past authorisation: cancel of a
			// finished job is 400/409 (its state), not 401/403.
			switch {
			case who == "nobody" || who == "wrong":
				if code != http.StatusUnauthorized {
					t.Errorf("%s as %s: %d %.200s, want 401", name, who, code, body)
				}
			case ok && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s as %s: %d %.200s, want allowed", name, who, code, body)
			case !ok && code != http.StatusForbidden:
				t.Errorf("%s as %s: %d %.200s, want 403", name, who, code, body)
			}
		}
	}
	// The audit log holds the admin's create with the job, and the
	// viewer's refused cancel.
	code, body = s.rest(t, "GET", "/v1/audit?job_id="+id, "", "", s.Token)
	if code != 200 || !strings.Contains(body, "CreateJob") || !strings.Contains(body, "dev-admin") {
		t.Errorf("audit for %s: %d %.500s", id, code, body)
	}
	code, body = s.rest(t, "GET", "/v1/audit?principal=user-viewer", "", "", s.Token)
	if code != 200 || !strings.Contains(body, "CancelJob") || !strings.Contains(body, "PermissionDenied") {
		t.Errorf("audit of the viewer: %d %.500s", code, body)
	}
	if code, body := s.rest(t, "DELETE", "/v1/jobs/"+id, "", "", s.Token); code != 200 {
		t.Errorf("admin delete: %d %s", code, body)
	}
}

func jobIDFrom(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `"id":`)
	if i < 0 {
		t.Fatalf("no job id in %s", body)
	}
	rest := body[i+5:]
	rest = rest[strings.IndexByte(rest, '"')+1:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestSecurityStages: a stage answers the orchestrator's certificate and
// refuses every user token (even admin's), the gateway's certificate, no
// credentials and a certificate from another CA.
func TestSecurityStages(t *testing.T) {
	db := testenv.NewDB(t)
	s := startSecStack(t, db, testenv.FileRoots(t))
	foreign, err := pki.NewCA("elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	fcert, err := foreign.Issue("orchestrator")
	if err != nil {
		t.Fatal(err)
	}
	stages := []struct {
		name, addr string
		call       func(context.Context, *grpc.ClientConn) error
	}{
		{"extractor", s.Addrs.Extractor, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := extractorv1.NewExtractorServiceClient(cc).DescribeSource(ctx, &extractorv1.DescribeSourceRequest{})
			return err
		}},
		{"transformer", s.Addrs.Transformer, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := transformerv1.NewTransformerServiceClient(cc).CheckMapping(ctx, &transformerv1.CheckMappingRequest{})
			return err
		}},
		{"validator", s.Addrs.Validator, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := validatorv1.NewValidatorServiceClient(cc).CheckRules(ctx, &validatorv1.CheckRulesRequest{})
			return err
		}},
		{"loader", s.Addrs.Loader, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := loaderv1.NewLoaderServiceClient(cc).DescribeTarget(ctx, &loaderv1.DescribeTargetRequest{Table: "nope"})
			return err
		}},
	}
	for _, st := range stages {
		callers := map[string]*grpc.ClientConn{
			"orchestrator-cert": s.asService(t, st.addr, "orchestrator"),
			"gateway-cert":      s.asService(t, st.addr, "gateway"),
			"no-credentials":    s.asUser(t, st.addr, ""),
			"foreign-ca": dialWith(t, st.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.CA,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &fcert.TLS, nil }}))),
		}
		for _, r := range roles {
			callers["token-"+string(r)] = s.asUser(t, st.addr, s.tokens[r])
		}
		for who, cc := range callers {
			t.Run(st.name+"/"+who, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := st.call(ctx, cc)
				code := status.Code(err)
				if who == "orchestrator-cert" {
					// Past authorisation: the empty request may be invalid.
					if code == codes.Unauthenticated || code == codes.PermissionDenied || code == codes.Unavailable {
						t.Fatalf("orchestrator refused: %v", err)
					}
					return
				}
				if code != codes.Unauthenticated && code != codes.PermissionDenied && code != codes.Unavailable {
					t.Fatalf("want refused, got %v", err)
				}
			})
		}
	}
}

// TestSecurityFileRoots: no file outside the roots is read over REST,
// whether named absolutely, with .., or through a symlink inside a root,
// and the refusal says nothing about what exists on the host.
func TestSecurityFileRoots(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(`CREATE TABLE ft (id bigint PRIMARY KEY, v text)`)
	root := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ok.csv"), []byte("1,two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSecStack(t, db, []string{root})
	dry := func(path string) (int, string) {
		spec := `{"spec":{"name":"x","tables":[{"name":"t","target_table":"ft","source":{"csv":{"path":"` + path + `","no_header":true,"columns":["c1","c2"]}},
			"columns":[{"target":"id","source":"c1"},{"target":"v","source":"c2"}]}]},"rows":5}`
		return s.rest(t, "POST", "/v1/dryrun", "application/json", spec, s.Token)
	}
	var refusals []string
	for _, p := range []string{"/etc/passwd", "/etc/shadow", "../../../../../../etc/passwd", root + "/../../../../etc/passwd",
		filepath.Join(root, "link.csv"), "link.csv", "/etc", "/nonexistent/file.csv", filepath.Join(root, "missing.csv")} {
		code, body := dry(p)
		// A dry run answers 200 with the problems it found.
		if code != 200 || !strings.Contains(body, "is not a readable file inside the configured file roots") ||
			strings.Contains(body, "root:") || strings.Contains(body, "daemon") || strings.Contains(body, "sample") {
			t.Errorf("dry run of %q: %d %.300s", p, code, body)
		}
		for _, leak := range []string{"does not exist", "no such file", "is a directory", "permission denied", "not a database"} {
			if strings.Contains(strings.ToLower(body), leak) {
				t.Errorf("dry run of %q tells %q: %.300s", p, leak, body)
			}
		}
		body = strings.ReplaceAll(body, p, "PATH")
		if i := strings.Index(body, `"spec_hash"`); i >= 0 {
			body = body[:i] // the hash is of the spec, which names the path
		}
		refusals = append(refusals, body)
	}
	for _, r := range refusals[1:] {
		if r != refusals[0] {
			t.Errorf("refusals differ, telling files apart:\n%s\n%s", refusals[0], r)
		}
	}
	if code, body := dry("ok.csv"); code != 200 || strings.Contains(body, "problems") || !strings.Contains(body, "two") {
		t.Errorf("a file inside the root: %d %.300s", code, body)
	}
}

// TestSecurityProductSchemas: no job may target the product's own tables.
func TestSecurityProductSchemas(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	s := startSecStack(t, db, testenv.FileRoots(t))
	jobs := orchestratorv1.NewJobServiceClient(s.asUser(t, s.Addrs.Orchestrator, s.Token))
	csv := testenv.WriteFile(t, "x.csv", "id,v\n1,a\n")
	for _, target := range []struct{ schema, table string }{
		{"cutover", "lineage"}, {"cutover", "ledger"}, {"cutover", "quarantine"}, {"", "cutover.lineage"},
		{"cutover_control", "jobs"}, {"cutover_control", "audit"}, {"", "cutover_control.jobs"}, {"pg_catalog", "pg_class"}, {"CUTOVER", "ledger"},
	} {
		spec := &commonv1.JobSpec{Name: "evil", Target: &commonv1.TargetSpec{Schema: target.schema},
			Tables: []*commonv1.TableSpec{{Name: "t", TargetTable: target.table,
				Source:  &commonv1.SourceSpec{Kind: &commonv1.SourceSpec_Csv{Csv: &commonv1.CsvSource{Path: csv}}},
				Columns: []*commonv1.ColumnMapping{{Target: "id", Source: "id"}}}}}
		_, err := jobs.CreateJob(context.Background(), &orchestratorv1.CreateJobRequest{Spec: spec})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("target %s.%s: %v, want InvalidArgument", target.schema, target.table, err)
		}
	}
	if n := db.Int(`SELECT count(*) FROM cutover_control.jobs WHERE name = 'evil'`); n != 0 {
		t.Errorf("%d refused jobs stored", n)
	}
}

// TestSecurityBrowserAndLimits: a 50 MB body is 413 and the job list stays
// usable; a cross-site text/plain POST and a foreign Host are refused.
func TestSecurityBrowserAndLimits(t *testing.T) {
	db := testenv.NewDB(t)
	s := startSecStack(t, db, testenv.FileRoots(t))
	big := `{"name":"` + strings.Repeat("x", 50<<20) + `","tables":[]}`
	if code, body := s.rest(t, "POST", "/v1/jobs", "application/json", big, s.Token); code != http.StatusRequestEntityTooLarge {
		t.Errorf("50 MB body: %d %.200s, want 413", code, body)
	}
	if code, body := s.rest(t, "GET", "/v1/jobs", "", "", s.Token); code != 200 {
		t.Errorf("job list after a 50 MB body: %d %.200s", code, body)
	}
	if code, body := s.rest(t, "POST", "/v1/jobs", "text/plain", `{"name":"x"}`, s.Token, "Origin", "https://evil.example"); code < 400 {
		t.Errorf("cross-site text/plain POST: %d %.200s", code, body)
	}
	if code, body := s.rest(t, "POST", "/v1/validate", "application/json", `{}`, s.Token, "Origin", "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin JSON POST: %d %.200s, want 403", code, body)
	}
	if code, body := s.rest(t, "GET", "/v1/jobs", "", "", s.Token, "Host", "rebind.evil.example"); code < 400 {
		t.Errorf("foreign Host: %d %.200s", code, body)
	}
	if code, _ := s.rest(t, "GET", "/", "", "", "", "Host", "rebind.evil.example"); code < 400 {
		t.Errorf("dashboard under a foreign Host: %d", code)
	}
}

// TestSecurityPlantedPassword: a password in a source and a target DSN
// shows in no response, log line, span, report or control-schema row.
func TestSecurityPlantedPassword(t *testing.T) {
	const secret = "Pl4nted-s3cret-PW"
	var logs lockedBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	legacy := testenv.NewDB(t)
	legacy.Exec(`CREATE TABLE src (id bigint PRIMARY KEY, customer bigint, status text)`,
		`INSERT INTO src SELECT g, g, 'new' FROM generate_series(1, 20) g`)
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	s := startSecStack(t, db, testenv.FileRoots(t))
	withPW := func(raw string) string {
		u, _ := url.Parse(raw)
		u.User = url.UserPassword("postgres", secret) // trust auth ignores it
		return u.String()
	}
	spec := `{"name":"planted","target":{"dsn":"` + withPW(db.URL) + `"},"tables":[{"name":"orders","target_table":"orders",
		"source":{"postgres":{"dsn":"` + withPW(legacy.URL) + `","table":"src"}},
		"columns":[{"target":"id","source":"id"},{"target":"customer_id","source":"customer"},{"target":"status","source":"status"},{"target":"source","default":"x"}]}]}`
	var responses []string
	do := func(method, path, body string) string {
		code, out := s.rest(t, method, path, "application/json", body, s.Token)
		responses = append(responses, fmt.Sprintf("%s %s → %d %s", method, path, code, out))
		return out
	}
	do("POST", "/v1/validate", spec)
	do("POST", "/v1/dryrun", `{"spec":`+spec+`,"rows":3}`)
	id := jobIDFrom(t, do("POST", "/v1/jobs", spec))
	job := testenv.WaitJob(t, orchestratorv1.NewJobServiceClient(s.asUser(t, s.Addrs.Orchestrator, s.Token)), id, time.Minute)
	if job.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job: %v %s", job.GetState(), job.GetError())
	}
	for _, p := range []string{"/v1/jobs/" + id, "/v1/jobs", "/v1/jobs/" + id + "/report", "/v1/jobs/" + id + "/report.md",
		"/v1/jobs/" + id + "/report.html", "/v1/jobs/" + id + ":watch", "/v1/audit"} {
		do("GET", p, "")
	}
	do("POST", "/v1/jobs/"+id+":reconcile", "{}")
	// A connection that fails mentions the DSN too.
	bad := strings.Replace(spec, withPW(legacy.URL), withPW("postgres://127.0.0.1:1/nope"), 1)
	do("POST", "/v1/validate", bad)

	for _, r := range responses {
		if strings.Contains(r, secret) {
			t.Errorf("response carries the password: %.400s", r)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("a log line carries the password")
	}
	if b, err := os.ReadFile(traceSink); err != nil || bytes.Contains(b, []byte(secret)) {
		t.Errorf("spans carry the password (or cannot be read: %v)", err)
	}
	for _, schema := range []string{"cutover_control", "cutover"} {
		for _, tbl := range db.Strings(`SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1`, schema) {
			n := db.Int(fmt.Sprintf(`SELECT count(*) FROM %s.%s t WHERE t::text LIKE '%%' || $1 || '%%'`, schema, tbl), secret)
			if n > 0 {
				t.Errorf("%s.%s: %d rows carry the password", schema, tbl, n)
			}
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
