package fileformat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/contract"
)

// CSVBatch is up to a batch of a CSV file's records, column by column, as
// ReadCSVColumns reads them: what a columnar writer (an Arrow array, a
// database's vector) takes without reading text again.
type CSVBatch struct {
	Len int
	// Positions are the records' 1-based positions in the file (empty
	// lines are not records).
	Positions []int64
	Cols      []ColumnData
}

// ColumnData is one column of a CSVBatch. Null[i] says record i's value is
// NULL; otherwise it is in the slice its column's type uses:
//   - Ints: BOOLEAN (1 for true), LONG, NAIVE_DATE (days since
//     1970-01-01), NAIVE_DATETIME and UTC_DATETIME (microseconds since
//     1970-01-01 00:00 UTC, the naive ones read as UTC, cut to whole
//     microseconds), DECIMAL (the value times 10^Scale, its low 64 bits;
//     Hi holds the high 64 of the 128-bit two's complement);
//   - Floats: DOUBLE;
//   - Text and Offsets: STRING and any other type, as text: record i's
//     value is Text[Offsets[i]:Offsets[i+1]] (Offsets starts with 0, as
//     Arrow's do).
type ColumnData struct {
	Null    []bool
	Ints    []int64
	Hi      []int64
	Floats  []float64
	Text    []byte
	Offsets []int32
}

// ReadCSVColumns reads the records of a CSV file without a header line (or
// the part of one that CutCSV gives) from r, numbering them from first+1,
// and hands them to emit in batches of up to batch records, column by
// column. It reads every value as OpenCSV reads it with cols as its
// columns (the same record splitting, unquoting, trimming, parsers and
// NULLs), so a batch holds exactly the values OpenCSV's rows would. emit
// owns each batch it is given.
//
// A value that OpenCSV would read only by changing its column's type (to
// STRING, or a DECIMAL to a larger scale) is ErrNotTyped, as is a DECIMAL
// of more digits than the column holds; a record without as many fields as
// cols, or a STRING that is not UTF-8, is the error OpenCSV gives. A file
// of one column is errors.ErrUnsupported. name is the file's name in
// errors, whose line numbers count from the start of r: for a part after
// the first, the whole file read by OpenCSV tells the file's line. Memory
// is OpenCSV's read buffer, one record, the batch being filled and what
// emit keeps.
func ReadCSVColumns(ctx context.Context, r io.Reader, name string, delim, quote byte, first int64, cols []Column, batch int, emit func(*CSVBatch) error) (records int64, err error) {
	if err := checkDialect("read CSV", delim, quote); err != nil {
		return 0, err
	}
	if batch <= 0 {
		return 0, fmt.Errorf("read CSV: a batch of %d records", batch)
	}
	if len(cols) == 1 {
		// OpenCSV reads an empty line there as a NULL row unless only
		// empty lines follow it, which a part cannot tell.
		return 0, fmt.Errorf("read CSV: %s has one column, whose empty lines OpenCSV reads as NULL rows: read it with OpenCSV: %w", name, errors.ErrUnsupported)
	}
	rr := newRecordReader(r, name, delim, quote, DefaultMaxRecordBytes)
	var b *CSVBatch
	// Each batch's text starts at the size of the last one's, so that it
	// is not grown value by value.
	text := make([]int, len(cols))
	pos := first
	for {
		if err := ctx.Err(); err != nil {
			return pos - first, fmt.Errorf("%s: stopped after %d records: %w", name, pos-first, err)
		}
		err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return pos - first, err
		}
		if rr.blank {
			continue
		}
		if len(rr.quoted) != len(cols) {
			return pos - first, raggedRecord(name, rr.recLine, len(cols), len(rr.quoted), delim)
		}
		if b == nil {
			b = newCSVBatch(cols, batch, text)
		}
		pos++
		if err := b.add(rr, cols, pos, name); err != nil {
			return pos - 1 - first, err
		}
		if b.Len == batch {
			for i := range text {
				text[i] = len(b.Cols[i].Text) + len(b.Cols[i].Text)/8
			}
			if err := emit(b); err != nil {
				return pos - first, err
			}
			b = nil
		}
	}
	if b != nil {
		if err := emit(b); err != nil {
			return pos - first, err
		}
	}
	return pos - first, nil
}

func newCSVBatch(cols []Column, n int, text []int) *CSVBatch {
	b := &CSVBatch{Positions: make([]int64, 0, n), Cols: make([]ColumnData, len(cols))}
	for i, c := range cols {
		d := &b.Cols[i]
		d.Null = make([]bool, 0, n)
		switch columnKind(c) {
		case kindInt:
			d.Ints = make([]int64, 0, n)
		case kindDecimal:
			d.Ints, d.Hi = make([]int64, 0, n), make([]int64, 0, n)
		case kindFloat:
			d.Floats = make([]float64, 0, n)
		default:
			d.Offsets = append(make([]int32, 0, n+1), 0)
			d.Text = make([]byte, 0, text[i])
		}
	}
	return b
}

const (
	kindText = iota
	kindInt
	kindDecimal
	kindFloat
)

// columnKind is where ColumnData keeps values of c's type.
func columnKind(c Column) int {
	switch c.Type {
	case contract.Boolean, contract.Long, contract.NaiveDate, contract.NaiveDateTime, contract.UTCDateTime:
		return kindInt
	case contract.Decimal:
		return kindDecimal
	case contract.Double:
		return kindFloat
	}
	return kindText
}

