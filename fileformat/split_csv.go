package fileformat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
)

// splitBuffer is SplitCSV's read buffer: large enough that reads and writes
// run at disk speed, small enough not to matter.
const splitBuffer = 1 << 20

// measureStep is how much input goes to a part between two calls of
// SplitOptions.Measure: a part passes PartSize by at most this much input.
const measureStep = 64 << 10

// SplitOptions tune SplitCSV.
type SplitOptions struct {
	// PartSize is the size a part reaches before the next record boundary
	// ends it (required). A part is PartSize plus at most one record.
	PartSize int64
	// Delimiter and Quote are the file's (0: , and "). The delimiter tells
	// which quotes open a quoted field: only one at the start of a field.
	Delimiter, Quote byte
	// Header, when non-nil, replaces the header line in every part (with
	// the original's line end), e.g. with the names from CleanNames.
	Header []string
	// NoHeader says that the first record is data. Parts then start with
	// Header if given, and with nothing otherwise.
	NoHeader bool
	// Measure, when set, gives the size of the part being written in place
	// of the bytes written to it: for parts compressed as they are written,
	// the compressed bytes so far. The input then goes to the part in steps
	// of 64 KiB until Measure reaches PartSize, so a part may pass PartSize
	// by what one step adds to it (and what a compressor holds back), plus
	// one record.
	Measure func() int64
}

// SplitCSV copies a CSV file into parts numbered from 1, each opened by
// next and closed by SplitCSV once complete. A part ends at the first record
// boundary after PartSize bytes (its header included), never inside a
// quoted field, so a quoted field's line ends never cut a record; every part
// starts with the header line: the file's own bytes, or opts.Header. Line
// ends (LF or CRLF) are copied as they are, so concatenating the parts
// without their header lines gives back the input byte for byte. A UTF-8
// byte order mark belongs to the header line: it is repeated with the
// original header and dropped with a replacement.
//
// The input is scanned for quotes and line ends without parsing fields, and
// memory is the 1 MiB buffer plus the header line. SplitCSV returns the
// number of parts written (at least 1: an empty input gives one part holding
// only the header, if any). On an error it returns at once, without closing
// the part being written: the caller aborts it.
func SplitCSV(ctx context.Context, r io.Reader, opts SplitOptions, next func(part int) (io.WriteCloser, error)) (parts int, err error) {
	if opts.PartSize <= 0 {
		return 0, fmt.Errorf("split CSV: PartSize is %d; it must be positive", opts.PartSize)
	}
	d, q := opts.Delimiter, opts.Quote
	if d == 0 {
		d = ','
	}
	if q == 0 {
		q = '"'
	}
	if err := checkDialect("split CSV", d, q); err != nil {
		return 0, err
	}
	s := &splitter{what: "split CSV", ctx: ctx, r: r, next: next, partSize: opts.PartSize, measure: opts.Measure, buf: make([]byte, splitBuffer)}
	s.scan = quoteScan{delim: d, quote: q, prev: '\n'}
	if err := s.split(opts); err != nil {
		return s.part, err
	}
	return s.part, nil
}

type splitter struct {
	what     string // for errors: "split CSV"
	ctx      context.Context
	r        io.Reader
	next     func(int) (io.WriteCloser, error)
	partSize int64
	measure  func() int64
	buf      []byte
	n        int // bytes in buf
	eof      bool
	read     int64 // input bytes read so far
	scan     quoteScan

	header []byte // what every part starts with
	lead   []byte // what only part 1 starts with, after header
	w      io.WriteCloser
	part   int
	size   int64 // bytes in the current part
	body   int64 // bytes of the current part after its header
}

// fill reads the next chunk of input into buf.
func (s *splitter) fill() error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("%s: stopped after %d bytes: %w", s.what, s.read, err)
	}
	s.n = 0
	for s.n == 0 && !s.eof {
		n, err := s.r.Read(s.buf)
		s.n = n
		s.read += int64(n)
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			return fmt.Errorf("%s: reading after %d bytes: %w", s.what, s.read, err)
		}
	}
	return nil
}

