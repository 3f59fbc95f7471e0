package fileformat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// csvReadBuffer is the initial read buffer. It grows only to hold a single
// record longer than itself, up to csvOptions.MaxRecordBytes.
const csvReadBuffer = 256 << 10

// DefaultMaxRecordBytes bounds one CSV record (CSVOptions.MaxRecordBytes).
const DefaultMaxRecordBytes = 64 << 20

// errNeedMore says the buffer ends inside a record: read more and parse the
// record again from its start.
var errNeedMore = errors.New("need more input")

// recordReader splits a CSV byte stream into records. It holds one read
// buffer and one record: fields are slices of data, which is either the read
// buffer (a line without quotes, the common case, costs no copy) or scratch
// (quoted fields, unescaped).
type recordReader struct {
	r     io.Reader
	name  string
	buf   []byte
	pos   int // start of the unparsed input in buf
	end   int // end of the input read into buf
	eof   bool
	delim byte
	quote byte
	max   int

	// line is the physical line (1-based) where the next record starts.
	line int64

	// The current record.
	data    []byte
	bounds  []int32 // start, end in data for each field
	quoted  []bool
	recLine int64
	blank   bool // the record is an empty line

	scratch []byte
}

func newRecordReader(r io.Reader, name string, delim, quote byte, max int) *recordReader {
	return &recordReader{r: r, name: name, buf: make([]byte, csvReadBuffer), delim: delim, quote: quote, max: max, line: 1}
}

// fill moves the unparsed input to the front of the buffer, grows the buffer
// when a single record fills it, and reads at least one more byte unless at
// the end of the input.
func (rr *recordReader) fill() error {
	if rr.eof {
		return nil
	}
	if rr.pos > 0 {
		n := copy(rr.buf, rr.buf[rr.pos:rr.end])
		rr.pos, rr.end = 0, n
	}
	if rr.end == len(rr.buf) {
		if len(rr.buf) >= rr.max {
			return fmt.Errorf("%s: line %d: a record is longer than %d bytes; if a quote opened on this line is never closed, the rest of the file reads as one field: check the quoting, or raise CSVOptions.MaxRecordBytes", rr.name, rr.line, rr.max)
		}
		nb := make([]byte, min(2*len(rr.buf), rr.max))
		copy(nb, rr.buf[:rr.end])
		rr.buf = nb
	}
	for {
		n, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += n
		if err == io.EOF {
			rr.eof = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: reading after line %d: %w", rr.name, rr.line, err)
		}
		if n > 0 {
			return nil
		}
	}
}

// fillFull reads until the buffer is full or the input ends, so that the
// sniffer sees as many records as the buffer holds.
func (rr *recordReader) fillFull() error {
	for !rr.eof && rr.end < len(rr.buf) {
		n, err := rr.r.Read(rr.buf[rr.end:])
		rr.end += n
		if err == io.EOF {
			rr.eof = true
		} else if err != nil {
			return fmt.Errorf("%s: reading the start of the file: %w", rr.name, err)
		}
	}
	return nil
}

