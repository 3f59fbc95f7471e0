package fileformat

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/contract"
)

// csvMaxSampleBytes ends the sample early when its records are large, so
// that the sample's memory stays bounded (and its int32 offsets valid).
const csvMaxSampleBytes = 64 << 20

// csvDelimiters are the delimiters the sniffer tries, in order of preference
// when two fit equally.
var csvDelimiters = []byte{',', ';', '\t', '|'}

// CSVInfo is what OpenCSV found out about a file (or was told by
// CSVOptions).
type CSVInfo struct {
	Delimiter byte
	Quote     byte
	// Header says whether the first record holds the column names.
	Header bool
	// Names are the header's names as written in the file (nil without a
	// header); Columns() holds them cleaned by CleanNames.
	Names []string
	// Renamed maps each header name that CleanNames changed to its
	// cleaned form, for telling the user.
	Renamed map[string]string
}

// CSVRows streams a CSV file's rows. OpenCSV returns it as a Rows; assert
// the type to read Info.
type CSVRows struct {
	rr       *recordReader
	name     string
	info     CSVInfo
	cols     []Column
	decimals bool
	vals     []any

	// The sampled records, returned before the rest of the file: arena
	// holds their fields' bytes.
	arena   []byte
	sample  []sampleRec
	sbounds []int32
	squoted []bool
	next    int // index of the next sample record to return

	// In a one-column file, empty lines are NULL rows, except at the end
	// of the file: blankRun counts the empty lines not yet known to be
	// followed by a record, nullRun the NULL rows still to return before
	// the record the reader holds (held).
	blankRun, nullRun int
	held              bool

	err  error
	done bool
}

type sampleRec struct {
	line   int64
	first  int // index of its first field in sbounds/2 and squoted
	fields int
	blank  bool
}

