package jobspec

import (
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/cutover/cutover/gen/cutover/common/v1"
)

// TestIfExistsDecision: which target tables must be empty, and what
// target.if_exists implies for the write modes and the backup.
func TestIfExistsDecision(t *testing.T) {
	const (
		ins = commonv1.WriteMode_WRITE_MODE_INSERT
		up  = commonv1.WriteMode_WRITE_MODE_UPSERT
		no  = commonv1.WriteMode_WRITE_MODE_UNSPECIFIED
	)
	type tbl struct {
		target string
		mode   commonv1.WriteMode
	}
	for _, tc := range []struct {
		name    string
		ifx     commonv1.IfExists
		redrive bool
		tables  []tbl
		empty   string // MustBeEmpty, joined
		modes   string // write modes after Normalize
		backup  bool
	}{
		{"default is fail, each target once", commonv1.IfExists_IF_EXISTS_UNSPECIFIED, false,
			[]tbl{{"a", no}, {"b", ins}, {"a", no}}, "a,b", "0,1,0", false},
		{"explicit fail", commonv1.IfExists_IF_EXISTS_FAIL, false, []tbl{{"a", no}}, "a", "0", false},
		{"upsert tables expect rows", commonv1.IfExists_IF_EXISTS_FAIL, false,
			[]tbl{{"a", up}, {"b", no}}, "b", "2,0", false},
		{"a target one spec inserts into is checked", commonv1.IfExists_IF_EXISTS_FAIL, false,
			[]tbl{{"a", up}, {"a", ins}, {"b", up}, {"b", up}}, "a", "2,1,2,2", false},
		{"re-drive appends", commonv1.IfExists_IF_EXISTS_FAIL, true, []tbl{{"a", no}}, "", "0", false},
		{"append", commonv1.IfExists_IF_EXISTS_APPEND, false, []tbl{{"a", no}}, "", "0", false},
		{"truncate takes a backup", commonv1.IfExists_IF_EXISTS_TRUNCATE, false, []tbl{{"a", no}}, "", "0", true},
		{"upsert fills unset write modes only", commonv1.IfExists_IF_EXISTS_UPSERT, false,
			[]tbl{{"a", no}, {"b", ins}, {"c", up}}, "", "2,1,2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &commonv1.JobSpec{Target: &commonv1.TargetSpec{Dsn: "postgres://h/db", IfExists: tc.ifx}}
			for i, x := range tc.tables {
				in.Tables = append(in.Tables, &commonv1.TableSpec{Name: string(rune('p' + i)), TargetTable: x.target, WriteMode: x.mode})
			}
			spec, err := Normalize(in, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(MustBeEmpty(spec, tc.redrive), ","); got != tc.empty {
				t.Errorf("MustBeEmpty = %q, want %q", got, tc.empty)
			}
			var modes []string
			for _, x := range spec.GetTables() {
				modes = append(modes, string(rune('0'+x.GetWriteMode())))
			}
			if got := strings.Join(modes, ","); got != tc.modes {
				t.Errorf("write modes = %s, want %s", got, tc.modes)
			}
			if spec.GetTarget().GetBackup() != tc.backup {
				t.Errorf("backup = %v, want %v", spec.GetTarget().GetBackup(), tc.backup)
			}
			if in.GetTarget().GetBackup() || (len(in.Tables) > 0 && tc.tables[0].mode == no && in.Tables[0].GetWriteMode() != no) {
				t.Errorf("Normalize changed its input")
			}
		})
	}

	_, err := Normalize(&commonv1.JobSpec{Target: &commonv1.TargetSpec{Dsn: "postgres://h/db", IfExists: 9},
		Tables: []*commonv1.TableSpec{{Name: "a", TargetTable: "a"}}}, "")
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "target.if_exists") {
		t.Errorf("unknown if_exists: %v", err)
	}
	err = NotEmpty("public", "orders", 25)
	if !errors.Is(err, ErrTargetMismatch) || !strings.Contains(err.Error(), "target table public.orders already holds 25 rows; set target.if_exists to append, truncate or upsert") {
		t.Errorf("NotEmpty = %v", err)
	}
}
