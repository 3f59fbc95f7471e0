package fileformat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/contract"
)

// jsonlMaxLine bounds one line, and so the reader's memory past the sample.
const jsonlMaxLine = 64 << 20

// jsonlMaxDepth bounds the nesting of a value, as encoding/json does.
const jsonlMaxDepth = 10000

// OpenJSONL streams a JSON Lines file's rows: one JSON object per line.
// Blank lines are skipped and a UTF-8 byte order mark is dropped.
//
// Columns come in the order their keys first appear. Types are inferred
// from the first opts.SampleRows lines (DefaultSampleRows when 0), which are
// read before OpenJSONL returns and then returned as rows:
//
//	true, false              BOOLEAN (bool)
//	integers                 LONG (int64)
//	integers beyond int64    DECIMAL(38,0) (contract.DecimalText); beyond
//	                         38 digits DOUBLE (float64, rounded)
//	other numbers            DOUBLE (float64)
//	strings                  STRING (string)
//	objects and arrays       JSON (json.RawMessage, the text as in the line)
//	null                     nil; a column with only nulls is Unspecified
//
// A column whose values mix types widens: LONG and DECIMAL with DOUBLE give
// DOUBLE, LONG with DECIMAL gives DECIMAL, any other mix gives STRING (a
// number or object is then its JSON text, a boolean "true" or "false").
//
// The file is not read ahead past the sample, so later lines can still
// surprise, and Columns() may change between calls to Next:
//   - a key first seen after the sample is appended to Columns() (earlier
//     rows had no value for it); Values() always has len(Columns())
//     entries, in Columns() order;
//   - a value that does not fit its column's type is returned as is, in its
//     own Go type (as in the table above), and the column's type in
//     Columns() is widened to take it; later values follow the widened type.
//
// A line that is not a JSON object is an error naming the file and the
// line. Memory is bounded by the sample plus one line, of at most 64 MiB.
func OpenJSONL(r io.Reader, name string, opts Options) (Rows, error) {
	sample := opts.SampleRows
	if sample <= 0 {
		sample = DefaultSampleRows
	}
	j := &jsonlRows{
		name:  name,
		br:    bufio.NewReaderSize(r, 64<<10),
		index: map[string]int{},
	}
	for len(j.sample) < sample {
		line, ok := j.readLine()
		if !ok {
			break
		}
		row, err := j.parse(line)
		if err != nil {
			j.err = err
			break
		}
		// The sample keeps its lines: the fields point into them.
		row.line = bytes.Clone(line)
		row.fields = append([]jsonlField(nil), row.fields...)
		j.sample = append(j.sample, row)
		for _, f := range row.fields {
			j.cols[f.col].seen |= 1 << f.kind
		}
	}
	if j.err != nil && len(j.sample) == 0 {
		return nil, j.err
	}
	for i := range j.cols {
		j.cols[i].infer()
		j.columns[i] = j.cols[i].col
	}
	return j, nil
}

type jsonKind uint8

const (
	jNull jsonKind = iota
	jBool
	jInt    // fits int64
	jBigInt // an integer beyond int64, up to 38 digits
	jHuge   // an integer of more than 38 digits
	jFloat
	jString
	jObject
	jArray
)

// jsonlField is one key's value on a line, as a span of the line.
type jsonlField struct {
	col        int
	kind       jsonKind
	esc        bool // a string with escapes or invalid UTF-8: decode it fully
	start, end int
}

type jsonlRow struct {
	line   []byte
	fields []jsonlField
	lineNo int64
}

type jsonlCol struct {
	col  Column
	seen uint16 // bit per jsonKind seen in the sample
}

type jsonlRows struct {
	name  string
	br    *bufio.Reader
	buf   []byte // a line longer than the bufio buffer
	line  int64  // lines read, for messages
	first bool   // the BOM check is done

	cols    []jsonlCol
	columns []Column
	index   map[string]int

	sample []jsonlRow
	si     int
	cur    jsonlRow
	vals   []any
	err    error
	done   bool
}

func (j *jsonlRows) Columns() []Column { return j.columns }
func (j *jsonlRows) Values() []any     { return j.vals }
func (j *jsonlRows) Err() error        { return j.err }

