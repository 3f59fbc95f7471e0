package postgres

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
	"github.com/sluicedata/sluice/internal/contract"
)

// Decoding kinds. Columns of the native kinds are read in PostgreSQL's
// binary format; every other column is read as its text output (a ::text
// cast in the query), which is also what logical replication sends, so that
// a value reads alike from a snapshot and from the change stream.
const (
	kText   = iota // the text output of a type without a kind of its own
	kString        // text, varchar, char(n) (blank-padded, as stored), name
	kBool
	kInt2
	kInt4
	kInt8
	kOID
	kFloat4
	kFloat8
	kNumeric // text -> sdk.Decimal
	kDate
	kTimestamp
	kTimestamptz
	kBytea
	kUUID
	kJSON
	kXML
	// Arrays are read as text and become JSON arrays; the kind says how
	// their elements are written.
	kArrayText // elements as JSON strings
	kArrayNum  // numbers (NaN and infinities as strings)
	kArrayBool // true/false
	kArrayJSON // elements that are JSON already
)

// native says a kind is read in binary and needs no cast.
func native(kind int) bool {
	switch kind {
	case kString, kBool, kInt2, kInt4, kInt8, kOID, kFloat4, kFloat8, kDate, kTimestamp, kTimestamptz, kBytea, kUUID:
		return true
	}
	return false
}

// pgType is what the catalog says about a column's type, domains resolved
// to their base type.
type pgType struct {
	name     string // pg_type.typname of the (base) type
	typtype  byte   // b base, e enum, d domain, c composite, r range, p pseudo, m multirange
	category byte   // pg_type.typcategory: A for arrays
	elem     string // element type name, for arrays
	typmod   int32
	format   string // format_type(): the column's declared type, for casts and messages
}

// mapType gives the sluice column type and decoding kind of a PostgreSQL
// type. The mapping is documented in doc.go.
func mapType(t pgType) (c sqlsource.Column) {
	c.SQLType = t.format
	c.Kind = kText
	c.Type = contract.String
	if t.category == 'A' {
		c.Type = contract.JSON
		switch t.elem {
		case "int2", "int4", "int8", "oid", "float4", "float8", "numeric":
			c.Kind = kArrayNum
		case "bool":
			c.Kind = kArrayBool
		case "json", "jsonb":
			c.Kind = kArrayJSON
		default:
			c.Kind = kArrayText
		}
		return c
	}
	switch t.name {
	case "bool":
		c.Kind, c.Type = kBool, contract.Boolean
	case "int2":
		c.Kind, c.Type, c.Cursor = kInt2, contract.Short, true
	case "int4":
		c.Kind, c.Type, c.Cursor = kInt4, contract.Int, true
	case "int8":
		c.Kind, c.Type, c.Cursor = kInt8, contract.Long, true
	case "oid", "xid":
		c.Kind, c.Type, c.Cursor = kOID, contract.Long, t.name == "oid"
	case "float4":
		c.Kind, c.Type, c.Cursor = kFloat4, contract.Float, true
	case "float8":
		c.Kind, c.Type, c.Cursor = kFloat8, contract.Double, true
	case "numeric":
		c.Kind, c.Cursor = kNumeric, true
		p, s, ok := numericTypmod(t.typmod)
		switch {
		case !ok:
			// No declared precision: the values say what they need (see
			// doc.go), as sdk.Decimal values the engine infers.
			c.Type = contract.Unspecified
		case p <= 38:
			c.Type, c.Precision, c.Scale = contract.Decimal, p, s
		default:
			c.Type = contract.String
		}
	case "date":
		c.Kind, c.Type, c.Cursor = kDate, contract.NaiveDate, true
	case "timestamp":
		c.Kind, c.Type, c.Cursor = kTimestamp, contract.NaiveDateTime, true
	case "timestamptz":
		c.Kind, c.Type, c.Cursor = kTimestamptz, contract.UTCDateTime, true
	case "bytea":
		c.Kind, c.Type = kBytea, contract.Binary
	case "uuid":
		c.Kind, c.Cursor = kUUID, true
	case "json", "jsonb":
		c.Kind, c.Type = kJSON, contract.JSON
	case "xml":
		c.Kind, c.Type = kXML, contract.XML
	case "text", "varchar", "bpchar", "name":
		// Read in binary, which is the text as stored: a ::text cast would
		// strip char(n)'s padding, which the change stream keeps.
		c.Kind, c.Cursor = kString, true
	}
	return c
}

