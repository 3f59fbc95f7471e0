package fileformat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNotNumbered is the answer of NumberTypedCSV and CutCSV for a file whose
// records they cannot tell apart as surely as a CSV reader would: one
// holding a carriage return not followed by a line feed, in quotes or not
// (readers differ on whether it ends a record). The file is then to be
// read whole.
var ErrNotNumbered = errors.New("a carriage return that does not end a line")

func checkDialect(what string, delim, quote byte) error {
	if delim == quote || delim == '\n' || delim == '\r' || quote == '\n' || quote == '\r' {
		return fmt.Errorf("%s: delimiter %q and quote %q must differ, and neither may be a line end", what, rune(delim), rune(quote))
	}
	return nil
}

// numberer follows a CSV byte stream record by record: feed counts the
// records (CutCSV), and NumberTypedCSV numbers them into w.
type numberer struct {
	w       io.Writer
	scan    quoteScan
	delim   byte
	records int64 // the last number given
	start   bool  // the next byte starts a record (or an empty line)
	cr      bool  // the last byte seen was a "\r" inside a record

	// NumberTypedCSV's: the columns, the last number in digits, the
	// current record's field bounds, the copy not yet written, and a
	// rewritten value.
	cols      []Column
	typedCols []int   // the columns whose values are read
	values    []int64 // CSVNumbered.Values
	digits    []byte
	bounds    []int
	out, val  []byte
}

func newNumberer(w io.Writer, delim, quote byte, first int64) *numberer {
	return &numberer{w: w, scan: quoteScan{delim: delim, quote: quote, prev: '\n'}, delim: delim, records: first, start: true}
}

// feed counts the records of b, and returns how much it took. With stopAt >= 0 it stops
// after the first line end outside quotes (a record's or an empty line's)
// that ends at or past b[stopAt-1], with ended set; otherwise it takes all
// of b but a lone "\r" at a record's start, unless eof: the next byte says
// whether that is an empty line.
func (n *numberer) feed(b []byte, eof bool, stopAt int) (used int, ended bool, err error) {
	for used < len(b) {
		rest := b[used:]
		if n.start {
			rel := -1
			if stopAt >= 0 {
				rel = max(stopAt-used, 0)
			}
			if k := n.countLines(rest, rel); k > 0 {
				used += k
				continue
			}
		}
		if n.start {
			// Empty lines take no number.
			blank := 0
			switch {
			case rest[0] == '\n':
				blank = 1
			case rest[0] == '\r' && len(rest) == 1 && !eof:
				return used, false, nil
			case rest[0] == '\r' && len(rest) > 1 && rest[1] == '\n':
				blank = 2
			}
			if blank > 0 {
				used += blank
				if stopAt >= 0 && used >= stopAt {
					return used, true, nil
				}
				continue
			}
			n.records++
			n.start = false
		}
		end := n.scan.scan(rest, true)
		piece := rest
		if end >= 0 {
			piece = rest[:end]
		}
		var lone bool
		if n.cr, lone = crAhead(piece, n.cr); lone {
			return used, false, ErrNotNumbered
		}
		used += len(piece)
		if end >= 0 {
			n.start = true
			if stopAt >= 0 && used >= stopAt {
				return used, true, nil
			}
		}
	}
	return used, false, nil
}

// countLines counts, without looking at them one by one, the records of
// the longest run of whole lines at the start of b that holds no quote, no
// "\r" and no empty line, and that ends before stopAt when stopAt >= 0 (see
// feed). It returns the bytes counted: 0 when there is no such run, and
// feed then takes b record by record. Counting a file, CutCSV spends most
// of its time here.
func (n *numberer) countLines(b []byte, stopAt int) int {
	if stopAt >= 0 {
		// A line end at index j ends at j+1: stop before the one that
		// reaches stopAt.
		b = b[:max(min(len(b), stopAt-1), 0)]
	}
	k := bytes.LastIndexByte(b, '\n') + 1
	if k == 0 {
		return 0
	}
	b = b[:k]
	if b[0] == '\n' || bytes.IndexByte(b, n.scan.quote) >= 0 || bytes.IndexByte(b, '\r') >= 0 || bytes.Contains(b, []byte("\n\n")) {
		return 0
	}
	n.records += int64(bytes.Count(b, []byte{'\n'}))
	n.scan.prev = '\n'
	return k
}

// end reports a stream that ended on a lone "\r".
func (n *numberer) end() error {
	if n.cr {
		return ErrNotNumbered
	}
	return nil
}

// crAhead checks that every "\r" in b comes before a "\n", in quotes or
// not, b following a chunk that ended on "\r" when cr is set. lone reports
// one that does not; ends reports that b ends on "\r", which the next
// chunk must then start with "\n" after.
func crAhead(b []byte, cr bool) (ends, lone bool) {
	if len(b) == 0 {
		return cr, false
	}
	if cr && b[0] != '\n' {
		return false, true
	}
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\r')
		if j < 0 {
			return false, false
		}
		i += j
		if i == len(b)-1 {
			return true, false
		}
		if b[i+1] != '\n' {
			return false, true
		}
	}
}