// OpenCSV reads a CSV file as typed rows, in one pass.
//
// It first reads up to Options.SampleRows records (after the header) and
// sniffs from them whatever CSVOptions leaves open: the delimiter (among
// , ; tab and |, the one that splits the records into the same number of
// fields, more than one), whether the first record is a header (it is when
// one of its values does not read as the type the rest of its column has,
// or when every column is text), and each column's type: BOOLEAN (true or
// false, any case), LONG, DECIMAL (plain numbers whose fractional values
// all have the same number of decimals, such as amounts: read exactly, as
// contract.DecimalText; CSVOptions.DecimalAsDouble turns this off), DOUBLE,
// NAIVE_DATE (YYYY-MM-DD), NAIVE_DATETIME (YYYY-MM-DD HH:MM[:SS[.fff]], T
// or space; a bare date is midnight), UTC_DATETIME (the same with Z or an
// offset) or STRING. Numbers written with leading zeros ("007") are codes,
// and read as STRING. Spaces around numbers, booleans and times are
// ignored, and a value of only spaces is NULL there.
//
// Without a header the columns are column0, column1, ...; header names are
// cleaned by CleanNames (CSVRows.Info tells the original names).
//
// Values: an unquoted empty field is NULL; a quoted empty one ("") is the
// empty string in a STRING column and NULL in others. A value after the
// sample that does not read as its column's type ("n/a" in a LONG column)
// is returned as its text, and from then on Columns() reports the column as
// STRING (a DECIMAL column that meets more decimals reports the larger
// Scale instead): consumers compare Columns() after each row, or at the end,
// and widen. Columns() returns a new slice after such a change, never
// altering one it returned before.
//
// Parsing follows RFC 4180: quoted fields may hold delimiters, line ends
// and doubled quotes; a quote inside an unquoted field is an ordinary
// character; lines end in LF or CRLF; a UTF-8 byte order mark is skipped.
// Empty lines are skipped, except in a one-column file, where they are NULL
// values (but for those at the end of the file). An empty file has no
// columns and no rows.
//
// Errors name the file and the physical line (counting line ends inside
// quoted fields): a record with more or fewer fields than the header, a
// quote that is never closed, text after a closing quote, text that is not
// valid UTF-8 (the reader does not guess encodings: convert such a file,
// e.g. with iconv -f latin1 -t utf-8), a record longer than
// CSVOptions.MaxRecordBytes.
//
// Memory is the read buffer (256 KiB, grown only for a longer record), one
// record and the sample (which stops early at 64 MiB).
func OpenCSV(r io.Reader, name string, opts Options) (Rows, error) {
	co := opts.CSV
	quote := co.Quote
	if quote == 0 {
		quote = '"'
	}
	if co.Delimiter == quote || co.Delimiter == '\n' || co.Delimiter == '\r' {
		return nil, fmt.Errorf("%s: delimiter %q cannot be the quote or a line end; choose another CSVOptions.Delimiter", name, rune(co.Delimiter))
	}
	if quote == '\n' || quote == '\r' {
		return nil, fmt.Errorf("%s: quote %q cannot be a line end; choose another CSVOptions.Quote", name, rune(quote))
	}
	maxRec := co.MaxRecordBytes
	if maxRec <= 0 {
		maxRec = DefaultMaxRecordBytes
	}
	maxRec = min(maxRec, 1<<30) // field offsets are int32
	sampleRows := opts.SampleRows
	if sampleRows <= 0 {
		sampleRows = DefaultSampleRows
	}
	rr := newRecordReader(r, name, co.Delimiter, quote, max(maxRec, csvReadBuffer))
	c := &CSVRows{rr: rr, name: name, decimals: !co.DecimalAsDouble}
	c.info.Quote = quote

	if err := rr.fillFull(); err != nil {
		return nil, err
	}
	if cr := bytes.IndexByte(rr.buf[:rr.end], '\r'); cr >= 0 && cr < rr.end-1 && !hasLineEnd(rr.buf[:rr.end]) {
		return nil, fmt.Errorf("%s: lines end in a carriage return alone (old Mac line ends); convert them to LF or CRLF (e.g. tr '\\r' '\\n')", name)
	}
	// A whole first line lets the delimiter be sniffed even when it is
	// longer than the buffer.
	for !rr.eof && !hasLineEnd(rr.buf[:rr.end]) {
		if err := rr.fill(); err != nil {
			return nil, err
		}
		if err := rr.fillFull(); err != nil {
			return nil, err
		}
	}
	if rr.end >= 3 && rr.buf[0] == 0xEF && rr.buf[1] == 0xBB && rr.buf[2] == 0xBF {
		rr.pos = 3
	}
	if rr.delim == 0 {
		rr.delim = sniffDelimiter(rr.buf[rr.pos:rr.end], quote, rr.eof, sampleRows+1)
	}
	c.info.Delimiter = rr.delim

	if err := c.readSample(sampleRows + 1); err != nil {
		return nil, err
	}
	if len(c.sample) == 0 {
		c.done = true
		return c, nil
	}
	if err := c.sniff(co.Header); err != nil {
		return nil, err
	}
	c.vals = make([]any, len(c.cols))
	return c, nil
}

func hasLineEnd(b []byte) bool {
	return bytes.IndexByte(b, '\n') >= 0
}

// sniffDelimiter picks the candidate that splits the most sampled records
// into as many fields as the first record has, more than one; ties go to
// more fields, then to the order of csvDelimiters. A file no candidate
// splits has one column: ",".
func sniffDelimiter(data []byte, quote byte, eof bool, limit int) byte {
	best, bestScore, bestFields := byte(','), 0, 0
	for _, d := range csvDelimiters {
		if d == quote {
			continue
		}
		counts := countFields(data, d, quote, eof, limit)
		if len(counts) == 0 || counts[0] < 2 {
			continue
		}
		score := 0
		for _, n := range counts {
			if n == counts[0] {
				score++
			}
		}
		if score > bestScore || (score == bestScore && counts[0] > bestFields) {
			best, bestScore, bestFields = d, score, counts[0]
		}
	}
	return best
}

