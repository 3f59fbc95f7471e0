package files

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filetable"
	"github.com/sluicedata/sluice/internal/contract"
)

// syncer is one run of Update.
type syncer struct {
	ctx    context.Context
	cfg    config
	ops    contract.Ops
	decl   contract.ColumnDeclarer // nil when Ops lacks it
	loader contract.FileLoader     // nil when Ops lacks it or fast_path is off
	root   *filetable.Root
	state  *syncState
	// pending counts the operations since the last checkpoint.
	pending int64
	dirty   bool
}

// tableSync is what a run knows of one table.
type tableSync struct {
	name     string
	t        *filetable.Table
	appended bool // keyed by (_file, _line)
	files    map[string]*fileState
	// types are the column types declared so far in this run; mixed
	// marks the columns declared with more than one, whose values
	// filetable converts.
	types map[string]contract.Column
	mixed map[string]bool
}

func update(ctx context.Context, raw contract.Config, state contract.State, ops contract.Ops) error {
	c, err := parseConfig(raw)
	if err != nil {
		return err
	}
	st, err := readState(state)
	if err != nil {
		return err
	}
	root, names, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer root.Close()
	s := &syncer{ctx: ctx, cfg: c, ops: ops, root: root, state: st}
	if d, ok := ops.(contract.ColumnDeclarer); ok {
		s.decl = d
	}
	if l, ok := ops.(contract.FileLoader); ok && c.fastPath {
		s.loader = l
	}
	for _, name := range names {
		if err := s.syncTable(name); err != nil {
			return err
		}
	}
	if c.tables == nil {
		// Tables gone from the store: their files were all removed.
		var gone []string
		for name := range st.Tables {
			if !slices.Contains(names, name) {
				gone = append(gone, name)
			}
		}
		sort.Strings(gone)
		for _, name := range gone {
			if err := s.removeTable(name); err != nil {
				return err
			}
		}
	}
	if s.dirty {
		return s.checkpoint()
	}
	return nil
}

func (s *syncer) checkpoint() error {
	if err := s.ops.Checkpoint(s.state); err != nil {
		return err
	}
	s.pending, s.dirty = 0, false
	return nil
}

// tick counts one operation, and checkpoints every checkpoint_rows.
func (s *syncer) tick() error {
	s.pending++
	s.dirty = true
	if s.pending >= s.cfg.checkpointRows {
		return s.checkpoint()
	}
	return nil
}

// fileDone checkpoints after a file once enough rows wait.
func (s *syncer) fileDone() error {
	s.dirty = true
	if s.pending >= min(fileCheckpointRows, s.cfg.checkpointRows) {
		return s.checkpoint()
	}
	return nil
}

func (s *syncer) syncTable(name string) error {
	t, err := s.root.Table(s.ctx, name)
	if err != nil {
		return tableErr(s.cfg, err)
	}
	cols, err := t.Columns(s.ctx)
	if err != nil {
		return err
	}
	key := s.cfg.keys[name]
	appended := len(key) == 0
	if appended {
		key = []string{FileColumn, LineColumn}
	}
	ts := s.state.table(name, key)
	tb := &tableSync{name: name, t: t, appended: appended, files: ts.Files, types: map[string]contract.Column{}, mixed: map[string]bool{}}
	if err := s.declare(tb, cols); err != nil {
		return err
	}
	present := make(map[string]bool, len(t.Files))
	for _, f := range t.Files {
		present[f.Key] = true
	}
	var removed []string
	for k := range tb.files {
		if !present[k] {
			removed = append(removed, k)
		}
	}
	sort.Strings(removed)
	for _, k := range removed {
		if err := s.removeFile(tb.name, tb.appended, tb.files, k); err != nil {
			return err
		}
	}
	for _, f := range t.Files {
		if e := tb.files[f.Key]; e != nil && e.Done && e.same(f) {
			continue
		}
		if err := s.readFile(tb, f); err != nil {
			return err
		}
	}
	return nil
}

// declare declares a table's columns as the files give them.
func (s *syncer) declare(tb *tableSync, cols []contract.Column) error {
	if err := checkLineage(tb.name, cols); err != nil {
		return err
	}
	decl := make([]contract.Column, 0, len(cols))
	for _, c := range cols {
		if prev, ok := tb.types[c.Name]; ok && prev != c {
			tb.mixed[c.Name] = true
		}
		tb.types[c.Name] = c
		// A column of NULLs only says nothing of its type.
		if c.Type != contract.Unspecified {
			decl = append(decl, c)
		}
	}
	if s.decl == nil {
		return nil
	}
	return s.decl.DeclareColumns(tb.name, decl)
}

