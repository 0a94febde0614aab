package batch

import "testing"

func TestAppendSetArray(t *testing.T) {
	for in, want := range map[string]string{
		"": `{}`, "a": `{"a"}`, "a,b": `{"a","b"}`, "late payer,vip": `{"late payer","vip"}`,
		`q"t,b\s`: `{"q\"t","b\\s"}`, ",a": `{"","a"}`, "NULL": `{"NULL"}`, "{x}": `{"{x}"}`,
	} {
		if got := string(AppendSetArray([]byte("keep:"), []byte(in))); got != "keep:"+want {
			t.Errorf("AppendSetArray(%q) = %s, want keep:%s", in, got, want)
		}
	}
}
