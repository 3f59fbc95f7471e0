package filetable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/internal/contract"
)

// hiveNull is the folder value Hive and Spark write for a NULL key.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// File is one file of a table.
type File struct {
	filestore.Object
	// Partition holds the file's Hive partition values, one per
	// Table.PartitionKeys, typed as the key's column: int64, time.Time (a
	// NAIVE_DATE, midnight UTC), string, or nil.
	Partition []any
}

// Table is a table of a store: one file, or the files of a folder.
type Table struct {
	Name   string
	Format fileformat.Format
	// Folder is true for a table made of a folder's files.
	Folder bool
	// Files are in key order, which is the order Rows reads them in.
	Files []File
	// PartitionKeys are the Hive partition columns, in folder order.
	PartitionKeys []Column
	// Unknown counts the files of the folder that were ignored for their
	// extension.
	Unknown int

	root   *Root
	colsMu sync.Mutex
	cols   []Column
}

// Bytes is the size of the table's files.
func (t *Table) Bytes() int64 {
	var n int64
	for _, f := range t.Files {
		n += f.Size
	}
	return n
}

// typePartitions types each partition key from all its values, as DuckDB's
// hive_types_autocast does: LONG, else NAIVE_DATE, else STRING.
func (t *Table) typePartitions(raw [][]*string) error {
	if len(t.Files) == 0 || len(raw[0]) == 0 {
		return nil
	}
	keys, _ := hivePath(splitKey(t.Files[0].Key))
	for k, name := range keys {
		long, date := true, true
		for _, vals := range raw {
			v := vals[k]
			if v == nil {
				continue
			}
			if _, ok := parseHiveLong(*v); !ok {
				long = false
			}
			if _, ok := parseHiveDate(*v); !ok {
				date = false
			}
		}
		typ := contract.String
		switch {
		case long:
			typ = contract.Long
		case date:
			typ = contract.NaiveDate
		}
		t.PartitionKeys = append(t.PartitionKeys, Column{Name: name, Type: typ})
	}
	for i := range t.Files {
		vals := make([]any, len(keys))
		for k, v := range raw[i] {
			if v == nil {
				continue
			}
			switch t.PartitionKeys[k].Type {
			case contract.Long:
				vals[k], _ = parseHiveLong(*v)
			case contract.NaiveDate:
				vals[k], _ = parseHiveDate(*v)
			default:
				vals[k] = *v
			}
		}
		t.Files[i].Partition = vals
	}
	return nil
}

