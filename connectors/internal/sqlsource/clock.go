package sqlsource

import "strconv"

// ParseClock reads a time of day as PostgreSQL and MySQL print it,
// "HH:MM:SS" with an optional fraction of one to six digits, into hours,
// minutes, seconds and microseconds. Ranges are the caller's concern.
func ParseClock(c string) (h, m, s, us int, ok bool) {
	if len(c) < 8 || c[2] != ':' || c[5] != ':' {
		return 0, 0, 0, 0, false
	}
	h, e1 := strconv.Atoi(c[0:2])
	m, e2 := strconv.Atoi(c[3:5])
	s, e3 := strconv.Atoi(c[6:8])
	if e1 != nil || e2 != nil || e3 != nil {
		return 0, 0, 0, 0, false
	}
	if frac := c[8:]; frac != "" {
		if frac[0] != '.' || len(frac) > 7 || len(frac) < 2 {
			return 0, 0, 0, 0, false
		}
		n, err := strconv.Atoi(frac[1:])
		if err != nil {
			return 0, 0, 0, 0, false
		}
		for k := len(frac) - 1; k < 6; k++ {
			n *= 10 // .5 is 500000 microseconds
		}
		us = n
	}
	return h, m, s, us, true
}
