package fileformat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

// ErrNotTyped is NumberTypedCSV's answer for a file with a value that does
// not read as its column's type: OpenCSV would turn the column to STRING
// (or widen a DECIMAL's scale) there.
var ErrNotTyped = errors.New("a value does not read as its column's type")

// NumberTypedCSV copies the records of a CSV file without a header line
// (or the part of one that CutCSV gives) from r to w, each with its
// 1-based position, counted from first+1, as a new first field: "17,"
// before the 17th record. Records are told apart as SplitCSV tells them (a
// quote opens a field only at the start of one, a doubled quote inside
// stays inside, line ends in quotes are data); empty lines are copied as
// they are, without a number, as CSV readers skip them; a carriage return
// that ends no line is ErrNotNumbered.
//
// cols are the file's columns as OpenCSV gave them, in file order (a
// column without a name is copied as it is). Besides numbering, it reads each value of a column of a type OpenCSV infers
// other than STRING (BOOLEAN, LONG, DECIMAL, DOUBLE, dates, datetimes) as
// OpenCSV reads it, and writes it in a form that a typed CSV reader
// (DuckDB's read_csv with the column's SQL type) reads as the same value:
//   - empty or blank, quoted or not: an empty field (NULL);
//   - a number, a boolean or a date: the value's text, trimmed, unquoted;
//   - a datetime: the same, when it has seconds, at most six decimals of a
//     second, T or a space between date and clock, and Z or an offset;
//     otherwise YYYY-MM-DD HH:MM:SS[.ffffff] (and Z when zoned), its
//     decimals of a second cut to six as the engine cuts them.
//
// Fields of other columns are copied as they are. A record without as
// many fields as cols is an error naming it; a value that does not read
// is ErrNotTyped. On an error the copy ends after the last whole record
// written, so that what w has is whole records. Memory is the read buffer
// (1 MiB, grown for a longer record up to DefaultMaxRecordBytes) and one
// record.
func NumberTypedCSV(ctx context.Context, r io.Reader, w io.Writer, delim, quote byte, first int64, cols []Column) (CSVNumbered, error) {
	if err := checkDialect("number CSV", delim, quote); err != nil {
		return CSVNumbered{}, err
	}
	n := newNumberer(w, delim, quote, first)
	n.cols = cols
	n.values = make([]int64, len(cols))
	for i, c := range cols {
		if c.Name != "" && readType(c.Type) {
			n.typedCols = append(n.typedCols, i)
		}
	}
	n.digits = strconv.AppendInt(nil, first, 10)
	n.out = make([]byte, 0, typedOut+splitBuffer)
	err := n.numberTyped(ctx, r)
	if !errors.Is(err, errWrite) {
		// What out holds is whole records.
		if ferr := n.flush(); err == nil {
			err = ferr
		}
	}
	return CSVNumbered{Records: n.records - first, Values: n.values}, err
}

// CSVNumbered is what NumberTypedCSV wrote.
type CSVNumbered struct {
	Records int64
	// Values counts, for each typed column, the values written that are
	// not NULL: a reader that took one of them for NULL would have fewer.
	Values []int64
}

// low7 has the low seven bits of each byte set.
const low7 = 0x7F7F7F7F7F7F7F7F

// typedOut is how much NumberTypedCSV gathers before it writes.
const typedOut = 256 << 10

// errWrite marks a failed write: nothing more is written.
var errWrite = errors.New("write")

func (n *numberer) numberTyped(ctx context.Context, r io.Reader) error {
	buf := make([]byte, splitBuffer)
	keep := 0 // bytes carried to the next read: the start of a record
	first := n.records
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("number CSV: stopped after %d records: %w", n.records-first, err)
		}
		if keep == len(buf) {
			if len(buf) >= DefaultMaxRecordBytes {
				return fmt.Errorf("number CSV: record %d is longer than %d bytes", n.records+1, DefaultMaxRecordBytes)
			}
			buf = append(buf, make([]byte, min(len(buf), DefaultMaxRecordBytes-len(buf)))...)
		}
		m, err := io.ReadFull(r, buf[keep:])
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return fmt.Errorf("number CSV: reading after %d records: %w", n.records-first, err)
		}
		b := buf[:keep+m]
		used, err := n.feedTyped(b, eof)
		if err != nil {
			return err
		}
		keep = copy(buf, b[used:])
		if eof {
			return nil
		}
	}
}

// flush writes what out holds.
func (n *numberer) flush() error {
	if len(n.out) == 0 {
		return nil
	}
	_, err := n.w.Write(n.out)
	n.out = n.out[:0]
	if err != nil {
		return fmt.Errorf("number CSV: writing after %d records: %w: %w", n.records, errWrite, err)
	}
	return nil
}

// count adds one to the record number, in digits.
func (n *numberer) count() {
	n.records++
	for i := len(n.digits) - 1; i >= 0; i-- {
		if n.digits[i] < '9' {
			n.digits[i]++
			return
		}
		n.digits[i] = '0'
	}
	n.digits = append([]byte{'1'}, n.digits...)
}

