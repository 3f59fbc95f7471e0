package fileformat

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// CSVParts is where CutCSV cuts a CSV file.
type CSVParts struct {
	// Body is the offset of the first record: past the header line when
	// there is one (the first line, even an empty one, as DuckDB's
	// read_csv takes it), past a UTF-8 byte order mark otherwise.
	Body int64
	// Cuts are the offsets where parts 2, 3, ... start; part 1 starts at
	// Body and the last part ends at the end of the file.
	Cuts []int64
	// Records are the records of each part but the last, as
	// NumberTypedCSV counts them.
	Records []int64
}

// CutCSV finds where a CSV file of size bytes can be cut into parts of
// about size/parts bytes that NumberTypedCSV can number on their own: each
// cut is the first start of a line (a record or an empty line) after one
// of the parts-1 evenly spaced targets (size*k/parts), so that a quoted
// field's line ends never cut a record. It gives fewer cuts when the file
// has no record boundary after a target, and ErrNotNumbered where
// NumberTypedCSV would; Body is then still where the records start. It
// reads r from the start of the file to the last cut; memory is one 1 MiB
// buffer.
func CutCSV(ctx context.Context, r io.Reader, size int64, parts int, delim, quote byte, header bool) (CSVParts, error) {
	var p CSVParts
	if err := checkDialect("cut CSV", delim, quote); err != nil {
		return p, err
	}
	n := newNumberer(nil, delim, quote, 0)
	buf := make([]byte, splitBuffer)
	var at int64     // the offset of buf[0] in the file
	keep := 0        // bytes carried from the last read
	var before int64 // records before the current part
	inHeader := header
	// The header is passed even for one part: Body is then all a caller
	// wants.
	for first := true; first || inHeader || len(p.Cuts) < parts-1; first = false {
		if err := ctx.Err(); err != nil {
			return p, fmt.Errorf("cut CSV: stopped after %d bytes: %w", at, err)
		}
		m, err := io.ReadFull(r, buf[keep:])
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return p, fmt.Errorf("cut CSV: reading after %d bytes: %w", at+int64(keep), err)
		}
		b := buf[:keep+m]
		i := 0
		if first {
			if bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
				i = 3
			}
			p.Body = int64(i)
		}
		if inHeader {
			end := n.scan.scan(b[i:], true)
			if end < 0 {
				i = len(b)
			} else {
				i += end
				inHeader, p.Body = false, at+int64(i)
			}
		}
		for !inHeader && i < len(b) && len(p.Cuts) < parts-1 {
			target := size * int64(len(p.Cuts)+1) / int64(parts)
			u, ended, err := n.feed(b[i:], eof, int(max(target-(at+int64(i))+1, 0)))
			if err != nil {
				return p, err
			}
			i += u
			if !ended {
				break
			}
			if cut := at + int64(i); cut < size {
				p.Cuts = append(p.Cuts, cut)
				p.Records = append(p.Records, n.records-before)
				before = n.records
			}
		}
		keep = copy(buf, b[i:])
		at += int64(i)
		if eof {
			break
		}
	}
	if inHeader {
		p.Body = at // a header without a line end, and no record
	}
	if len(p.Cuts) < parts-1 {
		if err := n.end(); err != nil {
			return p, err
		}
	}
	return p, nil
}