func (j *jsonlRows) Close() error {
	j.done = true
	j.sample = nil
	return nil
}

func (j *jsonlRows) Next() bool {
	if j.done {
		return false
	}
	var row *jsonlRow
	if j.si < len(j.sample) {
		row = &j.sample[j.si]
		j.si++
	} else {
		// The sample is done with: let its memory go.
		j.sample = nil
		if j.err != nil {
			j.done = true
			return false
		}
		line, ok := j.readLine()
		if !ok {
			j.done = true
			return false
		}
		r, err := j.parse(line)
		if err != nil {
			j.err = err
			j.done = true
			return false
		}
		j.cur = r
		row = &j.cur
	}
	if cap(j.vals) < len(j.cols) {
		j.vals = make([]any, len(j.cols), len(j.cols)+8)
	}
	j.vals = j.vals[:len(j.cols)]
	clear(j.vals)
	for _, f := range row.fields {
		v, err := j.value(row, f)
		if err != nil {
			j.err = fmt.Errorf("fileformat: %s: line %d, key %q: %w", j.name, row.lineNo, j.cols[f.col].col.Name, err)
			j.done = true
			return false
		}
		j.vals[f.col] = v
	}
	if row != &j.cur {
		// The values are copies: the sampled line can go.
		*row = jsonlRow{}
	}
	return true
}

// readLine returns the next line that is not blank, without its line end.
// The bytes are valid until the next call.
func (j *jsonlRows) readLine() ([]byte, bool) {
	for {
		if j.err != nil {
			return nil, false
		}
		j.buf = j.buf[:0]
		var line []byte
		for {
			frag, err := j.br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				if len(j.buf)+len(frag) > jsonlMaxLine {
					j.err = fmt.Errorf("fileformat: %s: line %d is longer than %d MiB: is it JSON Lines (one object per line)?", j.name, j.line+1, jsonlMaxLine>>20)
					return nil, false
				}
				j.buf = append(j.buf, frag...)
				continue
			}
			if err != nil && err != io.EOF {
				j.err = fmt.Errorf("fileformat: %s: reading line %d: %w", j.name, j.line+1, err)
				return nil, false
			}
			if len(j.buf) > 0 {
				j.buf = append(j.buf, frag...)
				line = j.buf
			} else {
				line = frag
			}
			if len(line) > jsonlMaxLine {
				j.err = fmt.Errorf("fileformat: %s: line %d is longer than %d MiB: is it JSON Lines (one object per line)?", j.name, j.line+1, jsonlMaxLine>>20)
				return nil, false
			}
			if err == io.EOF && len(line) == 0 {
				return nil, false
			}
			break
		}
		j.line++
		if !j.first {
			j.first = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.Trim(line, " \t\r")) == 0 {
			continue
		}
		return line, true
	}
}

// parse reads one line's object. The fields slice is reused between calls.
func (j *jsonlRows) parse(line []byte) (jsonlRow, error) {
	row := jsonlRow{line: line, fields: j.cur.fields[:0], lineNo: j.line}
	fail := func(i int, msg string) (jsonlRow, error) {
		return jsonlRow{}, fmt.Errorf("fileformat: %s: line %d, column %d: %s: each line must be one JSON object", j.name, j.line, i+1, msg)
	}
	i := jsonSkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return fail(i, "not a JSON object")
	}
	i = jsonSkipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i >= len(line) || line[i] != '"' {
				return fail(i, "expected a key in double quotes")
			}
			ks := i
			ke, esc, err := jsonScanString(line, i)
			if err != nil {
				return fail(ke, err.Error())
			}
			var col int
			if !esc {
				c, ok := j.index[string(line[ks+1:ke-1])]
				if !ok {
					c = j.addColumn(string(line[ks+1 : ke-1]))
				}
				col = c
			} else {
				var key string
				if err := json.Unmarshal(line[ks:ke], &key); err != nil {
					return fail(ks, "bad key: "+err.Error())
				}
				c, ok := j.index[key]
				if !ok {
					c = j.addColumn(key)
				}
				col = c
			}
			i = jsonSkipSpace(line, ke)
			if i >= len(line) || line[i] != ':' {
				return fail(i, "expected ':' after the key")
			}
			i = jsonSkipSpace(line, i+1)
			vs := i
			kind, ve, vesc, err := jsonScanValue(line, i, 0)
			if err != nil {
				return fail(ve, err.Error())
			}
			f := jsonlField{col: col, kind: kind, esc: vesc, start: vs, end: ve}
			dup := false
			for k := range row.fields {
				if row.fields[k].col == col {
					row.fields[k] = f // the last value of a repeated key wins
					dup = true
					break
				}
			}
			if !dup {
				row.fields = append(row.fields, f)
			}
			i = jsonSkipSpace(line, ve)
			if i < len(line) && line[i] == ',' {
				i = jsonSkipSpace(line, i+1)
				continue
			}
			if i < len(line) && line[i] == '}' {
				i++
				break
			}
			return fail(i, "expected ',' or '}'")
		}
	}
	if i = jsonSkipSpace(line, i); i < len(line) {
		return fail(i, "more after the object")
	}
	j.cur.fields = row.fields
	return row, nil
}

