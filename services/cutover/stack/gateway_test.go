package stack_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/cutover/stack"
)

// httpDo calls the stack's gateway over HTTPS with token; "" sends the
// stack's admin token, noToken none.
func httpDo(t *testing.T, st *stack.Stack, method, u, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch token {
	case "":
		req.Header.Set("Authorization", "Bearer "+st.Token)
	case noToken:
	default:
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := st.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// httpGet is a GET as the stack's admin, for reading a response as it comes.
func httpGet(st *stack.Stack, u string) (*http.Response, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+st.Token)
	return st.HTTPClient().Do(req)
}

// TestREST drives the migration API the way curl would: create a job from
// a JSON spec, watch it, read it and its report; bad specs are 400 naming
// the field, unknown jobs 404; DSN passwords never come back.
func TestREST(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st, _ := startStack(t, db)
	base := st.GatewayURL()
	csv := testenv.WriteFile(t, "orders.csv", badCSV)
	// Trust auth ignores the password, so it can stand in for a real secret.
	u, _ := url.Parse(db.URL)
	u.User = url.UserPassword("postgres", "s3cretpw")
	spec := `{"name":"rest","batch_size":4,"target":{"dsn":"` + u.String() + `"},"tables":[{"name":"orders","target_table":"orders",
		"source":{"csv":{"path":"` + csv + `"}},
		"columns":[{"target":"id","source":"id"},{"target":"customer_id","source":"customer"},{"target":"amount","source":"amount"},
			{"target":"status","source":"status"},{"target":"source","default":"rest"}]}]}`

	code, body := httpDo(t, st, "POST", base+"/v1/jobs", spec, "")
	if code != http.StatusOK {
		t.Fatalf("POST /v1/jobs = %d %s", code, body)
	}
	var created struct {
		Job struct {
			ID   string          `json:"id"`
			Spec json.RawMessage `json:"spec"`
		} `json:"job"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Job.ID == "" {
		t.Fatalf("create response %s: %v", body, err)
	}
	id := created.Job.ID

	// Watch streams progress as JSON lines until the job ends.
	res, err := httpGet(st, base+"/v1/jobs/"+id+":watch")
	if err != nil {
		t.Fatal(err)
	}
	var last string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines := 0
	for sc.Scan() {
		last = sc.Text()
		lines++
	}
	res.Body.Close()
	if lines == 0 || !strings.Contains(last, `"JOB_STATE_SUCCEEDED"`) {
		t.Fatalf("watch gave %d lines, last %s", lines, last)
	}

	code, body = httpDo(t, st, "GET", base+"/v1/jobs/"+id, "", "")
	if code != http.StatusOK || !strings.Contains(body, `"loaded":"7"`) || !strings.Contains(body, `"quarantined":"3"`) {
		t.Fatalf("GET job = %d %s", code, body)
	}
	code, body = httpDo(t, st, "GET", base+"/v1/jobs/"+id+"/report", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"balanced":true`) || !strings.Contains(body, `"trace_id"`) ||
		!strings.Contains(body, `"stage":"extractor"`) || !strings.Contains(body, `"stage":"loader"`) {
		t.Fatalf("GET report = %d %s", code, body)
	}
	// The report rendered for people, and the 404 of an unknown job.
	for _, tt := range []struct {
		path, contentType string
		code              int
		want              []string
	}{
		{"/v1/jobs/" + id + "/report.md", "text/markdown; charset=utf-8", http.StatusOK, []string{id, "balanced", "| orders |"}},
		{"/v1/jobs/" + id + "/report.html", "text/html; charset=utf-8", http.StatusOK, []string{id, "balanced", "<td>orders</td>"}},
		{"/v1/jobs/nope/report.md", "text/plain; charset=utf-8", http.StatusNotFound, []string{"nope", "not found"}},
		{"/v1/jobs/nope/report.html", "text/plain; charset=utf-8", http.StatusNotFound, []string{"nope", "not found"}},
	} {
		res, err := httpGet(st, base+tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || res.Header.Get("Content-Type") != tt.contentType {
			t.Fatalf("GET %s = %d %s %.300s, want %d %s", tt.path, res.StatusCode, res.Header.Get("Content-Type"), b, tt.code, tt.contentType)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("GET %s lacks %q:\n%s", tt.path, w, b)
			}
		}
		if strings.Contains(string(b), "s3cretpw") {
			t.Errorf("GET %s leaks the DSN password", tt.path)
		}
	}
	// Lineage both ways: a loaded target row, a quarantined source row
	// (the system defaults to the table spec's name), a bad question.
	code, body = httpDo(t, st, "GET", base+"/v1/jobs/"+id+"/lineage?target_table=orders&target_key=id%3D7", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"source_ref":"line 8"`) || !strings.Contains(body, `"outcome":"loaded"`) ||
		!strings.Contains(body, `"spec_hash"`) {
		t.Fatalf("GET lineage of orders id=7 = %d %s", code, body)
	}
	code, body = httpDo(t, st, "GET", base+"/v1/jobs/"+id+"/lineage?system=orders&source_ref=line%204", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"outcome":"quarantined"`) || !strings.Contains(body, `"rule":"cast"`) || !strings.Contains(body, "abc") {
		t.Fatalf("GET lineage of line 4 = %d %s", code, body)
	}
	code, body = httpDo(t, st, "GET", base+"/v1/jobs/"+id+"/lineage?target_table=orders", "", "")
	if code != http.StatusBadRequest || !strings.Contains(body, "target_key") {
		t.Fatalf("GET lineage without a key = %d %s", code, body)
	}
	code, body = httpDo(t, st, "GET", base+"/v1/jobs", "", "")
	if code != http.StatusOK || !strings.Contains(body, id) {
		t.Fatalf("GET /v1/jobs = %d %s", code, body)
	}
	for _, b := range []string{body} {
		if strings.Contains(b, "s3cretpw") {
			t.Fatalf("a response leaks the DSN password: %s", b)
		}
	}
	if strings.Contains(string(created.Job.Spec), "s3cretpw") {
		t.Fatalf("create response leaks the DSN password")
	}

	bad := strings.Replace(spec, `"source":"amount"`, `"source":"amout"`, 1)
	code, body = httpDo(t, st, "POST", base+"/v1/jobs", bad, "")
	if code != http.StatusBadRequest || !strings.Contains(body, "amout") || !strings.Contains(body, "tables[0].columns[2].source") {
		t.Fatalf("unknown column: %d %s, want 400 naming the column", code, body)
	}
	code, body = httpDo(t, st, "POST", base+"/v1/jobs", `{"tabels": []}`, "")
	if code != http.StatusBadRequest || !strings.Contains(body, "tabels") {
		t.Fatalf("unknown field: %d %s, want 400 naming it", code, body)
	}
	code, body = httpDo(t, st, "POST", base+"/v1/jobs", `{"tables": 5}`, "")
	if code != http.StatusBadRequest || !strings.Contains(body, "line 1:12") {
		t.Fatalf("malformed body: %d %s, want 400 with the position", code, body)
	}
	code, body = httpDo(t, st, "GET", base+"/v1/jobs/nope", "", "")
	if code != http.StatusNotFound || !strings.Contains(body, "nope") {
		t.Fatalf("GET /v1/jobs/nope = %d %s, want 404", code, body)
	}
	code, _ = httpDo(t, st, "POST", base+"/v1/jobs/"+id+":cancel", "{}", "")
	if code != http.StatusBadRequest {
		t.Fatalf("cancel of a finished job = %d, want 400", code)
	}
	code, body = httpDo(t, st, "GET", base+"/openapi.json", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"/v1/jobs/{id}/report"`) {
		t.Fatalf("openapi = %d %.200s", code, body)
	}
}

const noToken = "-"

// TestRESTToken: /v1/ needs a known token; health does not.
func TestRESTToken(t *testing.T) {
	db := testenv.NewDB(t)
	st, _ := startStack(t, db)
	base := st.GatewayURL()
	if code, _ := httpDo(t, st, "GET", base+"/v1/jobs", "", noToken); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := httpDo(t, st, "GET", base+"/v1/jobs", "", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code, body := httpDo(t, st, "GET", base+"/v1/jobs", "", st.Token); code != http.StatusOK {
		t.Fatalf("right token: %d %s", code, body)
	}
	if code, _ := httpDo(t, st, "GET", base+"/healthz", "", noToken); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}
