package calendar

import (
	"testing"
	"time"
)

// TestAgainstTime checks every day from -1000 to 3000 against package time
// in both directions, which covers leap rules, era edges and negative years.
func TestAgainstTime(t *testing.T) {
	start := time.Date(-1000, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(3000, 12, 31, 0, 0, 0, 0, time.UTC)
	for tm := start; !tm.After(end); tm = tm.AddDate(0, 0, 1) {
		want := tm.Unix() / 86400
		y, m, d := tm.Year(), int(tm.Month()), tm.Day()
		if got := Days(y, m, d); got != want {
			t.Fatalf("Days(%d, %d, %d) = %d, want %d", y, m, d, got, want)
		}
		if gy, gm, gd := Civil(want); gy != int64(y) || gm != int64(m) || gd != int64(d) {
			t.Fatalf("Civil(%d) = %d-%d-%d, want %d-%d-%d", want, gy, gm, gd, y, m, d)
		}
		if d == 1 {
			last := tm.AddDate(0, 1, -1).Day()
			if got := DaysIn(int64(y), int64(m)); got != int64(last) {
				t.Fatalf("DaysIn(%d, %d) = %d, want %d", y, m, got, last)
			}
		}
	}
}

func TestIsLeap(t *testing.T) {
	for y, want := range map[int]bool{1900: false, 2000: true, 2023: false, 2024: true, 0: true, -4: true, -100: false} {
		if IsLeap(y) != want {
			t.Errorf("IsLeap(%d) = %v", y, !want)
		}
	}
}