// addColumn registers a key seen for the first time. After the sample its
// type comes from its first value (see value).
func (j *jsonlRows) addColumn(name string) int {
	i := len(j.cols)
	j.index[name] = i
	j.cols = append(j.cols, jsonlCol{col: Column{Name: name}})
	j.columns = append(j.columns, Column{Name: name})
	return i
}

// infer sets a column's type from the kinds the sample held.
func (c *jsonlCol) infer() {
	var t contract.Type
	for k := jBool; k <= jArray; k++ {
		if c.seen&(1<<k) != 0 {
			t = jsonlWiden(t, jsonlKindType(k))
		}
	}
	c.setType(t)
}

func (c *jsonlCol) setType(t contract.Type) {
	c.col.Type, c.col.Precision, c.col.Scale = t, 0, 0
	if t == contract.Decimal {
		c.col.Precision = 38
	}
}

func jsonlKindType(k jsonKind) contract.Type {
	switch k {
	case jBool:
		return contract.Boolean
	case jInt:
		return contract.Long
	case jBigInt:
		return contract.Decimal
	case jHuge, jFloat:
		return contract.Double
	case jString:
		return contract.String
	case jObject, jArray:
		return contract.JSON
	}
	return contract.Unspecified
}

// jsonlWiden is the type that holds values of both types.
func jsonlWiden(t, v contract.Type) contract.Type {
	num := func(x contract.Type) bool {
		return x == contract.Long || x == contract.Decimal || x == contract.Double
	}
	switch {
	case v == contract.Unspecified || t == v:
		return t
	case t == contract.Unspecified:
		return v
	case num(t) && num(v):
		if t == contract.Double || v == contract.Double {
			return contract.Double
		}
		return contract.Decimal
	}
	return contract.String
}

// value converts a field to its column's type; a value that does not fit,
// after the sample, widens the column and is returned in its own type.
func (j *jsonlRows) value(row *jsonlRow, f jsonlField) (any, error) {
	if f.kind == jNull {
		return nil, nil
	}
	c := &j.cols[f.col]
	t := c.col.Type
	raw := row.line[f.start:f.end]
	vt := jsonlKindType(f.kind)
	if jsonlWiden(t, vt) != t {
		c.setType(jsonlWiden(t, vt))
		j.columns[f.col] = c.col
		if t != contract.Unspecified {
			return jsonlNatural(f, raw)
		}
		t = c.col.Type
	}
	switch t {
	case contract.String:
		switch f.kind {
		case jString:
			return jsonDecodeString(raw, f.esc)
		default:
			return string(raw), nil
		}
	case contract.Double:
		x, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return x, nil
	case contract.Decimal:
		return contract.DecimalText(raw), nil
	}
	return jsonlNatural(f, raw)
}