// add appends the record rr holds, as OpenCSV's convert reads it.
func (b *CSVBatch) add(rr *recordReader, cols []Column, pos int64, name string) error {
	b.Positions = append(b.Positions, pos)
	b.Len++
	for i := range cols {
		c, d := &cols[i], &b.Cols[i]
		s, e := rr.bounds[2*i], rr.bounds[2*i+1]
		f := rr.data[s:e]
		kind := columnKind(*c)
		if kind == kindText {
			null := len(f) == 0 && !rr.quoted[i]
			if c.Type == contract.String && !utf8.Valid(f) {
				return badUTF8(name, rr.recLine, c.Name, f)
			}
			d.Null = append(d.Null, null)
			d.Text = append(d.Text, f...)
			if len(d.Text) > 1<<31-1 {
				return fmt.Errorf("%s: line %d: a batch's text of column %q passed 2 GiB; read smaller batches", name, rr.recLine, c.Name)
			}
			d.Offsets = append(d.Offsets, int32(len(d.Text)))
			continue
		}
		t := trimSpace(f)
		if len(t) == 0 {
			d.Null = append(d.Null, true)
			switch kind {
			case kindInt:
				d.Ints = append(d.Ints, 0)
			case kindDecimal:
				d.Ints, d.Hi = append(d.Ints, 0), append(d.Hi, 0)
			case kindFloat:
				d.Floats = append(d.Floats, 0)
			}
			continue
		}
		ok := false
		switch c.Type {
		case contract.Boolean:
			var v bool
			if v, ok = parseBool(t); ok {
				n := int64(0)
				if v {
					n = 1
				}
				d.Ints = append(d.Ints, n)
			}
		case contract.Long:
			var v int64
			if v, ok = parseLong(t); ok {
				d.Ints = append(d.Ints, v)
			}
		case contract.NaiveDate:
			var y, m, dd int
			if y, m, dd, ok = scanDate(t); ok {
				d.Ints = append(d.Ints, unixDays(y, m, dd))
			}
		case contract.NaiveDateTime, contract.UTCDateTime:
			var dt dateTime
			if dt, ok = scanDateTime(t, c.Type == contract.UTCDateTime); ok {
				d.Ints = append(d.Ints, dt.unixMicro())
			}
		case contract.Decimal:
			var lo, hi int64
			if lo, hi, ok = scaledDecimal(t, c.Scale); ok {
				d.Ints, d.Hi = append(d.Ints, lo), append(d.Hi, hi)
			}
		case contract.Double:
			var v float64
			if v, ok = parseDouble(t); ok {
				d.Floats = append(d.Floats, v)
			}
		}
		if !ok {
			return fmt.Errorf("%s: line %d, column %q: %q: %w", name, rr.recLine, c.Name, f, ErrNotTyped)
		}
		d.Null = append(d.Null, false)
	}
	return nil
}

// badUTF8 is OpenCSV's error for a STRING value that is not UTF-8.
func badUTF8(name string, line int64, col string, f []byte) error {
	off := 0
	for off < len(f) {
		r, n := utf8.DecodeRune(f[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return fmt.Errorf("%s: line %d, column %q: byte 0x%02x at offset %d of the value is not valid UTF-8; sluice reads UTF-8 only: convert the file (e.g. iconv -f latin1 -t utf-8)", name, line, col, f[off], off)
}

// unixDays is the days from 1970-01-01 to y-m-d (proleptic Gregorian).
func unixDays(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	doy := (153*((m+9)%12)+2)/5 + d - 1
	return int64(era)*146097 + int64(yoe*365+yoe/4-yoe/100+doy) - 719468
}

// unixMicro is dt's instant in microseconds since the epoch, its
// nanoseconds cut as dt.time().UnixMicro() cuts them.
func (dt dateTime) unixMicro() int64 {
	s := unixDays(dt.y, dt.m, dt.d)*86400 + int64(dt.hh*3600+dt.mm*60+dt.ss) - int64(dt.off/time.Second)
	return s*1_000_000 + int64(dt.ns/1000)
}

// scaledDecimal reads t as OpenCSV reads a DECIMAL of scale scale, and
// returns its value times 10^scale as a 128-bit two's complement (lo,
// hi); ok is false where OpenCSV would not read it at that scale.
func scaledDecimal(t []byte, scale int) (lo, hi int64, ok bool) {
	id, sc, ok := plainDecimal(t)
	if !ok || sc > scale || id+scale > maxDecimalDigits {
		return 0, 0, false
	}
	neg := t[0] == '-'
	if t[0] == '-' || t[0] == '+' {
		t = t[1:]
	}
	var h, l uint64
	digit := func(c byte) {
		// (h, l) = (h, l)*10 + c; 38 digits fit 127 bits.
		hh, ll := bits.Mul64(l, 10)
		h = h*10 + hh
		var carry uint64
		l, carry = bits.Add64(ll, uint64(c-'0'), 0)
		h += carry
	}
	for _, c := range t {
		if c != '.' {
			digit(c)
		}
	}
	for range scale - sc {
		digit('0')
	}
	if neg {
		// Two's complement: invert and add one.
		var carry uint64
		l, carry = bits.Add64(^l, 1, 0)
		h = ^h + carry
	}
	return int64(l), int64(h), true
}
