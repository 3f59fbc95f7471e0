package filetable

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/internal/contract"
)

// ctxCheckRows is how often Next looks at the context: the file readers
// take none, and a local file never blocks long enough to need it sooner.
const ctxCheckRows = 4096

// Rows streams a table's rows, one file at a time: memory is one file
// reader's buffer and one row, never a file.
//
//	for rows.Next() {
//		vals := rows.Values() // valid until the next call to Next
//	}
//	if err := rows.Err(); err != nil { ... }
type Rows struct {
	ctx   context.Context
	t     *Table
	files []File
	next  int // index in files of the next file to open

	file   File
	fr     fileformat.Rows
	src    filestore.Reader
	static bool // the file's columns never change (Parquet)

	// The current file's columns, as the mapping below was built for.
	seen []Column
	// colMap maps a file column to a table column (-1: dropped, as the
	// partition key of that name wins); conv says which values need
	// converting to a widened table column's type.
	colMap []int
	conv   []bool
	// covers is true when the file and the partitions give every table
	// column, so that a row needs no clearing.
	covers bool

	cols   []Column // copied on change, never altered once returned
	byName map[string]int
	part   []int // table column of each partition key
	vals   []any
	n      int64
	err    error
	done   bool
}

// Columns returns the columns of the rows so far: Table.Columns, then any
// column a later file added, with types widened to hold every value read.
// A change gives a new slice; a slice returned before is never altered.
func (r *Rows) Columns() []Column { return r.cols }

// Values returns the current row, one value per Columns() entry; it is
// valid until the next call to Next.
func (r *Rows) Values() []any { return r.vals }

// File returns the file the current row comes from.
func (r *Rows) File() File { return r.file }

// Err returns the error that ended the rows, if any. It names the file, and
// for CSV and JSON Lines the line.
func (r *Rows) Err() error { return r.err }

// Close releases the current file. Rows that end (Next returns false)
// release it themselves.
func (r *Rows) Close() error {
	r.done = true
	return r.closeFile()
}

func (r *Rows) closeFile() error {
	if r.fr == nil {
		return nil
	}
	err := r.fr.Close()
	if cerr := r.src.Close(); err == nil {
		err = cerr
	}
	r.fr, r.src = nil, nil
	return err
}

// Next advances to the next row, opening the next file when one ends.
func (r *Rows) Next() bool {
	for {
		if r.err != nil || r.done {
			return false
		}
		if r.n%ctxCheckRows == 0 {
			if err := r.ctx.Err(); err != nil {
				r.fail(fmt.Errorf("table %q: reading stopped after %d rows: %w", r.t.Name, r.n, err))
				return false
			}
		}
		if r.fr == nil {
			if r.next >= len(r.files) {
				r.done = true
				return false
			}
			f := r.files[r.next]
			r.next++
			fr, src, err := r.t.open(r.ctx, f)
			if err != nil {
				r.fail(err)
				return false
			}
			r.fr, r.src, r.file = fr, src, f
			r.static = r.t.Format == fileformat.Parquet
			r.remap(fr.Columns())
		}
		if r.fr.Next() {
			if !r.static {
				if fc := r.fr.Columns(); changed(fc, r.seen) {
					r.remap(fc)
				}
			}
			r.fill()
			r.n++
			return true
		}
		err := r.fr.Err()
		if err == nil && !r.static {
			// A CSV column may widen on its last rows.
			if fc := r.fr.Columns(); changed(fc, r.seen) {
				r.remap(fc)
			}
		}
		if cerr := r.closeFile(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: %w", r.t.display(r.file.Key), cerr)
		}
		if err != nil {
			r.fail(fmt.Errorf("table %q: %w", r.t.Name, err))
			return false
		}
	}
}

func (r *Rows) fail(err error) {
	r.err = err
	r.closeFile()
}

// changed tells whether a file's columns differ from those the mapping was
// built for. JSON Lines alters its slice in place, so this compares values.
func changed(fc, seen []Column) bool {
	if len(fc) != len(seen) {
		return true
	}
	for i := range fc {
		if fc[i] != seen[i] {
			return true
		}
	}
	return false
}

