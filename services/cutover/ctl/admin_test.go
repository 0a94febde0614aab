package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	orchestratorv1 "github.com/cutover/cutover/gen/cutover/orchestrator/v1"
	"github.com/cutover/cutover/services/cutover/internal/testenv"
	"github.com/cutover/cutover/services/kit/auth"
)

// TestListAuditDelete: list shows a finished job, audit shows who created
// it, a viewer may not read the audit log, delete removes the job.
func TestListAuditDelete(t *testing.T) {
	db := testenv.NewDB(t)
	db.Exec(ordersDDL)
	st := startStack(t, db)
	addr := st.Addrs.Orchestrator
	jobs := jobClient(t, addr)
	good := "id,customer,amount,status,day,note\n1,10,12.50,new,2023-01-05,a\n"
	id := createJob(t, jobs, ordersSpec(tempFile(t, "orders.csv", good)))
	if j := testenv.WaitJob(t, jobs, id, time.Minute); j.GetState() != orchestratorv1.JobState_JOB_STATE_SUCCEEDED {
		t.Fatalf("job: %v", j)
	}
	r := runCtl(t, "list", "--addr", addr, "--state", "succeeded")
	r.want(t, ExitOK)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Errorf("list:\n%s", r.stdout)
	}
	if r := runCtl(t, "list", "--addr", addr, "--state", "failed"); r.code != ExitOK || strings.Contains(r.stdout, id) {
		t.Errorf("list --state failed shows the succeeded job:\n%s", r.stdout)
	}
	r = runCtl(t, "audit", "--addr", addr, "--job", id)
	r.want(t, ExitOK)
	if !strings.Contains(r.stdout, "CreateJob") || !strings.Contains(r.stdout, "dev-admin") || !strings.Contains(r.stdout, "OK") {
		t.Errorf("audit:\n%s", r.stdout)
	}
	// A viewer's token: the audit log is refused (exit 2, named).
	viewer := auth.NewToken()
	f, err := os.OpenFile(filepath.Join(tlsDir, auth.TokensFileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(auth.TokenLine("vic", auth.RoleViewer, viewer) + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	time.Sleep(1100 * time.Millisecond) // the token file is re-read at most once a second
	t.Setenv("CUTOVER_TOKEN", viewer)
	r = runCtl(t, "audit", "--addr", addr)
	r.want(t, ExitUsage)
	if !strings.Contains(r.stderr, "role viewer may not call") {
		t.Errorf("viewer audit: %s", r.stderr)
	}
	if r := runCtl(t, "list", "--addr", addr); r.code != ExitOK || !strings.Contains(r.stdout, id) {
		t.Errorf("viewer list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCtl(t, "delete", "--addr", addr, id); r.code != ExitUsage {
		t.Errorf("viewer delete: exit %d", r.code)
	}
	t.Setenv("CUTOVER_TOKEN", "")
	r = runCtl(t, "delete", "--addr", addr, id)
	r.want(t, ExitOK)
	if !strings.Contains(r.stdout, "deleted "+id) {
		t.Errorf("delete:\n%s", r.stdout)
	}
	if r := runCtl(t, "list", "--addr", addr); strings.Contains(r.stdout, id) {
		t.Errorf("deleted job still listed:\n%s", r.stdout)
	}
	if n := db.Int(`SELECT count(*) FROM cutover.ledger WHERE job_id = $1`, id); n != 0 {
		t.Errorf("%d ledger rows of the deleted job remain", n)
	}
}
