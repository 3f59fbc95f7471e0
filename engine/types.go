package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// Values are held in memory in one canonical Go form per type, so that the
// destinations see a small closed set of Go types:
//
//	BOOLEAN                          bool
//	SHORT, INT, LONG                 int64
//	DECIMAL                          string (plain notation, e.g. "-12.5")
//	FLOAT, DOUBLE                    float64
//	NAIVE_DATE, NAIVE_DATETIME       time.Time in UTC holding the wall clock
//	UTC_DATETIME                     time.Time in UTC
//	BINARY                           []byte
//	STRING, XML, JSON                string
//
// Times are cut to whole microseconds, the warehouse's precision, so that
// times it stores alike are one key and hash alike; DECIMAL text is in the
// canonical form parseDecimal gives, for the same reason.

const maxDecimalPrecision = 38

// infer gives the column type an undeclared value implies, and the value in
// canonical form. ok is false for nil, which implies nothing.
func infer(v any) (col destination.Column, canon any, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return col, nil, false, nil
	case bool:
		return destination.Column{Type: contract.Boolean}, v, true, nil
	case string:
		return destination.Column{Type: contract.String}, v, true, nil
	case int64:
		return destination.Column{Type: contract.Long}, v, true, nil
	case int:
		return destination.Column{Type: contract.Long}, int64(x), true, nil
	case int32:
		return destination.Column{Type: contract.Int}, int64(x), true, nil
	case int16:
		return destination.Column{Type: contract.Short}, int64(x), true, nil
	case int8:
		return destination.Column{Type: contract.Short}, int64(x), true, nil
	case uint8:
		return destination.Column{Type: contract.Short}, int64(x), true, nil
	case uint16:
		return destination.Column{Type: contract.Int}, int64(x), true, nil
	case uint32:
		return destination.Column{Type: contract.Long}, int64(x), true, nil
	case uint:
		return inferUint(uint64(x))
	case uint64:
		return inferUint(x)
	case float64:
		return destination.Column{Type: contract.Double}, v, true, nil
	case float32:
		return destination.Column{Type: contract.Float}, float64(x), true, nil
	case []byte:
		// A copy: the connector may reuse its buffer once the call returns.
		return destination.Column{Type: contract.Binary}, bytes.Clone(x), true, nil
	case time.Time:
		if canonicalTime(x) {
			return destination.Column{Type: contract.UTCDateTime}, v, true, nil
		}
		return destination.Column{Type: contract.UTCDateTime}, micro(x.UTC()), true, nil
	case *time.Time:
		if x == nil {
			return col, nil, false, nil
		}
		return infer(*x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return destination.Column{Type: contract.Long}, i, true, nil
		}
		f, err := x.Float64()
		if err != nil {
			return col, nil, false, fmt.Errorf("json.Number %q is not a number", string(x))
		}
		return destination.Column{Type: contract.Double}, f, true, nil
	case contract.DecimalText:
		s, intDigits, scale, err := parseDecimal(string(x))
		if err != nil {
			return col, nil, false, err
		}
		if intDigits+scale > maxDecimalPrecision {
			return destination.Column{Type: contract.String}, strings.TrimSpace(string(x)), true, nil
		}
		return destination.Column{Type: contract.Decimal, Precision: maxDecimalPrecision, Scale: scale}, s, true, nil
	case json.RawMessage:
		if !json.Valid(x) {
			return col, nil, false, errors.New("json.RawMessage is not valid JSON")
		}
		return destination.Column{Type: contract.JSON}, string(x), true, nil
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		b, err := json.Marshal(v)
		if err != nil {
			return col, nil, false, fmt.Errorf("%T cannot be written as JSON: %w", v, err)
		}
		return destination.Column{Type: contract.JSON}, string(b), true, nil
	case reflect.Pointer:
		rv := reflect.ValueOf(v)
		if rv.IsNil() {
			return col, nil, false, nil
		}
		return infer(rv.Elem().Interface())
	}
	return col, nil, false, fmt.Errorf("values of Go type %T are not supported (use bool, integers, floats, string, []byte, time.Time, sdk.Decimal, maps or slices)", v)
}

