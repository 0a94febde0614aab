package batch

import (
	"math"
	"testing"
)

func TestSingleToDouble(t *testing.T) {
	cases := []struct {
		in   float32
		want float64
	}{
		{144.968, 144.968}, {0.1, 0.1}, {1.2345678, 1.2345678}, {-3.4e38, -3.4e38}, {1e-45, 1e-45},
		{16777217, 16777216}, {0, 0}, {float32(math.Inf(1)), math.Inf(1)},
	}
	for _, c := range cases {
		got := SingleToDouble(c.in)
		if got != c.want {
			t.Errorf("SingleToDouble(%v) = %v, want %v", c.in, got, c.want)
		}
		if float32(got) != c.in {
			t.Errorf("SingleToDouble(%v) = %v does not read back as the same float32", c.in, got)
		}
	}
	if !math.IsNaN(SingleToDouble(float32(math.NaN()))) {
		t.Error("NaN not kept")
	}
}