// numericTypmod reads numeric(p,s) from a type modifier. A negative scale
// (PostgreSQL 15) rounds to tens, hundreds...: the values are integers of
// up to p-s digits. A scale above the precision holds only a fraction.
func numericTypmod(typmod int32) (p, s int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	m := typmod - 4
	p = int(m>>16) & 0xffff
	s = int(m & 0x7ff)
	if s&0x400 != 0 {
		s -= 0x800 // sign-extend the 11-bit scale
	}
	switch {
	case s < 0:
		p, s = p-s, 0
	case s > p:
		p = s
	}
	return p, s, true
}

// pgEpoch is where PostgreSQL's binary dates and timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const pgEpochMicros = 946_684_800_000_000

// errInfinite marks a value sluice has no type for (an infinite date or
// timestamp, a NaN or infinite numeric): it is synced as NULL.
var errInfinite = errors.New("infinite or NaN value")

// decodeBinary reads one value of a native kind in binary format; other
// kinds arrive as their text.
func decodeBinary(kind int, b []byte) (any, error) {
	switch kind {
	case kBool:
		if len(b) != 1 {
			return nil, fmt.Errorf("boolean of %d bytes", len(b))
		}
		return b[0] != 0, nil
	case kInt2:
		if len(b) != 2 {
			return nil, fmt.Errorf("smallint of %d bytes", len(b))
		}
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case kInt4:
		if len(b) != 4 {
			return nil, fmt.Errorf("integer of %d bytes", len(b))
		}
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case kOID:
		if len(b) != 4 {
			return nil, fmt.Errorf("oid of %d bytes", len(b))
		}
		return int64(binary.BigEndian.Uint32(b)), nil
	case kInt8:
		if len(b) != 8 {
			return nil, fmt.Errorf("bigint of %d bytes", len(b))
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	case kFloat4:
		if len(b) != 4 {
			return nil, fmt.Errorf("real of %d bytes", len(b))
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case kFloat8:
		if len(b) != 8 {
			return nil, fmt.Errorf("double of %d bytes", len(b))
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case kDate:
		if len(b) != 4 {
			return nil, fmt.Errorf("date of %d bytes", len(b))
		}
		d := int32(binary.BigEndian.Uint32(b))
		if d == math.MaxInt32 || d == math.MinInt32 {
			return nil, errInfinite
		}
		return pgEpoch.AddDate(0, 0, int(d)), nil
	case kTimestamp, kTimestamptz:
		if len(b) != 8 {
			return nil, fmt.Errorf("timestamp of %d bytes", len(b))
		}
		us := int64(binary.BigEndian.Uint64(b))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return nil, errInfinite
		}
		return time.UnixMicro(us + pgEpochMicros).UTC(), nil
	case kBytea:
		return bytes.Clone(b), nil
	case kUUID:
		if len(b) != 16 {
			return nil, fmt.Errorf("uuid of %d bytes", len(b))
		}
		return formatUUID(b), nil
	}
	return decodeText(kind, b)
}

func formatUUID(b []byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:16])
	return string(out[:])
}

// decodeText reads one value from PostgreSQL's text output (DateStyle ISO,
// TimeZone UTC, bytea_output hex, as the connections set them).
func decodeText(kind int, b []byte) (any, error) {
	s := string(b)
	switch kind {
	case kBool:
		switch s {
		case "t":
			return true, nil
		case "f":
			return false, nil
		}
		return nil, fmt.Errorf("boolean %q", s)
	case kInt2, kInt4, kInt8, kOID:
		return strconv.ParseInt(s, 10, 64)
	case kFloat4:
		f, err := strconv.ParseFloat(s, 32)
		return f, err
	case kFloat8:
		return strconv.ParseFloat(s, 64)
	case kNumeric:
		if s == "NaN" || strings.HasSuffix(s, "Infinity") {
			return nil, errInfinite
		}
		return contract.DecimalText(s), nil
	case kDate:
		return parseDate(s)
	case kTimestamp:
		return parseTimestamp(s, false)
	case kTimestamptz:
		return parseTimestamp(s, true)
	case kBytea:
		if !strings.HasPrefix(s, `\x`) {
			return nil, errors.New(`bytea text without the \x of hex output`)
		}
		return hex.DecodeString(s[2:])
	case kArrayText, kArrayNum, kArrayBool, kArrayJSON:
		return arrayJSON(s, kind)
	}
	return s, nil // kText, kString, kUUID, kJSON, kXML
}

