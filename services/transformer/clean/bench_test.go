package clean

import "testing"

// BenchmarkChain is a typical column: trim, full-width to ASCII, then a
// date with three candidate formats.
func BenchmarkChain(b *testing.B) {
	c, err := CompileChain([]Step{
		{Name: "trim"}, {Name: "halfwidth"},
		{Name: "date", Args: fm("formats", "YYYY-MM-DD|DD/MM/YYYY|YYYY年M月D日")},
	})
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(" ２０２３年１月５日 ")
	dst := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Apply(in, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFuncs(b *testing.B) {
	cases := []struct {
		name, fn string
		args     map[string]string
		in       string
	}{
		{"trim", "trim", nil, "  a note of moderate length  "},
		{"lower", "lower", nil, "A Note Of Moderate Length"},
		{"date_iso", "date", fm("formats", "YYYY-MM-DD"), "2024-05-17"},
		{"timestamptz", "date", fm("formats", "YYYY-MM-DD HH:mm:ss", "out", "timestamptz", "tz", "Asia/Shanghai"), "2024-05-17 13:45:10"},
		{"scale", "scale", fm("by", "-2"), "1234567"},
		{"round", "round", fm("places", "2", "mode", "half_even"), "12345.675"},
		{"convert", "convert", fm("to", "CNY", "rates", testRates), "1234.56 USD@2023-08-01"},
		{"map", "map", fm("table", "new=N|paid=P|shipped=S", "ci", "true"), "Paid"},
	}
	for _, c := range cases {
		f := mustCompile(b, c.fn, c.args)
		in := []byte(c.in)
		dst := make([]byte, 0, 64)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Apply(in, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