func (s *splitter) split(opts SplitOptions) error {
	if err := s.fill(); err != nil {
		return err
	}
	// A byte order mark must be seen whole to be recognised.
	for s.n < 3 && !s.eof {
		n, err := s.r.Read(s.buf[s.n:])
		s.n += n
		s.read += int64(n)
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			return fmt.Errorf("split CSV: reading after %d bytes: %w", s.read, err)
		}
	}
	p := 0
	var bom []byte
	if bytes.HasPrefix(s.buf[:s.n], []byte{0xEF, 0xBB, 0xBF}) {
		bom, p = bytes.Clone(s.buf[:3]), 3
	}
	if !opts.NoHeader {
		// The header is the first record, which a quoted name may spread
		// over several lines.
		hdr := append([]byte(nil), bom...)
		for {
			cut := s.scan.scan(s.buf[p:s.n], true)
			if cut >= 0 {
				hdr = append(hdr, s.buf[p:p+cut]...)
				p += cut
				break
			}
			hdr = append(hdr, s.buf[p:s.n]...)
			if len(hdr) > DefaultMaxRecordBytes {
				return fmt.Errorf("split CSV: the header line is longer than %d bytes; a quote in it is probably never closed", DefaultMaxRecordBytes)
			}
			if s.eof {
				p = s.n
				break
			}
			if err := s.fill(); err != nil {
				return err
			}
			p = 0
		}
		s.header = hdr
		if opts.Header != nil {
			s.header = headerLine(opts.Header, s.scan.delim, s.scan.quote, lineEnd(hdr))
		}
	} else {
		if opts.Header != nil {
			end := []byte("\n")
			if i := bytes.IndexByte(s.buf[p:s.n], '\n'); i > 0 && s.buf[p+i-1] == '\r' {
				end = []byte("\r\n")
			}
			s.header = headerLine(opts.Header, s.scan.delim, s.scan.quote, end)
		} else {
			s.lead = bom
		}
	}

	for {
		for p < s.n {
			if s.w == nil {
				if err := s.open(); err != nil {
					return err
				}
			}
			if sz := s.partBytes(); sz < s.partSize {
				lim := min(s.n, p+measureStep)
				if s.measure == nil {
					lim = min(s.n, p+int(min(s.partSize-sz, int64(s.n-p))))
				}
				s.scan.scan(s.buf[p:lim], false)
				if err := s.writeBody(s.buf[p:lim]); err != nil {
					return err
				}
				p = lim
				continue
			}
			if s.body > 0 && s.scan.state == scanOutside && s.scan.prev == '\n' {
				// PartSize was reached on a record boundary.
				if err := s.close(); err != nil {
					return err
				}
				continue
			}
			cut := s.scan.scan(s.buf[p:s.n], true)
			if cut < 0 {
				if err := s.writeBody(s.buf[p:s.n]); err != nil {
					return err
				}
				p = s.n
				continue
			}
			if err := s.writeBody(s.buf[p : p+cut]); err != nil {
				return err
			}
			p += cut
			if err := s.close(); err != nil {
				return err
			}
		}
		if s.eof {
			break
		}
		if err := s.fill(); err != nil {
			return err
		}
		p = 0
	}
	return s.finish()
}