// jsonlNatural is a value in the Go type of its own JSON kind.
func jsonlNatural(f jsonlField, raw []byte) (any, error) {
	switch f.kind {
	case jBool:
		return raw[0] == 't', nil
	case jInt:
		return strconv.ParseInt(string(raw), 10, 64)
	case jBigInt:
		return contract.DecimalText(raw), nil
	case jHuge, jFloat:
		x, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return x, nil
	case jString:
		return jsonDecodeString(raw, f.esc)
	case jObject, jArray:
		return json.RawMessage(bytes.Clone(raw)), nil
	}
	return nil, nil
}

func jsonDecodeString(raw []byte, esc bool) (string, error) {
	if !esc {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func jsonSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// jsonScanString checks the string starting at b[i] == '"' and returns the
// index after its closing quote, and whether it needs full decoding.
func jsonScanString(b []byte, i int) (end int, esc bool, err error) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, errors.New("unfinished escape in a string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, esc, errors.New(`unfinished \u escape in a string`)
				}
				for _, h := range b[i+2 : i+6] {
					if !jsonIsHex(h) {
						return i, esc, errors.New(`bad \u escape in a string`)
					}
				}
				i += 6
			default:
				return i, esc, fmt.Errorf("bad escape \\%c in a string", b[i+1])
			}
		case c < 0x20:
			return i, esc, errors.New("control character in a string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				esc = true // decoding turns it into U+FFFD, as encoding/json does
			}
			i += size
		default:
			i++
		}
	}
	return i, esc, errors.New("unterminated string")
}

func jsonIsHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// jsonScanValue checks the JSON value starting at b[i] and returns its kind and
// end.
func jsonScanValue(b []byte, i, depth int) (kind jsonKind, end int, esc bool, err error) {
	if i >= len(b) {
		return 0, i, false, errors.New("expected a value")
	}
	switch c := b[i]; {
	case c == '"':
		end, esc, err = jsonScanString(b, i)
		return jString, end, esc, err
	case c == '{' || c == '[':
		if depth >= jsonlMaxDepth {
			return 0, i, false, fmt.Errorf("nested more than %d levels deep", jsonlMaxDepth)
		}
		end, err = jsonScanComposite(b, i, depth+1)
		if c == '{' {
			return jObject, end, false, err
		}
		return jArray, end, false, err
	case c == 't':
		return jsonLiteral(b, i, "true", jBool)
	case c == 'f':
		return jsonLiteral(b, i, "false", jBool)
	case c == 'n':
		return jsonLiteral(b, i, "null", jNull)
	case c == '-' || c >= '0' && c <= '9':
		return jsonScanNumber(b, i)
	}
	return 0, i, false, fmt.Errorf("unexpected %q where a value should be", b[i])
}

func jsonLiteral(b []byte, i int, word string, k jsonKind) (jsonKind, int, bool, error) {
	if !bytes.HasPrefix(b[i:], []byte(word)) {
		return 0, i, false, fmt.Errorf("bad literal (expected %s)", word)
	}
	return k, i + len(word), false, nil
}

func jsonScanNumber(b []byte, i int) (jsonKind, int, bool, error) {
	s := i
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, i, false, errors.New("bad number")
	}
	kind := jInt
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0, i, false, errors.New("bad number: no digit after '.'")
		}
		kind = jFloat
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, i, false, errors.New("bad number: no digit in the exponent")
		}
		kind = jFloat
	}
	if kind == jInt {
		n := i - s
		if b[s] == '-' {
			n--
		}
		switch {
		case n > 38:
			kind = jHuge
		case n >= 19:
			if _, err := strconv.ParseInt(string(b[s:i]), 10, 64); err != nil {
				kind = jBigInt
			}
		}
	}
	return kind, i, false, nil
}

// jsonScanComposite checks an object or array starting at b[i].
func jsonScanComposite(b []byte, i, depth int) (int, error) {
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = jsonSkipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return i, errors.New("expected a key in double quotes")
			}
			end, _, err := jsonScanString(b, i)
			if err != nil {
				return end, err
			}
			i = jsonSkipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, errors.New("expected ':' after a key")
			}
			i = jsonSkipSpace(b, i+1)
		}
		_, end, _, err := jsonScanValue(b, i, depth)
		if err != nil {
			return end, err
		}
		i = jsonSkipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = jsonSkipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		return i, fmt.Errorf("expected ',' or '%c'", closer)
	}
}