func inferUint(x uint64) (destination.Column, any, bool, error) {
	if x <= math.MaxInt64 {
		return destination.Column{Type: contract.Long}, int64(x), true, nil
	}
	return destination.Column{Type: contract.Decimal, Precision: maxDecimalPrecision, Scale: 0}, strconv.FormatUint(x, 10), true, nil
}

// numericRank orders the types that widen into each other without going
// through STRING.
func numericRank(t contract.Type) int {
	switch t {
	case contract.Short:
		return 1
	case contract.Int:
		return 2
	case contract.Long:
		return 3
	case contract.Decimal:
		return 4
	case contract.Float:
		return 5
	case contract.Double:
		return 6
	}
	return 0
}

func timeRank(t contract.Type) int {
	switch t {
	case contract.NaiveDate:
		return 1
	case contract.NaiveDateTime:
		return 2
	case contract.UTCDateTime:
		return 3
	}
	return 0
}

// widen returns the narrowest type that holds every value of a and of b:
// integers widen to longer integers, then to DECIMAL or DOUBLE; dates to
// datetimes; anything else that differs becomes STRING, which holds every
// value's text.
func widen(a, b destination.Column) destination.Column {
	out := a
	if a.Type == b.Type {
		if a.Type == contract.Decimal && b.Scale > a.Scale {
			out.Scale = b.Scale
		}
		return out
	}
	ra, rb := numericRank(a.Type), numericRank(b.Type)
	if ra > 0 && rb > 0 {
		hi, lo := a, b
		if rb > ra {
			hi, lo = b, a
		}
		switch {
		case hi.Type == contract.Decimal: // lo is an integer
			return hi
		case hi.Type == contract.Float && lo.Type != contract.Short:
			// FLOAT's 24-bit mantissa cannot hold INT or LONG exactly.
			out.Type = contract.Double
			out.Precision, out.Scale = 0, 0
			return out
		default:
			out.Type = hi.Type
			out.Precision, out.Scale = 0, 0
			return out
		}
	}
	ta, tb := timeRank(a.Type), timeRank(b.Type)
	if ta > 0 && tb > 0 {
		if tb > ta {
			out.Type = b.Type
		}
		return out
	}
	out.Type = contract.String
	out.Precision, out.Scale = 0, 0
	return out
}

// sameType reports whether two columns have the same warehouse type; XML and
// STRING are stored alike.
func sameType(a, b destination.Column) bool {
	norm := func(t contract.Type) contract.Type {
		if t == contract.XML {
			return contract.String
		}
		return t
	}
	if norm(a.Type) != norm(b.Type) {
		return false
	}
	return a.Type != contract.Decimal || (a.Precision == b.Precision && a.Scale == b.Scale)
}

