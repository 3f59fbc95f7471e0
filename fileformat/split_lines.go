package fileformat

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// SplitLines copies a line-oriented file (JSON Lines) into parts numbered
// from 1, each opened by next and closed by SplitLines once complete, as
// SplitCSV does. A part ends at the first line end after opts.PartSize
// bytes (or opts.Measure, see SplitOptions), so no line is ever cut: a JSON
// Lines record holds no raw line end (JSON escapes them in strings).
// Concatenating the parts gives back the input byte for byte; a last line
// without a line end stays so. The other options are not used: JSON Lines
// has no header.
//
// Memory is one 1 MiB buffer. SplitLines returns the number of parts
// written (at least 1: an empty input gives one empty part). On an error
// it returns at once, without closing the part being written: the caller
// aborts it.
func SplitLines(ctx context.Context, r io.Reader, opts SplitOptions, next func(part int) (io.WriteCloser, error)) (parts int, err error) {
	if opts.PartSize <= 0 {
		return 0, fmt.Errorf("split lines: PartSize is %d; it must be positive", opts.PartSize)
	}
	s := &splitter{what: "split lines", ctx: ctx, r: r, next: next, partSize: opts.PartSize, measure: opts.Measure, buf: make([]byte, splitBuffer)}
	if err := s.splitLines(); err != nil {
		return s.part, err
	}
	return s.part, nil
}

func (s *splitter) splitLines() error {
	// lastNL: the current part's body ends with a line end.
	lastNL := false
	body := func(b []byte) error {
		if len(b) > 0 {
			lastNL = b[len(b)-1] == '\n'
		}
		return s.writeBody(b)
	}
	for {
		if err := s.fill(); err != nil {
			return err
		}
		p := 0
		for p < s.n {
			if s.w == nil {
				if err := s.open(); err != nil {
					return err
				}
				lastNL = false
			}
			if sz := s.partBytes(); sz < s.partSize {
				lim := min(s.n, p+measureStep)
				if s.measure == nil {
					lim = min(s.n, p+int(min(s.partSize-sz, int64(s.n-p))))
				}
				if err := body(s.buf[p:lim]); err != nil {
					return err
				}
				p = lim
				continue
			}
			if s.body > 0 && lastNL {
				// PartSize was reached right after a line end.
				if err := s.close(); err != nil {
					return err
				}
				continue
			}
			i := bytes.IndexByte(s.buf[p:s.n], '\n')
			if i < 0 {
				if err := body(s.buf[p:s.n]); err != nil {
					return err
				}
				p = s.n
				continue
			}
			if err := body(s.buf[p : p+i+1]); err != nil {
				return err
			}
			p += i + 1
			if err := s.close(); err != nil {
				return err
			}
		}
		if s.eof {
			break
		}
	}
	return s.finish()
}
