package fileformat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// pqAssembler rebuilds a nested top-level field of one row as JSON from
// the values of its leaf columns and their repetition and definition levels
// (the record assembly of the Dremel paper, on one row at a time).
type pqAssembler struct {
	cols [][]parquet.Value // per leaf column: its values in the row
	pos  []int             // per leaf column: the next value to use
	buf  []byte
}

var errLevels = errors.New("inconsistent repetition or definition levels: corrupt Parquet data")

// top returns a top-level field's value: nil when the field is null, else
// its JSON.
func (a *pqAssembler) top(n *pqNode) (any, error) {
	if n.nleaves == 0 {
		return nil, nil // a group without fields holds no data
	}
	if n.optional {
		v, err := a.peek(n.first)
		if err != nil {
			return nil, err
		}
		if v.DefinitionLevel() < n.def {
			return nil, a.skip(n)
		}
	}
	a.buf = a.buf[:0]
	if err := a.field(n); err != nil {
		return nil, err
	}
	return json.RawMessage(append([]byte(nil), a.buf...)), nil
}

func (a *pqAssembler) peek(col int) (parquet.Value, error) {
	if col < 0 || col >= len(a.cols) || a.pos[col] >= len(a.cols[col]) {
		return parquet.Value{}, errLevels
	}
	return a.cols[col][a.pos[col]], nil
}

// more reports whether the column's next value continues the list at
// repetition level rep.
func (a *pqAssembler) more(col, rep int) bool {
	p := a.pos[col]
	return p < len(a.cols[col]) && a.cols[col][p].RepetitionLevel() == rep
}

// skip consumes the one value each leaf under n has where n is undefined.
func (a *pqAssembler) skip(n *pqNode) error {
	for c := n.first; c < n.first+n.nleaves; c++ {
		if a.pos[c] >= len(a.cols[c]) {
			return errLevels
		}
		a.pos[c]++
	}
	return nil
}

// field writes the value of field n within an instance of its parent.
func (a *pqAssembler) field(n *pqNode) error {
	if n.repeated {
		return a.repeated(n, '[', ']', func() error { return a.body(n) })
	}
	if n.optional && n.nleaves > 0 {
		v, err := a.peek(n.first)
		if err != nil {
			return err
		}
		if v.DefinitionLevel() < n.def {
			a.buf = append(a.buf, "null"...)
			return a.skip(n)
		}
	}
	return a.body(n)
}

// repeated writes the occurrences of repeated node r as a JSON array (or,
// for maps, object), calling elem for each.
func (a *pqAssembler) repeated(r *pqNode, open, close byte, elem func() error) error {
	if r.nleaves == 0 {
		a.buf = append(a.buf, open, close)
		return nil
	}
	v, err := a.peek(r.first)
	if err != nil {
		return err
	}
	a.buf = append(a.buf, open)
	if v.DefinitionLevel() < r.def {
		// An empty list: one placeholder value in each leaf.
		a.buf = append(a.buf, close)
		return a.skip(r)
	}
	for i := 0; ; i++ {
		if i > 0 {
			a.buf = append(a.buf, ',')
		}
		if err := elem(); err != nil {
			return err
		}
		if !a.more(r.first, r.rep) {
			break
		}
	}
	a.buf = append(a.buf, close)
	return nil
}

// body writes n's content where n is defined.
func (a *pqAssembler) body(n *pqNode) error {
	switch n.kind {
	case pqLeafNode:
		v, err := a.peek(n.leafCol)
		if err != nil {
			return err
		}
		a.pos[n.leafCol]++
		if v.RepetitionLevel() > n.rep || v.DefinitionLevel() > n.def {
			return errLevels
		}
		if v.IsNull() || v.DefinitionLevel() < n.def {
			a.buf = append(a.buf, "null"...)
			return nil
		}
		a.buf, err = n.leaf.appendJSON(a.buf, v)
		return err
	case pqList:
		r := n.children[0]
		if n.elemChild {
			return a.repeated(r, '[', ']', func() error { return a.field(r.children[0]) })
		}
		return a.repeated(r, '[', ']', func() error { return a.body(r) })
	case pqMap:
		kv := n.children[0]
		return a.repeated(kv, '{', '}', func() error { return a.entry(kv) })
	}
	a.buf = append(a.buf, '{')
	for i, c := range n.children {
		if i > 0 {
			a.buf = append(a.buf, ',')
		}
		a.buf = append(a.buf, c.key...)
		if err := a.field(c); err != nil {
			return err
		}
	}
	a.buf = append(a.buf, '}')
	return nil
}