// remap maps the current file's columns onto the table's, adding and
// widening table columns as needed.
func (r *Rows) remap(fc []Column) {
	r.seen = slices.Clone(fc)
	r.colMap = slices.Grow(r.colMap[:0], len(fc))[:len(fc)]
	r.conv = slices.Grow(r.conv[:0], len(fc))[:len(fc)]
	for i, c := range fc {
		if r.t.isPartitionKey(c.Name) {
			r.colMap[i] = -1
			continue
		}
		j, ok := r.byName[c.Name]
		if !ok {
			j = len(r.cols)
			r.cols = append(slices.Clip(r.cols), c)
			r.byName[c.Name] = j
		} else if w := widen(r.cols[j], c); w != r.cols[j] {
			cols := slices.Clone(r.cols)
			cols[j] = w
			r.cols = cols
		}
		r.colMap[i] = j
	}
	given := make([]bool, len(r.cols))
	for i, j := range r.colMap {
		if j < 0 {
			continue
		}
		given[j] = true
		r.conv[i] = fc[i].Type != contract.Unspecified && fc[i].Type != r.cols[j].Type
	}
	for _, j := range r.part {
		given[j] = true
	}
	r.covers = !slices.Contains(given, false)
	if len(r.vals) != len(r.cols) {
		r.vals = make([]any, len(r.cols))
	}
}

func (r *Rows) fill() {
	if !r.covers {
		clear(r.vals)
	}
	for i, v := range r.fr.Values() {
		j := r.colMap[i]
		if j < 0 {
			continue
		}
		if r.conv[i] {
			v = convert(v, r.seen[i].Type, r.cols[j].Type)
		}
		r.vals[j] = v
	}
	for k, j := range r.part {
		r.vals[j] = r.file.Partition[k]
	}
}

func intDigits(t contract.Type) int {
	switch t {
	case contract.Short:
		return 5
	case contract.Int:
		return 10
	case contract.Long:
		return 19
	}
	return 0
}

func isNumber(t contract.Type) bool {
	return intDigits(t) > 0 || t == contract.Decimal || t == contract.Float || t == contract.Double
}

// widen returns column a with a type that holds the values of a and b.
func widen(a, b Column) Column {
	switch {
	case b.Type == contract.Unspecified:
		return a
	case a.Type == contract.Unspecified:
		return Column{Name: a.Name, Type: b.Type, Precision: b.Precision, Scale: b.Scale}
	case a.Type == contract.Decimal && b.Type == contract.Decimal:
		scale := max(a.Scale, b.Scale)
		digits := max(a.Precision-a.Scale, b.Precision-b.Scale)
		return Column{Name: a.Name, Type: contract.Decimal, Precision: min(38, digits+scale), Scale: scale}
	case a.Type == b.Type:
		return a
	case intDigits(a.Type) > 0 && intDigits(b.Type) > 0:
		if intDigits(b.Type) > intDigits(a.Type) {
			return Column{Name: a.Name, Type: b.Type}
		}
		return a
	case isNumber(a.Type) && isNumber(b.Type):
		if a.Type == contract.Decimal || b.Type == contract.Decimal {
			d, i := a, b
			if b.Type == contract.Decimal {
				d, i = b, a
			}
			if intDigits(i.Type) > 0 {
				digits := max(d.Precision-d.Scale, intDigits(i.Type))
				return Column{Name: a.Name, Type: contract.Decimal, Precision: min(38, digits+d.Scale), Scale: d.Scale}
			}
		}
		return Column{Name: a.Name, Type: contract.Double}
	case (a.Type == contract.NaiveDate && b.Type == contract.NaiveDateTime) ||
		(a.Type == contract.NaiveDateTime && b.Type == contract.NaiveDate):
		return Column{Name: a.Name, Type: contract.NaiveDateTime}
	}
	return Column{Name: a.Name, Type: contract.String}
}

// convert turns a value of a file's column type into the widened table
// column's type. A value the reader already returned in another type (a
// CSV or JSON Lines value after its column widened) is converted the same
// way when it can be, and kept otherwise.
func convert(v any, from, to contract.Type) any {
	if v == nil {
		return nil
	}
	switch to {
	case contract.String:
		return textOf(v, from)
	case contract.Double:
		switch x := v.(type) {
		case int64:
			return float64(x)
		case contract.DecimalText:
			if f, err := strconv.ParseFloat(string(x), 64); err == nil {
				return f
			}
		}
	case contract.Decimal:
		if x, ok := v.(int64); ok {
			return contract.DecimalText(strconv.FormatInt(x, 10))
		}
	}
	return v
}

// textOf writes a value as text, as DuckDB casts it to VARCHAR.
func textOf(v any, from contract.Type) string {
	switch x := v.(type) {
	case string:
		return x
	case contract.DecimalText:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', 1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		switch from {
		case contract.NaiveDate:
			return x.Format(time.DateOnly)
		case contract.NaiveDateTime:
			return x.Format("2006-01-02 15:04:05.999999")
		}
		return x.Format("2006-01-02 15:04:05.999999Z07:00")
	case json.RawMessage:
		return string(x)
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		var b strings.Builder
		for _, c := range x {
			if c >= 0x20 && c < 0x7f && c != '\\' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02X`, c)
			}
		}
		return b.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
