package calendar

import (
	"fmt"
	"strings"
	"time"

	// Zones resolve the same on every machine, with or without a zoneinfo
	// directory: a spec checked by the orchestrator casts in the transformer.
	_ "time/tzdata"
)

// LoadZone returns the location of an IANA time zone name ("Europe/Berlin");
// "" and "UTC" are UTC. "Local" is refused: it would mean whatever machine
// casts the value.
func LoadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	}
	if strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("%q is the machine's zone, not a zone name; use an IANA name such as Europe/Berlin", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)", name)
	}
	return loc, nil
}

// WallInstant reads wall, a wall-clock time given as microseconds since
// the epoch as if it were UTC, as a wall time in loc and returns that
// instant (microseconds since the epoch). At a DST change it follows
// PostgreSQL (DetermineTimeZoneOffset): a wall time in the gap when clocks
// go forward takes the offset in force before the change (02:30 becomes
// 03:30 summer time); one that happens twice when clocks go back takes the
// offset after the change (the later instant, standard time). In both
// cases the later of the two readings wins.
func WallInstant(loc *time.Location, wall int64) int64 {
	if loc == nil || loc == time.UTC {
		return wall
	}
	secs := wall / 1_000_000
	if wall%1_000_000 < 0 {
		secs--
	}
	// The offset a day before, and the first change of offset after that.
	prev := time.Unix(secs-86400, 0).In(loc)
	_, before := prev.Zone()
	_, end := prev.ZoneBounds()
	after := before
	for k := 0; k < 8 && !end.IsZero(); k++ {
		at := end.In(loc)
		if _, after = at.Zone(); after != before {
			break
		}
		_, end = at.ZoneBounds() // a change of name only (e.g. CET→CET)
	}
	off := before
	if !end.IsZero() && after != before {
		boundary := end.Unix()
		bt, at := secs-int64(before), secs-int64(after)
		switch {
		case bt < boundary && at < boundary:
			off = before
		case bt >= boundary && at >= boundary:
			off = after
		case bt > at: // in the gap: the reading before the change is later
			off = before
		default: // twice: the reading after the change is later
			off = after
		}
	}
	return wall - int64(off)*1_000_000
}