// entry writes one key/value pair of a map. JSON keys are strings, so a key
// of another type is written as the text of its JSON value.
func (a *pqAssembler) entry(kv *pqNode) error {
	start := len(a.buf)
	if err := a.body(kv.children[0]); err != nil {
		return err
	}
	if a.buf[start] != '"' {
		end := len(a.buf)
		a.buf = append(a.buf, 0, 0)
		copy(a.buf[start+1:], a.buf[start:end])
		a.buf[start] = '"'
		a.buf[len(a.buf)-1] = '"'
	}
	a.buf = append(a.buf, ':')
	if len(kv.children) < 2 {
		a.buf = append(a.buf, "null"...)
		return nil
	}
	if err := a.field(kv.children[1]); err != nil {
		return err
	}
	// Further fields of a malformed key_value group are not part of a
	// map entry; they still hold values that must be consumed.
	for _, c := range kv.children[2:] {
		mark := len(a.buf)
		if err := a.field(c); err != nil {
			return err
		}
		a.buf = a.buf[:mark]
	}
	return nil
}

// appendJSON writes a non-null leaf value as JSON.
func (l *pqLeaf) appendJSON(dst []byte, v parquet.Value) ([]byte, error) {
	switch l.kind {
	case lkBool:
		return strconv.AppendBool(dst, v.Boolean()), nil
	case lkInt32:
		return strconv.AppendInt(dst, int64(v.Int32()), 10), nil
	case lkUint32:
		return strconv.AppendUint(dst, uint64(uint32(v.Int32())), 10), nil
	case lkInt64:
		return strconv.AppendInt(dst, v.Int64(), 10), nil
	case lkUint64:
		return strconv.AppendUint(dst, uint64(v.Int64()), 10), nil
	case lkFloat:
		return appendJSONFloat(dst, float64(v.Float()), 32), nil
	case lkDouble:
		return appendJSONFloat(dst, v.Double(), 64), nil
	case lkFloat16:
		b := v.ByteArray()
		if len(b) != 2 {
			return nil, fmt.Errorf("FLOAT16 value of %d bytes: corrupt Parquet data", len(b))
		}
		return appendJSONFloat(dst, float64(halfToFloat(uint16(b[0])|uint16(b[1])<<8)), 32), nil
	case lkDecimalInt, lkDecimalBytes:
		return l.decimalText(dst, v)
	case lkDate:
		dst = append(dst, '"')
		dst = time.Unix(int64(v.Int32())*86400, 0).UTC().AppendFormat(dst, time.DateOnly)
		return append(dst, '"'), nil
	case lkTimestamp:
		return appendJSONTime(dst, l.timestamp(v), l.utc), nil
	case lkInt96:
		return appendJSONTime(dst, int96Time(v.Int96()), false), nil
	case lkTime:
		dst = append(dst, '"')
		dst = l.appendTime(dst, v)
		return append(dst, '"'), nil
	case lkString:
		return appendJSONString(dst, string(v.ByteArray())), nil
	case lkUUID:
		b := v.ByteArray()
		if len(b) != 16 {
			return nil, fmt.Errorf("UUID value of %d bytes: corrupt Parquet data", len(b))
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, b)
		return append(dst, '"'), nil
	case lkJSON:
		b := v.ByteArray()
		if !jsonValid(b) {
			// Kept as a string rather than failing the whole value.
			return appendJSONString(dst, string(b)), nil
		}
		return append(dst, b...), nil
	case lkBinary:
		b := v.ByteArray()
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	}
	return append(dst, "null"...), nil
}

func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendJSONTime writes ISO 8601 with the digits the value needs; a naive
// timestamp has no zone.
func appendJSONTime(dst []byte, t time.Time, utc bool) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05.999999999")
	if utc {
		dst = append(dst, 'Z')
	}
	return append(dst, '"')
}

func jsonValid(b []byte) bool { return json.Valid(b) }

func jsonRaw(b []byte) json.RawMessage { return json.RawMessage(append([]byte(nil), b...)) }

// appendJSONString writes s as a JSON string, as encoding/json does
// (invalid UTF-8 becomes U+FFFD) but without HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