// readSample reads up to n non-empty records (with the NULL rows of a
// one-column file's empty lines among them) into the arena.
func (c *CSVRows) readSample(n int) error {
	ncols := 0
	records := 0
	for records < n && len(c.arena) < csvMaxSampleBytes {
		err := c.rr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rr := c.rr
		if rr.blank {
			if ncols == 1 {
				c.blankRun++
			}
			continue
		}
		if ncols == 0 {
			ncols = len(rr.quoted)
		}
		for ; c.blankRun > 0; c.blankRun-- {
			c.sample = append(c.sample, sampleRec{line: rr.recLine - int64(c.blankRun), first: len(c.squoted), blank: true})
		}
		rec := sampleRec{line: rr.recLine, first: len(c.squoted), fields: len(rr.quoted)}
		base := int32(len(c.arena))
		lo, hi := rr.bounds[0], rr.bounds[len(rr.bounds)-1]
		c.arena = append(c.arena, rr.data[lo:hi]...)
		for i := range rr.quoted {
			c.sbounds = append(c.sbounds, base+rr.bounds[2*i]-lo, base+rr.bounds[2*i+1]-lo)
		}
		c.squoted = append(c.squoted, rr.quoted...)
		c.sample = append(c.sample, rec)
		records++
	}
	return nil
}

// field returns sample record s's field i.
func (c *CSVRows) field(s sampleRec, i int) []byte {
	k := s.first + i
	return c.arena[c.sbounds[2*k]:c.sbounds[2*k+1]]
}

// sniff settles the header and the column types from the sample.
func (c *CSVRows) sniff(header *bool) error {
	first := c.sample[0]
	ncols := first.fields
	for _, s := range c.sample[1:] {
		if !s.blank && s.fields != ncols {
			return c.ragged(s.line, ncols, s.fields)
		}
	}
	sniffFrom := func(from int) []colSniff {
		sn := make([]colSniff, ncols)
		for _, s := range c.sample[from:] {
			if s.blank {
				continue
			}
			for i := range sn {
				sn[i].add(c.field(s, i))
			}
		}
		return sn
	}
	rest := sniffFrom(1)
	hasHeader := false
	if header != nil {
		hasHeader = *header
	} else {
		allText := true
		for i := range rest {
			col := rest[i].column("", c.decimals)
			if col.Type != contract.String {
				allText = false
				if !fits(col.Type, c.field(first, i)) {
					hasHeader = true
				}
			}
		}
		hasHeader = hasHeader || allText
	}
	c.info.Header = hasHeader
	names := make([]string, ncols)
	if hasHeader {
		for i := range names {
			f := c.field(first, i)
			if !utf8.Valid(f) {
				return fmt.Errorf("%s: line %d: column name %d is not valid UTF-8; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)", c.name, first.line, i+1)
			}
			names[i] = string(f)
		}
		c.info.Names = names
		var clean []string
		clean, c.info.Renamed = CleanNames(names)
		names = clean
		c.sample = c.sample[1:]
		// Empty lines between the header and the first record are not
		// NULL rows of a one-column file.
		for len(c.sample) > 0 && c.sample[0].blank {
			c.sample = c.sample[1:]
		}
	} else {
		for i := range names {
			names[i] = "column" + strconv.Itoa(i)
		}
		rest = sniffFrom(0)
	}
	c.cols = make([]Column, ncols)
	for i := range c.cols {
		c.cols[i] = rest[i].column(names[i], c.decimals)
	}
	return nil
}

func (c *CSVRows) ragged(line int64, want, got int) error {
	return raggedRecord(c.name, line, want, got, c.info.Delimiter)
}

func raggedRecord(name string, line int64, want, got int, delim byte) error {
	return fmt.Errorf("%s: line %d: the record has %d fields where the first record has %d; quote fields that contain the delimiter %q, or fix the line", name, line, got, want, rune(delim))
}

// Info reports the delimiter, quote and header OpenCSV used.
func (c *CSVRows) Info() CSVInfo { return c.info }

// Columns returns the columns, with their types as known so far. The slice
// must not be modified.
func (c *CSVRows) Columns() []Column { return c.cols }

// Values returns the current row; it is valid until the next call to Next.
func (c *CSVRows) Values() []any { return c.vals }

// Err returns the error that stopped Next, if any.
func (c *CSVRows) Err() error { return c.err }

// Close releases the buffers. It does not close the reader OpenCSV was
// given.
func (c *CSVRows) Close() error {
	c.done = true
	c.rr.buf, c.rr.scratch, c.arena = nil, nil, nil
	return nil
}