// next reads the next record into data, bounds and quoted. It returns io.EOF
// at the end of the input.
func (rr *recordReader) next() error {
	for {
		if rr.pos >= rr.end {
			if rr.eof {
				return io.EOF
			}
			if err := rr.fill(); err != nil {
				return err
			}
			continue
		}
		seg := rr.buf[rr.pos:rr.end]
		nl := bytes.IndexByte(seg, '\n')
		if nl < 0 && !rr.eof {
			if err := rr.fill(); err != nil {
				return err
			}
			continue
		}
		line := seg
		consumed := len(seg)
		if nl >= 0 {
			line = seg[:nl]
			consumed = nl + 1
		}
		if bytes.IndexByte(line, rr.quote) < 0 {
			// No quote on the line: the record is the line, split at
			// every delimiter.
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			rr.data = line
			rr.bounds = rr.bounds[:0]
			rr.quoted = rr.quoted[:0]
			rr.blank = len(line) == 0
			start := 0
			for {
				i := bytes.IndexByte(line[start:], rr.delim)
				if i < 0 {
					break
				}
				rr.bounds = append(rr.bounds, int32(start), int32(start+i))
				rr.quoted = append(rr.quoted, false)
				start += i + 1
			}
			rr.bounds = append(rr.bounds, int32(start), int32(len(line)))
			rr.quoted = append(rr.quoted, false)
			rr.recLine = rr.line
			rr.line++
			rr.pos += consumed
			return nil
		}
		n, lines, err := rr.parseQuoted(seg)
		if err == errNeedMore {
			if err := rr.fill(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		rr.data = rr.scratch
		rr.blank = false
		rr.recLine = rr.line
		rr.line += lines
		rr.pos += n
		return nil
	}
}

// parseQuoted parses one record that contains a quote, from the start of
// seg, unescaping into scratch. It returns the bytes consumed and the number
// of physical lines the record spans (counting its line end), or errNeedMore
// when seg ends before the record does.
func (rr *recordReader) parseQuoted(seg []byte) (consumed int, lines int64, err error) {
	rr.scratch = rr.scratch[:0]
	rr.bounds = rr.bounds[:0]
	rr.quoted = rr.quoted[:0]
	q, d := rr.quote, rr.delim
	i := 0
	var nls int64 // newlines inside quoted fields so far
	for {
		start := len(rr.scratch)
		if i < len(seg) && seg[i] == q {
			openLine := rr.line + nls
			i++
			for {
				j := bytes.IndexByte(seg[i:], q)
				if j < 0 {
					if rr.eof {
						return 0, 0, fmt.Errorf("%s: line %d: a quoted field opened here is never closed (the file ends inside it); double a quote that belongs in the value (\"\") or close the field", rr.name, openLine)
					}
					return 0, 0, errNeedMore
				}
				chunk := seg[i : i+j]
				nls += int64(bytes.Count(chunk, []byte{'\n'}))
				rr.scratch = append(rr.scratch, chunk...)
				i += j + 1
				if i == len(seg) {
					if !rr.eof {
						// The next byte decides between an escaped
						// quote and the end of the field.
						return 0, 0, errNeedMore
					}
					break
				}
				if seg[i] == q {
					rr.scratch = append(rr.scratch, q)
					i++
					continue
				}
				break
			}
			rr.bounds = append(rr.bounds, int32(start), int32(len(rr.scratch)))
			rr.quoted = append(rr.quoted, true)
			if i == len(seg) { // eof, checked above
				return i, nls + 1, nil
			}
			switch c := seg[i]; {
			case c == d:
				i++
				continue
			case c == '\n':
				return i + 1, nls + 1, nil
			case c == '\r' && i+1 < len(seg) && seg[i+1] == '\n':
				return i + 2, nls + 1, nil
			case c == '\r' && i+1 == len(seg) && !rr.eof:
				return 0, 0, errNeedMore
			case c == '\r' && i+1 == len(seg):
				return i + 1, nls + 1, nil
			default:
				col := i - bytes.LastIndexByte(seg[:i], '\n')
				return 0, 0, fmt.Errorf("%s: line %d, column %d: %q after the closing quote of a field, where a delimiter or a line end must come; double a quote that belongs in the value (\"\")", rr.name, rr.line+nls, col, rune(c))
			}
		}
		// An unquoted field; a quote inside it is an ordinary character.
		j := i
		for j < len(seg) && seg[j] != d && seg[j] != '\n' {
			j++
		}
		if j == len(seg) && !rr.eof {
			return 0, 0, errNeedMore
		}
		f := seg[i:j]
		if (j == len(seg) || seg[j] == '\n') && len(f) > 0 && f[len(f)-1] == '\r' {
			f = f[:len(f)-1]
		}
		rr.scratch = append(rr.scratch, f...)
		rr.bounds = append(rr.bounds, int32(start), int32(len(rr.scratch)))
		rr.quoted = append(rr.quoted, false)
		if j == len(seg) {
			return j, nls + 1, nil
		}
		if seg[j] == '\n' {
			return j + 1, nls + 1, nil
		}
		i = j + 1
	}
}

// countFields counts the fields of the complete records at the start of
// data, reading at most limit records and skipping empty lines, as if the
// delimiter were delim. A record cut by the end of data is left out unless
// eof says data is the whole input.
func countFields(data []byte, delim, quote byte, eof bool, limit int) []int {
	var counts []int
	i := 0
	for i < len(data) && len(counts) < limit {
		if data[i] == '\n' {
			i++
			continue
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i += 2
			continue
		}
		fields := 1
		fieldStart := true
		inQuote := false
		complete := false
	scan:
		for ; i < len(data); i++ {
			c := data[i]
			switch {
			case inQuote:
				if c == quote {
					if i+1 < len(data) && data[i+1] == quote {
						i++
					} else {
						inQuote = false
					}
				}
			case c == quote && fieldStart:
				inQuote = true
				fieldStart = false
			case c == delim:
				fields++
				fieldStart = true
			case c == '\n':
				i++
				complete = true
				break scan
			default:
				fieldStart = false
			}
		}
		if !complete && (!eof || inQuote) {
			break
		}
		counts = append(counts, fields)
	}
	return counts
}
