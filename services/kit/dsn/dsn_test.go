package dsn

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://u:s3cret@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?password=s3cret&sslmode=disable", "postgres://h/db?password=xxxxx&sslmode=disable"},
		{"host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='s3 cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"postgres://u:s3cret@h:bad port/db", "postgres://xxxxx@h:bad port/db"},
		{"root:s3cret@tcp(127.0.0.1:3306)/legacy?parseTime=true", "root:xxxxx@tcp(127.0.0.1:3306)/legacy?parseTime=true"},
		{"root:s3c@ret@tcp(h)/db", "root:xxxxx@tcp(h)/db"},
		{"root@tcp(127.0.0.1:3306)/legacy", "root@tcp(127.0.0.1:3306)/legacy"},
		{"root:s3cret@/legacy", "root:xxxxx@/legacy"},
		{"mysql://root:s3cret@127.0.0.1:3306/legacy", "mysql://root:xxxxx@127.0.0.1:3306/legacy"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) leaks the password: %q", tt.in, got)
		}
	}
}
