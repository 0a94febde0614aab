package config

import (
	"flag"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"listen":      "CUTOVER_LISTEN",
		"control-url": "CUTOVER_CONTROL_URL",
		"a.b-c":       "CUTOVER_A_B_C",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Setenv("CUTOVER_LISTEN", "127.0.0.1:9999")
	t.Setenv("CUTOVER_WORKERS", "7")
	t.Setenv("CUTOVER_GRACE", "3s")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	listen := String(fs, "listen", "127.0.0.1:1", "")
	workers := Int(fs, "workers", 1, "")
	grace := Duration(fs, "grace", time.Second, "")
	other := String(fs, "other", "dflt", "")
	if err := fs.Parse([]string{"-workers=9"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9999" || *workers != 9 || *grace != 3*time.Second || *other != "dflt" {
		t.Fatalf("got listen=%s workers=%d grace=%s other=%s", *listen, *workers, *grace, *other)
	}
}