// feedTyped numbers the whole records at the start of b, and empty lines,
// into out, and returns how many bytes it took: b but a record it ends
// inside, unless eof.
func (n *numberer) feedTyped(b []byte, eof bool) (int, error) {
	// Without a quote or a carriage return in b, which most files have
	// none of, no record of b is looked at for them.
	clean := bytes.IndexByte(b, n.scan.quote) < 0 && bytes.IndexByte(b, '\r') < 0
	used := 0
	for used < len(b) {
		if len(n.out) >= typedOut {
			if err := n.flush(); err != nil {
				return used, err
			}
		}
		rest := b[used:]
		switch {
		case rest[0] == '\n':
			n.out = append(n.out, '\n')
			used++
			continue
		case rest[0] == '\r' && len(rest) == 1 && !eof:
			return used, nil
		case rest[0] == '\r' && len(rest) > 1 && rest[1] == '\n':
			n.out = append(n.out, '\r', '\n')
			used += 2
			continue
		}
		end := n.split(rest, eof, clean)
		if end < 0 {
			return used, nil
		}
		rec := rest[:end]
		if !clean {
			if ends, lone := crAhead(rec, false); lone || ends {
				// ends: the file ends on "\r", which ends no line.
				return used, ErrNotNumbered
			}
		}
		if len(n.bounds)/2 != len(n.cols) {
			return used, fmt.Errorf("number CSV: record %d has %d fields where the file has %d columns", n.records+1, len(n.bounds)/2, len(n.cols))
		}
		mark := len(n.out)
		n.count()
		out := append(append(n.out, n.digits...), n.delim)
		at := 0 // rec[:at] is in out
		for k, i := range n.typedCols {
			s, e := n.bounds[2*i], n.bounds[2*i+1]
			if s == e {
				continue // NULL, written as it is
			}
			if n.plain(k, rec[s:e]) {
				n.values[i]++
				continue
			}
			v, same, ok := n.typed(i, rec[s:e])
			if !ok {
				n.out = out[:mark]
				return used, fmt.Errorf("record %d, column %q: %q: %w", n.records, n.cols[i].Name, rec[s:e], ErrNotTyped)
			}
			if !same {
				out = append(append(out, rec[at:s]...), v...)
				at = e
			}
		}
		n.out = append(out, rec[at:]...)
		used += end
	}
	return used, nil
}

// plain reports whether f, the value of the k-th typed column, neither
// quoted nor padded, reads as its type in a form written as it is: what
// typed would count and keep, without the rest of what typed does.
func (n *numberer) plain(k int, f []byte) bool {
	if first, last := f[0], f[len(f)-1]; first == n.scan.quote || first == ' ' || first == '\t' || last == ' ' || last == '\t' {
		return false
	}
	ok, keep := reads(&n.cols[n.typedCols[k]], f)
	return ok && keep
}

// reads reports whether t, unquoted and trimmed, reads as c's type as
// OpenCSV reads it, and whether a typed reader reads it alike as it is
// (keep): a datetime in another form is rewritten (typed).
func reads(c *Column, t []byte) (ok, keep bool) {
	switch c.Type {
	case contract.Boolean:
		_, ok = parseBool(t)
	case contract.Long:
		_, ok = parseLong(t)
	case contract.Decimal:
		// More decimals than the column's widen it in OpenCSV, where a
		// typed reader would round them.
		id, sc, ok2 := plainDecimal(t)
		ok = ok2 && sc <= c.Scale && id+c.Scale <= maxDecimalDigits
	case contract.Double:
		ok = isDouble(t)
	case contract.NaiveDate:
		_, _, _, ok = scanDate(t)
	case contract.NaiveDateTime, contract.UTCDateTime:
		zoned := c.Type == contract.UTCDateTime
		if _, ok = scanDateTime(t, zoned); ok {
			return true, plainDateTime(t, zoned)
		}
	}
	return ok, true
}

// readType reports whether NumberTypedCSV reads the values of a column of
// type t (reads); the others are copied as they are.
func readType(t contract.Type) bool {
	switch t {
	case contract.Boolean, contract.Long, contract.Decimal, contract.Double, contract.NaiveDate, contract.NaiveDateTime, contract.UTCDateTime:
		return true
	}
	return false
}