// parseDate reads YYYY-MM-DD, with more year digits or " BC" if need be.
func parseDate(s string) (any, error) {
	if s == "infinity" || s == "-infinity" {
		return nil, errInfinite
	}
	bc := strings.HasSuffix(s, " BC")
	s = strings.TrimSuffix(s, " BC")
	y, rest, ok := year(s)
	if !ok || len(rest) != 6 || rest[0] != '-' || rest[3] != '-' {
		return nil, fmt.Errorf("date %q", s)
	}
	m, err1 := strconv.Atoi(rest[1:3])
	d, err2 := strconv.Atoi(rest[4:6])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("date %q", s)
	}
	if bc {
		y = 1 - y // 1 BC is year 0
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
}

func year(s string) (int, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < 4 {
		return 0, "", false
	}
	y, err := strconv.Atoi(s[:i])
	return y, s[i:], err == nil
}

// parseTimestamp reads "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]".
func parseTimestamp(s string, zoned bool) (any, error) {
	if s == "infinity" || s == "-infinity" {
		return nil, errInfinite
	}
	bad := func() (any, error) { return nil, fmt.Errorf("timestamp %q", s) }
	bc := strings.HasSuffix(s, " BC")
	body := strings.TrimSuffix(s, " BC")
	date, clock, ok := strings.Cut(body, " ")
	if !ok {
		return bad()
	}
	if bc {
		date += " BC"
	}
	dv, err := parseDate(date)
	if err != nil {
		return bad()
	}
	d := dv.(time.Time)
	offset := 0
	if zoned {
		i := strings.LastIndexAny(clock, "+-")
		if i < 0 {
			return bad()
		}
		zone := clock[i:]
		clock = clock[:i]
		sign := 1
		if zone[0] == '-' {
			sign = -1
		}
		parts := strings.Split(zone[1:], ":")
		mult := []int{3600, 60, 1}
		if len(parts) > 3 {
			return bad()
		}
		for j, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil {
				return bad()
			}
			offset += n * mult[j]
		}
		offset *= sign
	}
	h, mi, sec, us, ok := sqlsource.ParseClock(clock)
	if !ok {
		return bad()
	}
	t := time.Date(d.Year(), d.Month(), d.Day(), h, mi, sec, us*1000, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

// arrayJSON turns the text of a PostgreSQL array into a JSON array, nested
// for several dimensions: NULL is null, and the array kind says how the
// other elements are written.
func arrayJSON(s string, kind int) (any, error) {
	if strings.HasPrefix(s, "[") {
		// Bounds other than 1, as in [0:2]={1,2,3}.
		i := strings.Index(s, "=")
		if i < 0 {
			return nil, fmt.Errorf("array %q", truncate(s))
		}
		s = s[i+1:]
	}
	p := arrayParser{s: s, kind: kind}
	var out bytes.Buffer
	if err := p.array(&out); err != nil {
		return nil, fmt.Errorf("array %q: %w", truncate(s), err)
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("array %q: text after the closing brace", truncate(s))
	}
	return out.String(), nil
}

type arrayParser struct {
	s    string
	i    int
	kind int
}

func (p *arrayParser) array(out *bytes.Buffer) error {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return errors.New("want {")
	}
	p.i++
	out.WriteByte('[')
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		out.WriteByte(']')
		return nil
	}
	for {
		if p.i >= len(p.s) {
			return errors.New("unterminated array")
		}
		switch p.s[p.i] {
		case '{':
			if err := p.array(out); err != nil {
				return err
			}
		case '"':
			v, err := p.quoted()
			if err != nil {
				return err
			}
			out.WriteString(p.element(v))
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
				p.i++
			}
			e := p.s[start:p.i]
			if strings.EqualFold(e, "NULL") {
				out.WriteString("null")
			} else {
				out.WriteString(p.element(e))
			}
		}
		if p.i >= len(p.s) {
			return errors.New("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			out.WriteByte(',')
		case '}':
			p.i++
			out.WriteByte(']')
			return nil
		default:
			return fmt.Errorf("unexpected %q", p.s[p.i])
		}
	}
}

func (p *arrayParser) quoted() (string, error) {
	p.i++ // the opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			if p.i+1 >= len(p.s) {
				return "", errors.New("backslash at the end")
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case '"':
			p.i++
			return b.String(), nil
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("unterminated quoted element")
}

// element renders an array element (not NULL) as JSON.
func (p *arrayParser) element(e string) string {
	switch p.kind {
	case kArrayBool:
		switch e {
		case "t":
			return "true"
		case "f":
			return "false"
		}
	case kArrayNum:
		if jsonNumber(e) {
			return e
		}
	case kArrayJSON:
		if json.Valid([]byte(e)) {
			return e
		}
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// jsonNumber reports whether s is a number as JSON writes one.
func jsonNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