// readFile syncs one new or changed file, or resumes one a crashed run was
// reading.
func (s *syncer) readFile(tb *tableSync, f filetable.File) error {
	prev := tb.files[f.Key]
	e := &fileState{Size: f.Size, MTime: mtime(f.ModTime), ETag: f.ETag}
	var skip int64
	if prev != nil {
		e.Lines = prev.Lines
		if !prev.Done && prev.same(f) {
			skip = prev.Rows
		}
	}
	e.Rows = skip
	tb.files[f.Key] = e
	n, handled, err := s.load(tb, f)
	if err != nil {
		return err
	}
	if handled {
		e.Lines = max(e.Lines, n)
		s.pending += n
	} else if n, err = s.stream(tb, f, skip, e); err != nil {
		return err
	}
	// The rows an earlier, longer version had beyond this one's end.
	if tb.appended {
		e.Rows, e.Done = n, false
		for line := n + 1; line <= e.Lines; line++ {
			if err := s.ops.Delete(tb.name, map[string]any{FileColumn: f.Key, LineColumn: line}); err != nil {
				return err
			}
			if err := s.tick(); err != nil {
				return err
			}
		}
	}
	e.Rows, e.Lines, e.Done = n, n, true
	return s.fileDone()
}

// stream upserts a file's rows, after the first skip (committed by a run
// that stopped inside the file), and returns how many it has.
func (s *syncer) stream(tb *tableSync, f filetable.File, skip int64, e *fileState) (int64, error) {
	rows, err := tb.t.RowsOf(s.ctx, []filetable.File{f})
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var cols []contract.Column
	// One map, refilled per row: the engine reads a row before Upsert
	// returns.
	out := make(map[string]any, 16)
	var file any = f.Key
	var n int64
	for rows.Next() {
		if c := rows.Columns(); !sameSlice(c, cols) {
			cols = c
			if err := s.declare(tb, cols); err != nil {
				return n, err
			}
		}
		n++
		if n <= skip {
			continue
		}
		vals := rows.Values()
		for i, c := range cols {
			out[c.Name] = vals[i]
		}
		out[FileColumn], out[LineColumn] = file, n
		if err := s.ops.Upsert(tb.name, out); err != nil {
			return n, err
		}
		e.Lines = max(e.Lines, n)
		s.pending++
		s.dirty = true
		if s.pending >= s.cfg.checkpointRows {
			// A run that stops after this resumes after row n.
			e.Rows = n
			if err := s.checkpoint(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if c := rows.Columns(); !sameSlice(c, cols) {
		// A column widened on the last rows.
		if err := s.declare(tb, c); err != nil {
			return n, err
		}
	}
	return n, nil
}

// sameSlice reports whether two Columns results are the same slice:
// filetable returns a new one on every change.
func sameSlice(a, b []contract.Column) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// removeFile deletes the rows of a file gone from the store: one delete per
// line of an appended table; a keyed table's rows stay (see the package
// documentation).
func (s *syncer) removeFile(table string, appended bool, files map[string]*fileState, key string) error {
	e := files[key]
	if appended {
		for line := int64(1); line <= e.Lines; line++ {
			if err := s.ops.Delete(table, map[string]any{FileColumn: key, LineColumn: line}); err != nil {
				return err
			}
			if err := s.tick(); err != nil {
				return err
			}
		}
	} else {
		contract.Log(contract.LevelInfo, "files: a file of a keyed table was removed from the store; its rows stay in the warehouse", nil, "table", table, "file", key)
	}
	delete(files, key)
	s.dirty = true
	return nil
}

// removeTable deletes the rows of a table that is gone from the store.
func (s *syncer) removeTable(name string) error {
	ts := s.state.Tables[name]
	appended := slices.Equal(ts.Key, []string{FileColumn, LineColumn})
	keys := make([]string, 0, len(ts.Files))
	for k := range ts.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := s.removeFile(name, appended, ts.Files, k); err != nil {
			return err
		}
	}
	delete(s.state.Tables, name)
	s.dirty = true
	return nil
}

// load hands a local CSV or Parquet file to the destination's reader. It
// returns false, having written nothing, when the file is not for it or
// the reader would not give the rows that upserting gives.
func (s *syncer) load(tb *tableSync, f filetable.File) (int64, bool, error) {
	if s.loader == nil || f.Size == 0 {
		return 0, false, nil
	}
	lf, reason, err := s.describe(tb, f)
	if err != nil {
		return 0, false, err
	}
	if reason == "" {
		res, err := s.loader.LoadFile(tb.name, lf)
		if err != nil {
			return 0, false, s.loadErr(tb, f, err)
		}
		if res.Handled {
			for _, c := range lf.Columns {
				if c.Name != "" {
					tb.types[c.Name] = c
				}
			}
			return res.Rows, true, nil
		}
		reason = res.Reason
	}
	contract.Log(contract.LevelFine, "files: upserting the rows of a file one by one", nil, "table", tb.name, "file", f.Key, "reason", reason)
	return 0, false, nil
}

// describe tells the loader what the connector's reader makes of the file:
// its CSV dialect, its columns and their types. reason says why the file
// is not for the loader.
func (s *syncer) describe(tb *tableSync, f filetable.File) (contract.LocalFile, string, error) {
	var lf contract.LocalFile
	st := s.root.Store()
	path, ok := st.Local(f.Key)
	if !ok {
		return lf, "the file is not on the local file system", nil
	}
	lf.Path, lf.RowNumber = path, LineColumn
	src, err := st.Open(s.ctx, f.Key)
	if err != nil {
		// Streaming reports it as a user would see it.
		return lf, "the file does not open: " + err.Error(), nil
	}
	defer src.Close()
	name := st.String() + "/" + f.Key
	var cols []contract.Column
	switch tb.t.Format {
	case fileformat.CSV:
		rows, err := fileformat.Open(name, src, fileformat.Options{})
		if err != nil {
			return lf, "the file does not read: " + err.Error(), nil
		}
		defer rows.Close()
		cr, ok := rows.(*fileformat.CSVRows)
		if !ok {
			return lf, "not a CSV file", nil
		}
		info := cr.Info()
		_, gz, _ := fileformat.FormatOf(f.Key)
		lf.Format = contract.FileCSV
		lf.CSV = contract.CSVDialect{Delimiter: info.Delimiter, Quote: info.Quote, Header: info.Header, Gzip: gz}
		cols = rows.Columns()
	case fileformat.Parquet:
		meta, err := fileformat.ParquetInfo(src, src.Size(), name)
		if err != nil {
			return lf, "the file does not read: " + err.Error(), nil
		}
		lf.Format = contract.FileParquet
		cols = meta.Columns
	default:
		return lf, fmt.Sprintf("%s files are not for the loader", tb.t.Format), nil
	}
	if len(cols) == 0 {
		return lf, "the file has no columns", nil
	}
	if err := checkLineage(tb.name, cols); err != nil {
		return lf, "", err
	}
	for _, c := range cols {
		if slices.ContainsFunc(tb.t.PartitionKeys, func(k contract.Column) bool { return k.Name == c.Name }) {
			// The partition folder's value wins over the file's column.
			lf.Columns = append(lf.Columns, contract.Column{})
			continue
		}
		// filetable converts the values of a column whose type differs
		// from the table's: upserting gives those.
		if prev, ok := tb.types[c.Name]; ok && (prev != c || tb.mixed[c.Name]) {
			return lf, fmt.Sprintf("column %q is %s in this file and %s in the table", c.Name, c.Type, prev.Type), nil
		}
		lf.Columns = append(lf.Columns, c)
	}
	for k, pk := range tb.t.PartitionKeys {
		lf.Constants = append(lf.Constants, contract.ColumnValue{Column: pk, Value: f.Partition[k]})
	}
	lf.Constants = append(lf.Constants, contract.ColumnValue{Column: contract.Column{Name: FileColumn, Type: contract.String}, Value: f.Key})
	return lf, "", nil
}

// loadErr explains a file the destination's reader failed on. The sync
// stops there; the connector's own reader, run over the file, names the
// line that is wrong, as streaming would have.
func (s *syncer) loadErr(tb *tableSync, f filetable.File, err error) error {
	if s.ctx.Err() != nil {
		return err
	}
	rows, rerr := tb.t.RowsOf(s.ctx, []filetable.File{f})
	if rerr == nil {
		for rows.Next() {
		}
		rerr = rows.Err()
		rows.Close()
	}
	if rerr != nil && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	return fmt.Errorf(`%w (sluice's own reader reads the file: set "fast_path": "false" in the configuration to load it row by row)`, err)
}
