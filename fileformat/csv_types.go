package fileformat

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/sluicedata/sluice/internal/contract"
)

// maxDecimalDigits is the widest DECIMAL warehouses hold (38 digits).
const maxDecimalDigits = 38

// trimSpace drops the spaces and tabs around a value before it is read as a
// number, boolean or time: writers pad columns, and the padding carries no
// meaning there. STRING values keep theirs.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(c byte) bool { return c-'0' <= 9 }

// leadingZero reports whether the digits of a number start with a 0 that
// is not alone before the point ("007", "01.5"): such values are codes (zip
// codes, account numbers) whose zeros a number would drop.
func leadingZero(b []byte) bool {
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	return len(b) > 1 && b[0] == '0' && isDigit(b[1])
}

// parseLong reads a base-10 int64 with an optional sign.
func parseLong(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	// 19 digits always fit a uint64, so the loop cannot overflow.
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// plainDecimal reports whether b is a decimal in plain notation (optional
// sign, digits, optionally a point and at least one digit), and returns its
// digit counts.
func plainDecimal(b []byte) (intDigits, scale int, ok bool) {
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i == 0 || (b[0] == '0' && i > 1) {
		return 0, 0, false
	}
	intDigits = i
	if i == len(b) {
		return intDigits, 0, true
	}
	if b[i] != '.' {
		return 0, 0, false
	}
	i++
	f := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i != len(b) || i == f {
		return 0, 0, false
	}
	return intDigits, i - f, true
}

// isDouble reports whether parseDouble reads b, mostly without
// converting it: only a number that may overflow, whose digits before the
// point and exponent reach 300, is converted.
func isDouble(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	lead := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	whole := i - lead
	if whole > 1 && b[lead] == '0' {
		return false // a leading zero
	}
	frac := 0
	if i < len(b) && b[i] == '.' {
		i++
		f := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		frac = i - f
	}
	if whole+frac == 0 {
		return false
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			neg = b[i] == '-'
			i++
		}
		e := i
		for i < len(b) && isDigit(b[i]) {
			if exp < 10000 {
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if i == e {
			return false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(b) {
		return false
	}
	if whole+exp < 300 {
		return true
	}
	_, ok := parseDouble(b)
	return ok
}

// parseDouble reads a decimal floating-point number ("1.5", "-2e10", ".5").
// Words strconv would take ("inf", "NaN") and hexadecimal are refused: in a
// CSV they are text.
func parseDouble(b []byte) (float64, bool) {
	if len(b) == 0 || leadingZero(b) {
		return 0, false
	}
	digits := false
	for _, c := range b {
		switch {
		case isDigit(c):
			digits = true
		case c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E':
		default:
			return 0, false
		}
	}
	if !digits {
		return 0, false
	}
	// strconv copies the string into any error it returns, so viewing the
	// bytes without a copy is safe.
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

func parseBool(b []byte) (v, ok bool) {
	switch len(b) {
	case 4:
		if (b[0]|0x20) == 't' && (b[1]|0x20) == 'r' && (b[2]|0x20) == 'u' && (b[3]|0x20) == 'e' {
			return true, true
		}
	case 5:
		if (b[0]|0x20) == 'f' && (b[1]|0x20) == 'a' && (b[2]|0x20) == 'l' && (b[3]|0x20) == 's' && (b[4]|0x20) == 'e' {
			return false, true
		}
	}
	return false, false
}

// num2 reads the two decimal digits b[i:i+2]; datetimes are read on a
// hot path (NumberTypedCSV), hence no loop.
func num2(b []byte, i int) (int, bool) {
	x, y := b[i]-'0', b[i+1]-'0'
	return int(x)*10 + int(y), x <= 9 && y <= 9
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseDate reads YYYY-MM-DD as midnight UTC.
func parseDate(b []byte) (time.Time, bool) {
	y, m, d, ok := scanDate(b)
	if !ok {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), true
}

// scanDate checks YYYY-MM-DD and returns its fields.
func scanDate(b []byte) (y, m, d int, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	hi, ok1 := num2(b, 0)
	lo, ok4 := num2(b, 2)
	y = hi*100 + lo
	m, ok2 := num2(b, 5)
	d, ok3 := num2(b, 8)
	if !ok1 || !ok4 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// dateTime is what scanDateTime reads: the fields as written, and the
// offset east of UTC.
type dateTime struct {
	y, m, d, hh, mm, ss, ns int
	off                     time.Duration
}

// time is the instant, in UTC.
func (dt dateTime) time() time.Time {
	t := time.Date(dt.y, time.Month(dt.m), dt.d, 0, 0, 0, 0, time.UTC)
	return t.Add(time.Duration(dt.hh)*time.Hour + time.Duration(dt.mm)*time.Minute + time.Duration(dt.ss)*time.Second + time.Duration(dt.ns) - dt.off)
}

// parseDateTime reads YYYY-MM-DD[T ]HH:MM[:SS[.fffffffff]], followed by Z
// or an offset (±HH:MM, ±HHMM, ±HH) when zoned, by nothing otherwise. A
// naive datetime may also be a bare date (midnight), so that a column
// mixing dates and datetimes reads as datetimes.
func parseDateTime(b []byte, zoned bool) (time.Time, bool) {
	dt, ok := scanDateTime(b, zoned)
	if !ok {
		return time.Time{}, false
	}
	return dt.time(), true
}

// scanDateTime checks what parseDateTime reads, and returns its fields.
func scanDateTime(b []byte, zoned bool) (dateTime, bool) {
	var dt dateTime
	var ok bool
	if !zoned && len(b) == 10 {
		dt.y, dt.m, dt.d, ok = scanDate(b)
		return dt, ok
	}
	if len(b) < 16 || (b[10] != 'T' && b[10] != ' ' && b[10] != 't') || b[13] != ':' {
		return dt, false
	}
	if dt.y, dt.m, dt.d, ok = scanDate(b[:10]); !ok {
		return dt, false
	}
	hh, ok1 := num2(b, 11)
	mm, ok2 := num2(b, 14)
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return dt, false
	}
	dt.hh, dt.mm = hh, mm
	i := 16
	if i < len(b) && b[i] == ':' {
		if len(b) < 19 {
			return dt, false
		}
		if dt.ss, ok = num2(b, 17); !ok || dt.ss > 59 {
			return dt, false
		}
		i = 19
		if i < len(b) && b[i] == '.' {
			i++
			f := i
			for i < len(b) && isDigit(b[i]) {
				if i-f < 9 {
					dt.ns = dt.ns*10 + int(b[i]-'0')
				}
				i++
			}
			n := i - f
			if n == 0 {
				return dt, false
			}
			for ; n < 9; n++ {
				dt.ns *= 10
			}
		}
	}
	rest := b[i:]
	if !zoned {
		return dt, len(rest) == 0
	}
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
		return dt, true
	case len(rest) >= 3 && (rest[0] == '+' || rest[0] == '-'):
		oh, ok := num2(rest, 1)
		if !ok || oh > 23 {
			return dt, false
		}
		om := 0
		switch {
		case len(rest) == 3:
		case len(rest) == 6 && rest[3] == ':':
			om, ok = num2(rest, 4)
		case len(rest) == 5:
			om, ok = num2(rest, 3)
		default:
			ok = false
		}
		if !ok || om > 59 {
			return dt, false
		}
		dt.off = time.Duration(oh)*time.Hour + time.Duration(om)*time.Minute
		if rest[0] == '-' {
			dt.off = -dt.off
		}
		return dt, true
	}
	return dt, false
}

// colSniff gathers what the sampled values of one column can be.
type colSniff struct {
	values                                  int // non-null values seen
	notBool, notLong, notDecimal, notDouble bool
	notDate, notDateTime, notUTC            bool
	scale                                   int // fraction digits of the first fractional value
	mixedScale, fraction                    bool
	maxScale                                int
}

func (s *colSniff) add(f []byte) {
	f = trimSpace(f)
	if len(f) == 0 {
		return
	}
	s.values++
	if !s.notBool {
		_, ok := parseBool(f)
		s.notBool = !ok
	}
	if !s.notLong {
		_, ok := parseLong(f)
		s.notLong = !ok
	}
	if !s.notDecimal {
		id, sc, ok := plainDecimal(f)
		if !ok || id+sc > maxDecimalDigits {
			s.notDecimal = true
		} else if sc > 0 {
			if s.fraction && sc != s.scale {
				s.mixedScale = true
			}
			if !s.fraction {
				s.scale = sc
			}
			s.fraction = true
			s.maxScale = max(s.maxScale, sc)
		}
	}
	if !s.notDouble {
		_, ok := parseDouble(f)
		s.notDouble = !ok
	}
	if !s.notDate {
		_, ok := parseDate(f)
		s.notDate = !ok
	}
	if !s.notDateTime {
		_, ok := parseDateTime(f, false)
		s.notDateTime = !ok
	}
	if !s.notUTC {
		_, ok := parseDateTime(f, true)
		s.notUTC = !ok
	}
}

// column gives the narrowest type that holds every sampled value.
func (s *colSniff) column(name string, decimals bool) Column {
	c := Column{Name: name, Type: contract.String}
	switch {
	case s.values == 0:
	case !s.notBool:
		c.Type = contract.Boolean
	case !s.notLong:
		c.Type = contract.Long
	case decimals && !s.notDecimal && !s.mixedScale:
		c.Type, c.Precision, c.Scale = contract.Decimal, maxDecimalDigits, s.maxScale
	case !s.notDouble:
		c.Type = contract.Double
	case !s.notDate:
		c.Type = contract.NaiveDate
	case !s.notDateTime:
		c.Type = contract.NaiveDateTime
	case !s.notUTC:
		c.Type = contract.UTCDateTime
	}
	return c
}

// fits reports whether a value reads as type t. Empty values fit anything
// (they are NULL).
func fits(t contract.Type, f []byte) bool {
	f = trimSpace(f)
	if len(f) == 0 {
		return true
	}
	var ok bool
	switch t {
	case contract.Boolean:
		_, ok = parseBool(f)
	case contract.Long:
		_, ok = parseLong(f)
	case contract.Decimal:
		id, sc, ok2 := plainDecimal(f)
		ok = ok2 && id+sc <= maxDecimalDigits
	case contract.Double:
		_, ok = parseDouble(f)
	case contract.NaiveDate:
		_, ok = parseDate(f)
	case contract.NaiveDateTime:
		_, ok = parseDateTime(f, false)
	case contract.UTCDateTime:
		_, ok = parseDateTime(f, true)
	default:
		ok = true
	}
	return ok
}