// Next moves to the next row.
func (c *CSVRows) Next() bool {
	if c.done || c.err != nil {
		return false
	}
	if c.next < len(c.sample) {
		s := c.sample[c.next]
		c.next++
		if s.blank {
			c.vals[0] = nil
			return true
		}
		if c.next == len(c.sample) {
			// The sample is no longer needed: let it go.
			defer func() { c.sample, c.arena, c.sbounds, c.squoted, c.next = nil, nil, nil, nil, 0 }()
		}
		k := s.first
		return c.convert(c.arena, c.sbounds[2*k:2*(k+s.fields)], c.squoted[k:k+s.fields], s.line)
	}
	rr := c.rr
	if c.nullRun > 0 {
		c.nullRun--
		c.vals[0] = nil
		return true
	}
	if c.held {
		c.held = false
		return c.convert(rr.data, rr.bounds, rr.quoted, rr.recLine)
	}
	for {
		err := rr.next()
		if err == io.EOF {
			c.done = true
			return false
		}
		if err != nil {
			c.err = err
			return false
		}
		if rr.blank {
			if len(c.cols) == 1 {
				c.blankRun++
			}
			continue
		}
		if c.blankRun > 0 {
			c.nullRun, c.blankRun, c.held = c.blankRun-1, 0, true
			c.vals[0] = nil
			return true
		}
		return c.convert(rr.data, rr.bounds, rr.quoted, rr.recLine)
	}
}

// convert turns one record's fields into c.vals.
func (c *CSVRows) convert(data []byte, bounds []int32, quoted []bool, line int64) bool {
	if len(quoted) != len(c.cols) {
		c.err = c.ragged(line, len(c.cols), len(quoted))
		return false
	}
	// One string holds the text of every STRING and DECIMAL field of the
	// record, so that a record costs one allocation for its text, not one
	// per field.
	var text string
	var base int32
	haveText := false
	sub := func(s, e int32) string {
		if !haveText {
			base = bounds[0]
			text = string(data[base:bounds[len(bounds)-1]])
			haveText = true
		}
		return text[s-base : e-base]
	}
	for i := range c.cols {
		s, e := bounds[2*i], bounds[2*i+1]
		f := data[s:e]
		col := &c.cols[i]
		if col.Type == contract.String {
			if len(f) == 0 {
				if quoted[i] {
					c.vals[i] = ""
				} else {
					c.vals[i] = nil
				}
				continue
			}
			if !utf8.Valid(f) {
				c.err = c.badUTF8(line, i, f)
				return false
			}
			c.vals[i] = sub(s, e)
			continue
		}
		for s < e && (data[s] == ' ' || data[s] == '\t') {
			s++
		}
		for e > s && (data[e-1] == ' ' || data[e-1] == '\t') {
			e--
		}
		t := data[s:e]
		if len(t) == 0 {
			c.vals[i] = nil
			continue
		}
		var v any
		ok := false
		switch col.Type {
		case contract.Long:
			var n int64
			if n, ok = parseLong(t); ok {
				v = n
			}
		case contract.Double:
			var x float64
			if x, ok = parseDouble(t); ok {
				v = x
			}
		case contract.Decimal:
			id, sc, ok2 := plainDecimal(t)
			ok = ok2 && id+max(sc, col.Scale) <= maxDecimalDigits
			if ok {
				if sc > col.Scale {
					c.widen(i, contract.Decimal, sc)
				}
				v = contract.DecimalText(sub(s, e))
			}
		case contract.Boolean:
			var b bool
			if b, ok = parseBool(t); ok {
				v = b
			}
		case contract.NaiveDate:
			v, ok = parseDate(t)
		case contract.NaiveDateTime:
			v, ok = parseDateTime(t, false)
		case contract.UTCDateTime:
			v, ok = parseDateTime(t, true)
		}
		if !ok {
			if !utf8.Valid(f) {
				c.err = c.badUTF8(line, i, f)
				return false
			}
			c.widen(i, contract.String, 0)
			v = string(f)
		}
		c.vals[i] = v
	}
	return true
}

// widen changes column i's type in a new slice, so that a slice Columns
// returned earlier still tells the types before the change.
func (c *CSVRows) widen(i int, t contract.Type, scale int) {
	cols := slices.Clone(c.cols)
	cols[i].Type, cols[i].Scale = t, scale
	if t != contract.Decimal {
		cols[i].Precision, cols[i].Scale = 0, 0
	}
	c.cols = cols
}

func (c *CSVRows) badUTF8(line int64, i int, f []byte) error {
	return badUTF8(c.name, line, c.cols[i].Name, f)
}