// parseHiveLong reads an integer; one with a leading zero ("007") is a
// code, and stays text, as CSV sniffing has it.
func parseHiveLong(s string) (int64, bool) {
	d := s
	if len(d) > 0 && (d[0] == '-' || d[0] == '+') {
		d = d[1:]
	}
	if d == "" || (len(d) > 1 && d[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func parseHiveDate(s string) (time.Time, bool) {
	if len(s) != 10 {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, s)
	return d, err == nil
}

// display names a key in messages: the store and the key, as a user would
// find the file.
func (t *Table) display(key string) string { return t.root.st.String() + "/" + key }

// Columns returns the table's columns: those of its first non-empty file
// (from a Parquet footer, or sniffed from the first rows of a CSV or JSON
// Lines file), then the partition columns. Files after the first may add
// or widen columns while Rows reads (see the package documentation).
func (t *Table) Columns(ctx context.Context) ([]Column, error) {
	cols, err := t.columns(ctx)
	return slices.Clone(cols), err
}

// columns is Columns without the copy; the slice is never altered.
func (t *Table) columns(ctx context.Context) ([]Column, error) {
	t.colsMu.Lock()
	defer t.colsMu.Unlock()
	if t.cols != nil {
		return t.cols, nil
	}
	var cols []Column
	if len(t.Files) > 0 {
		f := t.Files[0]
		for _, g := range t.Files {
			if g.Size > 0 {
				f = g
				break
			}
		}
		rows, src, err := t.open(ctx, f)
		if err != nil {
			return nil, err
		}
		cols = slices.Clone(rows.Columns())
		rows.Close()
		src.Close()
	}
	cols = slices.DeleteFunc(cols, func(c Column) bool { return t.isPartitionKey(c.Name) })
	t.cols = append(cols, t.PartitionKeys...)
	return t.cols, nil
}

func (t *Table) isPartitionKey(name string) bool {
	for _, k := range t.PartitionKeys {
		if k.Name == name {
			return true
		}
	}
	return false
}

// open opens a file of the table for its rows.
func (t *Table) open(ctx context.Context, f File) (fileformat.Rows, filestore.Reader, error) {
	src, err := t.root.st.Open(ctx, f.Key)
	if err != nil {
		return nil, nil, t.openErr(ctx, f.Key, err)
	}
	if err := t.checkSame(ctx, f, src); err != nil {
		src.Close()
		return nil, nil, err
	}
	var rows fileformat.Rows
	if t.Format == fileformat.Parquet {
		// Straight to the footer: fileformat.Open would first Read the
		// head, which on S3 starts a GET of the whole object.
		rows, err = fileformat.OpenParquet(src, src.Size(), t.display(f.Key))
	} else {
		rows, err = fileformat.Open(t.display(f.Key), src, fileformat.Options{})
	}
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("table %q: %w", t.Name, err)
	}
	return rows, src, nil
}

// checkSame refuses a file that is no longer the one listed, so that a
// read overlapping an upload fails instead of mixing two versions of the
// table: the size, then the ETag (S3) or the modification time (local).
func (t *Table) checkSame(ctx context.Context, f File, src filestore.Reader) error {
	if f.ModTime.IsZero() && f.ETag == "" {
		return nil // not from a listing: nothing to compare
	}
	changed := src.Size() != f.Size
	if !changed {
		now, err := t.root.st.Stat(ctx, f.Key)
		if err != nil {
			return t.openErr(ctx, f.Key, err)
		}
		if f.ETag != "" && now.ETag != "" {
			changed = now.ETag != f.ETag
		} else {
			changed = !now.ModTime.Equal(f.ModTime)
		}
	}
	if changed {
		return fmt.Errorf("table %q: %s changed since the table was listed (replaced by an upload?): read the table again: %w", t.Name, t.display(f.Key), ErrChanged)
	}
	return nil
}

// openErr explains a file that cannot be opened: a file gone since the
// table was listed was most likely replaced by an upload.
func (t *Table) openErr(ctx context.Context, key string, err error) error {
	if !errors.Is(err, filestore.ErrNotExist) {
		return fmt.Errorf("table %q: opening %s: %w", t.Name, t.display(key), err)
	}
	if !t.Folder {
		return fmt.Errorf("table %q: the file %s was removed or replaced while the table was read: read it again: %w", t.Name, t.display(key), err)
	}
	if _, serr := t.root.st.Stat(ctx, keyJoin(t.Name, markerName)); serr == nil {
		return fmt.Errorf("table %q at %s: an upload or removal started while the table was read (%s is gone); read it again once it is done: %w", t.Name, t.root.st, key, ErrIncomplete)
	}
	return fmt.Errorf("table %q: the file %s was removed or replaced while the table was read: read it again: %w", t.Name, t.display(key), err)
}

// Count returns the table's row count when it is cheap to know: for
// Parquet, the sum of the files' footers (one small read per file). For CSV
// and JSON Lines known is false: counting would read every byte.
func (t *Table) Count(ctx context.Context) (rows int64, known bool, err error) {
	if t.Format != fileformat.Parquet {
		return 0, false, nil
	}
	for _, f := range t.Files {
		src, err := t.root.st.Open(ctx, f.Key)
		if err != nil {
			return 0, false, t.openErr(ctx, f.Key, err)
		}
		meta, err := fileformat.ParquetInfo(src, src.Size(), t.display(f.Key))
		src.Close()
		if err != nil {
			return 0, false, fmt.Errorf("table %q: %w", t.Name, err)
		}
		rows += meta.Rows
	}
	return rows, true, nil
}

// Head returns the first n rows (fewer if the table has fewer), with the
// columns as they stand after them.
func (t *Table) Head(ctx context.Context, n int) ([]Column, [][]any, error) {
	rows, err := t.Rows(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out [][]any
	for len(out) < n && rows.Next() {
		vals := slices.Clone(rows.Values())
		for i, v := range vals {
			vals[i] = detach(v)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return rows.Columns(), out, nil
}

// detach copies a value that may share a reader's buffer, which Next
// reuses.
func detach(v any) any {
	switch x := v.(type) {
	case []byte:
		return bytes.Clone(x)
	case json.RawMessage:
		return json.RawMessage(bytes.Clone(x))
	}
	return v
}

// Rows streams every row of the table, file by file in key order.
func (t *Table) Rows(ctx context.Context) (*Rows, error) { return t.RowsOf(ctx, t.Files) }

// RowsOf streams the rows of the given files of the table, in the order
// given: a sync that read the table before passes the new and changed ones.
// Columns start as Table.Columns.
func (t *Table) RowsOf(ctx context.Context, files []File) (*Rows, error) {
	cols, err := t.columns(ctx)
	if err != nil {
		return nil, err
	}
	r := &Rows{ctx: ctx, t: t, files: files, cols: cols, byName: make(map[string]int, len(cols))}
	for i, c := range cols {
		r.byName[c.Name] = i
	}
	for _, k := range t.PartitionKeys {
		r.part = append(r.part, r.byName[k.Name])
	}
	r.vals = make([]any, len(cols))
	return r, nil
}

func splitKey(key string) []string { return strings.Split(key, "/") }