// split finds the fields of the record at the start of b, as quoteScan
// tells records apart, into n.bounds (each field's start and end in b,
// quotes included, line end not), and returns the record's length with
// its line end, or -1 when b ends inside it and more is to come. clean
// says b holds no quote.
func (n *numberer) split(b []byte, eof, clean bool) int {
	n.bounds = n.bounds[:0]
	delim, quote := n.delim, n.scan.quote
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 && !eof {
		return -1
	}
	line := b
	if nl >= 0 {
		line = b[:nl]
	}
	if clean || bytes.IndexByte(line, quote) < 0 {
		// The common case: no quote, so the record is the line.
		end := len(line)
		if end > 0 && line[end-1] == '\r' {
			end--
		}
		// Fields are short, so a call per field costs more than the
		// search: the delimiters are found eight bytes at a time.
		start, i := 0, 0
		rep := uint64(delim) * 0x0101010101010101
		for ; i+8 <= end; i += 8 {
			x := binary.LittleEndian.Uint64(line[i:]) ^ rep
			// The high bit of each byte of x that is zero: no carry
			// crosses bytes, so the mask is exact.
			m := ^(((x & low7) + low7) | x | low7)
			for m != 0 {
				j := i + bits.TrailingZeros64(m)/8
				n.bounds = append(n.bounds, start, j)
				start = j + 1
				m &= m - 1
			}
		}
		for ; i < end; i++ {
			if line[i] == delim {
				n.bounds = append(n.bounds, start, i)
				start = i + 1
			}
		}
		n.bounds = append(n.bounds, start, end)
		if nl < 0 {
			return len(b)
		}
		return nl + 1
	}
	i := 0
	for {
		start := i
		if i < len(b) && b[i] == quote {
			// A quoted field: a doubled quote stays inside.
			i++
			for {
				j := bytes.IndexByte(b[i:], quote)
				if j < 0 {
					if !eof {
						return -1
					}
					i = len(b)
					break
				}
				i += j + 1
				if i == len(b) && !eof {
					return -1 // the next byte tells a doubled quote
				}
				if i < len(b) && b[i] == quote {
					i++
					continue
				}
				break
			}
		}
		// Outside quotes, up to the next delimiter or line end: a quote
		// here opens nothing.
		for i < len(b) && b[i] != delim && b[i] != '\n' {
			i++
		}
		if i == len(b) {
			if !eof {
				return -1
			}
			n.bounds = append(n.bounds, start, i)
			return i
		}
		if b[i] == delim {
			n.bounds = append(n.bounds, start, i)
			i++
			continue
		}
		end := i
		if end > start && b[end-1] == '\r' {
			end--
		}
		n.bounds = append(n.bounds, start, end)
		return i + 1
	}
}

// typed reads field f of column i as OpenCSV reads it, and counts it in
// values unless it is NULL: what plain does, for any value. ok is false
// when it does not read; same reports that f is to be written as it is,
// and otherwise v is what to write.
func (n *numberer) typed(i int, f []byte) (v []byte, same, ok bool) {
	c := &n.cols[i]
	raw, t := f, f
	if len(f) == 0 {
		return nil, true, true
	}
	if first, last := f[0], f[len(f)-1]; first == n.scan.quote || first == ' ' || first == '\t' || last == ' ' || last == '\t' {
		t = n.unwrap(f)
		if t == nil {
			return nil, false, false
		}
		if len(t) == 0 {
			return nil, false, true
		}
	}
	n.values[i]++
	ok, keep := reads(c, t)
	switch {
	case !ok:
		return nil, false, false
	case !keep:
		zoned := c.Type == contract.UTCDateTime
		dt, _ := scanDateTime(t, zoned)
		n.val = appendDateTime(n.val[:0], dt.time(), zoned)
		return n.val, false, true
	case len(t) == len(raw):
		return nil, true, true
	}
	return t, false, true
}

// unwrap is a typed value's text: unquoted and trimmed; nil when it is
// quoted otherwise than whole, since a quote never belongs in a typed
// value.
func (n *numberer) unwrap(f []byte) []byte {
	if f[0] == n.scan.quote {
		if len(f) < 2 || f[len(f)-1] != n.scan.quote || bytes.IndexByte(f[1:len(f)-1], n.scan.quote) >= 0 {
			return nil
		}
		f = f[1 : len(f)-1]
	}
	return trimSpace(f)
}

// plainDateTime reports whether t, which parseDateTime reads, is in a form
// a typed reader reads alike: a date alone when naive, or seconds, at most
// six decimals, T or a space, and Z (not z) when zoned.
func plainDateTime(t []byte, zoned bool) bool {
	if len(t) == 10 {
		return !zoned
	}
	if (t[10] != ' ' && t[10] != 'T') || len(t) < 19 || t[16] != ':' {
		return false
	}
	i := 19
	if i < len(t) && t[i] == '.' {
		j := i + 1
		for j < len(t) && isDigit(t[j]) {
			j++
		}
		if j-i-1 > 6 {
			return false
		}
		i = j
	}
	return i == len(t) || t[i] != 'z'
}

// appendDateTime writes tm as YYYY-MM-DD HH:MM:SS[.ffffff], with Z when
// zoned, its nanoseconds cut to microseconds.
func appendDateTime(b []byte, tm time.Time, zoned bool) []byte {
	b = tm.AppendFormat(b, "2006-01-02 15:04:05")
	if us := tm.Nanosecond() / 1000; us > 0 {
		// 1000000+us has seven digits: a 1, then us padded to six.
		b = strconv.AppendInt(append(b, '.'), int64(1000000+us), 10)
		b = append(b[:len(b)-7], b[len(b)-6:]...)
	}
	if zoned {
		b = append(b, 'Z')
	}
	return b
}