// finish ends a split: an empty input still gives one (empty) part, and
// the part being written is closed.
func (s *splitter) finish() error {
	if s.part == 0 {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.w != nil {
		return s.close()
	}
	return nil
}

// partBytes is the current part's size as PartSize counts it.
func (s *splitter) partBytes() int64 {
	if s.measure != nil {
		return s.measure()
	}
	return s.size
}

func (s *splitter) open() error {
	s.part++
	w, err := s.next(s.part)
	if err != nil {
		return fmt.Errorf("%s: opening part %d: %w", s.what, s.part, err)
	}
	if w == nil {
		return fmt.Errorf("%s: opening part %d: next returned no writer", s.what, s.part)
	}
	s.w, s.size, s.body = w, 0, 0
	if err := s.write(s.header); err != nil {
		return err
	}
	if s.part == 1 && len(s.lead) > 0 {
		return s.write(s.lead)
	}
	return nil
}

func (s *splitter) writeBody(b []byte) error {
	s.body += int64(len(b))
	return s.write(b)
}

func (s *splitter) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := s.w.Write(b)
	s.size += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("%s: writing part %d: %w", s.what, s.part, err)
	}
	return nil
}

func (s *splitter) close() error {
	w := s.w
	s.w = nil
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: closing part %d: %w", s.what, s.part, err)
	}
	return nil
}

// lineEnd returns the line end a header line finishes with.
func lineEnd(line []byte) []byte {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return []byte("\r\n")
	case bytes.HasSuffix(line, []byte("\n")):
		return []byte("\n")
	}
	return nil
}

// headerLine writes names as a CSV record, quoting those that need it.
func headerLine(names []string, d, q byte, end []byte) []byte {
	var b []byte
	special := string([]byte{d, q, '\r', '\n'})
	for i, n := range names {
		if i > 0 {
			b = append(b, d)
		}
		if strings.ContainsAny(n, special) {
			b = append(b, q)
			b = append(b, strings.ReplaceAll(n, string(q), string([]byte{q, q}))...)
			b = append(b, q)
			continue
		}
		b = append(b, n...)
	}
	return append(b, end...)
}

// quoteScan follows whether a CSV byte stream is inside a quoted field,
// chunk by chunk, jumping from quote to quote: a quote opens a field only at
// the start of one (after a delimiter or a line end), and a doubled quote
// inside stays inside, as OpenCSV reads them.
type quoteScan struct {
	delim, quote byte
	state        int
	prev         byte // the byte before the chunk
}

const (
	scanOutside   = iota
	scanInQuote   // inside a quoted field
	scanQuoteSeen // inside, and the chunk ended on a quote: the next byte says if it closed the field
)

// scan moves the state over b. With cut, it stops after the first line end
// outside quotes and returns the number of bytes up to and including it;
// otherwise, or if there is none, it consumes b and returns -1.
func (s *quoteScan) scan(b []byte, cut bool) int {
	i := 0
	for i < len(b) {
		switch s.state {
		case scanQuoteSeen:
			if b[i] == s.quote {
				s.state = scanInQuote
				i++
				continue
			}
			s.state = scanOutside
		case scanInQuote:
			j := bytes.IndexByte(b[i:], s.quote)
			if j < 0 {
				i = len(b)
				continue
			}
			k := i + j + 1
			if k == len(b) {
				s.state = scanQuoteSeen
				i = k
				continue
			}
			if b[k] == s.quote {
				i = k + 1
				continue
			}
			s.state = scanOutside
			i = k
		default:
			rest := b[i:]
			nl := -1
			if cut {
				if nl = bytes.IndexByte(rest, '\n'); nl >= 0 {
					rest = rest[:nl]
				}
			}
			opened := false
			for off := 0; ; {
				j := bytes.IndexByte(rest[off:], s.quote)
				if j < 0 {
					break
				}
				at := i + off + j
				prev := s.prev
				if at > 0 {
					prev = b[at-1]
				}
				if prev == s.delim || prev == '\n' {
					s.state = scanInQuote
					i = at + 1
					opened = true
					break
				}
				off += j + 1
			}
			if opened {
				continue
			}
			if nl >= 0 {
				end := i + nl + 1
				s.prev = '\n'
				return end
			}
			i = len(b)
		}
	}
	if len(b) > 0 {
		s.prev = b[len(b)-1]
	}
	return -1
}