// coerce converts v to column c's type, in canonical form. It enforces
// declared types and converts a value to a widened column's type.
func coerce(v any, c destination.Column) (any, error) {
	if v == nil {
		return nil, nil
	}
	// The common case, a value already in its canonical form, passes
	// through as the same interface value: boxing it again would allocate.
	switch x := v.(type) {
	case int64:
		if c.Type == contract.Long ||
			c.Type == contract.Int && x >= math.MinInt32 && x <= math.MaxInt32 ||
			c.Type == contract.Short && x >= math.MinInt16 && x <= math.MaxInt16 {
			return v, nil
		}
	case float64:
		if c.Type == contract.Double || c.Type == contract.Float {
			return v, nil
		}
	case bool:
		if c.Type == contract.Boolean {
			return v, nil
		}
	case string:
		if c.Type == contract.String || c.Type == contract.XML {
			return v, nil
		}
	case time.Time:
		if c.Type == contract.UTCDateTime && canonicalTime(x) {
			return v, nil
		}
	}
	if p, ok := v.(*time.Time); ok {
		if p == nil {
			return nil, nil
		}
		v = *p
	}
	switch c.Type {
	case contract.Boolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, errors.New("want true or false")
			}
			return b, nil
		}
	case contract.Short:
		return coerceInt(v, math.MinInt16, math.MaxInt16)
	case contract.Int:
		return coerceInt(v, math.MinInt32, math.MaxInt32)
	case contract.Long:
		return coerceInt(v, math.MinInt64, math.MaxInt64)
	case contract.Float, contract.Double:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case string, json.Number, contract.DecimalText:
			f, err := strconv.ParseFloat(strings.TrimSpace(textOf(x)), 64)
			if err != nil {
				return nil, errors.New("not a number")
			}
			return f, nil
		}
		if i, ok := asInt64(v); ok {
			return float64(i), nil
		}
	case contract.Decimal:
		var text string
		switch x := v.(type) {
		case string, json.Number, contract.DecimalText:
			text = textOf(x)
		case float64:
			// A float is approximate to begin with (0.1+0.2 is
			// 0.30000000000000004): round it to the column's scale rather
			// than reject the artefact. Exact text inputs are not rounded.
			text = strconv.FormatFloat(x, 'f', c.Scale, 64)
		case float32:
			text = strconv.FormatFloat(float64(x), 'f', c.Scale, 32)
		default:
			if i, ok := asInt64(v); ok {
				text = strconv.FormatInt(i, 10)
			} else if u, ok := v.(uint64); ok {
				text = strconv.FormatUint(u, 10)
			} else if u, ok := v.(uint); ok {
				text = strconv.FormatUint(uint64(u), 10)
			}
		}
		if text == "" {
			break
		}
		s, intDigits, _, err := parseDecimal(text)
		if err != nil {
			return nil, err
		}
		if intDigits > c.Precision-c.Scale {
			return nil, fmt.Errorf("too many digits for DECIMAL(%d,%d): at most %d before the point", c.Precision, c.Scale, c.Precision-c.Scale)
		}
		// Digits past the scale (other than trailing zeros, which the
		// canonical form drops) would be rounded away by the warehouse.
		if _, frac, _ := strings.Cut(s, "."); len(frac) > c.Scale {
			return nil, fmt.Errorf("too many digits for DECIMAL(%d,%d): at most %d after the point", c.Precision, c.Scale, c.Scale)
		}
		return s, nil
	case contract.NaiveDate:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
		case string:
			t, err := time.Parse("2006-01-02", strings.TrimSpace(x))
			if err != nil {
				return nil, errors.New("want a date as YYYY-MM-DD")
			}
			return t, nil
		}
	case contract.NaiveDateTime:
		switch x := v.(type) {
		case time.Time:
			y, m, d := x.Date()
			h, mi, s := x.Clock()
			return micro(time.Date(y, m, d, h, mi, s, x.Nanosecond(), time.UTC)), nil
		case string:
			t, err := parseNaiveDateTime(x)
			return micro(t), err
		}
	case contract.UTCDateTime:
		switch x := v.(type) {
		case time.Time:
			return micro(x.UTC()), nil
		case string:
			t, err := parseUTCDateTime(x)
			return micro(t), err
		}
	case contract.Binary:
		switch x := v.(type) {
		case []byte:
			return bytes.Clone(x), nil
		case string:
			return []byte(x), nil
		}
	case contract.String, contract.XML:
		return toText(v)
	case contract.JSON:
		switch x := v.(type) {
		case json.RawMessage:
			if !json.Valid(x) {
				return nil, errors.New("not valid JSON")
			}
			return string(x), nil
		case string:
			// Text that is already JSON is kept as it is; other text is a
			// JSON string.
			if json.Valid([]byte(x)) {
				return x, nil
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cannot be written as JSON: %w", err)
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("a %T cannot be stored as %s", v, c.Type)
}

func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case contract.DecimalText:
		return string(x)
	}
	return ""
}

// toText renders any supported value as text, for STRING columns, including
// columns that widened to STRING from another type. Numbers and times are
// rendered as a SQL cast to text renders them, so that the values a column
// held before it widened (cast by the warehouse) and those written after
// read alike: 4.0 is "4.0" in both.
func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return floatText(x, 64), nil
	case float32:
		return floatText(float64(x), 32), nil
	case json.Number:
		return string(x), nil
	case contract.DecimalText:
		return string(x), nil
	case []byte:
		return string(x), nil
	case time.Time:
		// A time.Time is a UTC_DATETIME (TIMESTAMPTZ), rendered in UTC.
		return x.UTC().Format("2006-01-02 15:04:05.999999") + "+00", nil
	case json.RawMessage:
		return string(x), nil
	}
	if i, ok := asInt64(v); ok {
		return strconv.FormatInt(i, 10), nil
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Uint, reflect.Uint64:
		return fmt.Sprint(v), nil
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("cannot be written as JSON: %w", err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("a %T cannot be stored as STRING", v)
}

// floatText renders a float as DuckDB (and PostgreSQL, and Python's repr)
// casts one to text: the shortest digits that read back as the same
// number, fixed notation with at least one decimal for exponents from -4
// to 15, scientific notation beyond.
func floatText(f float64, bitSize int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, bitSize)
	i := strings.LastIndexByte(e, 'e')
	exp, _ := strconv.Atoi(e[i+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, bitSize)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// canonicalTime reports whether t is already as the warehouse keeps it: UTC,
// whole microseconds.
func canonicalTime(t time.Time) bool {
	return t.Location() == time.UTC && t.Nanosecond()%1000 == 0
}

func coerceInt(v any, lo, hi int64) (any, error) {
	var i int64
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || x < float64(lo) || x > float64(hi) {
			return nil, fmt.Errorf("not an integer in [%d, %d]", lo, hi)
		}
		i = int64(x)
	case float32:
		return coerceInt(float64(x), lo, hi)
	case string, json.Number, contract.DecimalText:
		n, err := strconv.ParseInt(strings.TrimSpace(textOf(x)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer in [%d, %d]", lo, hi)
		}
		i = n
	default:
		n, ok := asInt64(v)
		if !ok {
			return nil, fmt.Errorf("a %T is not an integer", v)
		}
		i = n
	}
	if i < lo || i > hi {
		return nil, fmt.Errorf("out of range [%d, %d]", lo, hi)
	}
	return i, nil
}

// parseDecimal checks plain decimal notation ("-12.340") and returns it in
// canonical form ("-12.34": no sign but a minus, no leading or trailing
// zeros), so that equal numbers are equal keys and hash alike, with the
// digit counts before and after the point as written.
func parseDecimal(s string) (out string, intDigits, scale int, err error) {
	s = strings.TrimSpace(s)
	body := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, _ := strings.Cut(body, ".")
	if (intPart == "" && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return "", 0, 0, fmt.Errorf("%q is not a decimal number (want digits with an optional sign and point)", s)
	}
	trimmed := strings.TrimLeft(intPart, "0")
	out = trimmed
	if out == "" {
		out = "0"
	}
	if f := strings.TrimRight(frac, "0"); f != "" {
		out += "." + f
	}
	if strings.HasPrefix(s, "-") && out != "0" {
		out = "-" + out
	}
	return out, len(trimmed), len(frac), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var naiveLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
}

// micro cuts t to whole microseconds.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func parseNaiveDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range naiveLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	if _, err := parseUTCDateTime(s); err == nil {
		return time.Time{}, errors.New("has a UTC offset: a NAIVE_DATETIME takes none (declare the column UTC_DATETIME to keep the offset)")
	}
	return time.Time{}, errors.New("want an ISO 8601 datetime such as 2024-03-01T12:30:00 or 2024-03-01 12:30:00")
}

func parseUTCDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	for _, l := range naiveLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return time.Time{}, errors.New("has no UTC offset: a UTC_DATETIME needs one, such as Z or +02:00")
		}
	}
	return time.Time{}, errors.New("want an ISO 8601 datetime with an offset, such as 2024-03-01T12:30:00Z")
}
