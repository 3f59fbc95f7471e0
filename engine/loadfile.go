package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// The optional Ops capabilities of file connectors (internal/contract,
// files.go): declaring columns mid-sync, and loading a whole local file
// through the destination's own reader.

var (
	_ contract.ColumnDeclarer = (*Engine)(nil)
	_ contract.FileLoader     = (*Engine)(nil)
)

// DeclareColumns implements contract.ColumnDeclarer.
func (e *Engine) DeclareColumns(table string, columns []contract.Column) error {
	if err := e.check(); err != nil {
		return err
	}
	t, err := e.table(table)
	if err != nil {
		return e.fail(fmt.Errorf("declare columns of %q: %w", table, err))
	}
	for _, dc := range columns {
		if _, err := e.declareColumn(t, dc); err != nil {
			return e.fail(fmt.Errorf("declare columns of table %q: column %q: %w", t.name, dc.Name, err))
		}
	}
	return nil
}

// declareColumn adds or widens one declared column of t, as Start's declare
// does for the schema's, and returns its index. A column already as wide
// keeps its type.
func (e *Engine) declareColumn(t *table, dc contract.Column) (int, error) {
	if dc.Type == contract.Unspecified || dc.Type > contract.JSON {
		return 0, fmt.Errorf("unknown type %d (use one of the sdk type constants)", dc.Type)
	}
	if dc.Type == contract.Decimal && (dc.Precision < 1 || dc.Precision > maxDecimalPrecision || dc.Scale < 0 || dc.Scale > dc.Precision) {
		return 0, fmt.Errorf("DECIMAL needs a precision from 1 to 38 and a scale from 0 to the precision (got %d, %d)", dc.Precision, dc.Scale)
	}
	col := destination.Column{Type: dc.Type, Precision: dc.Precision, Scale: dc.Scale}
	if dc.Type != contract.Decimal {
		col.Precision, col.Scale = 0, 0
	}
	i, ok := t.bySource[dc.Name]
	if !ok {
		var err error
		if i, err = e.newColumn(t, dc.Name); err != nil {
			return 0, err
		}
	}
	c := &t.cols[i]
	col.Name = c.col.Name
	switch {
	case c.col.Type == contract.Unspecified:
		c.col = col
		if t.inDest {
			e.schemaChange(destination.SchemaChange{Kind: destination.AddColumn, Table: destination.Table{Name: t.name}, Column: col})
		}
	case !sameType(c.col, col):
		w := widen(c.col, col)
		if sameType(w, c.col) {
			break // already wide enough: values are converted into it
		}
		if c.isKey {
			return 0, fmt.Errorf("key column %q is %s and cannot widen to %s: a key column keeps its type (run `sluice reset` to change it)", c.source, typeText(c.col), typeText(col))
		}
		if t.batch.Rows > 0 {
			// The rows taken so far are staged in the old type, so that
			// the destination converts them as it converts committed
			// ones (see setValue).
			if err := e.stage(t); err != nil {
				return 0, err
			}
		}
		w.Name = c.col.Name
		c.col = w
		e.schemaChange(destination.SchemaChange{Kind: destination.WidenColumn, Table: destination.Table{Name: t.name}, Column: w})
	}
	c.declared, c.claimed = true, true
	e.dirty = e.dirty || len(t.pendingChanges()) > 0
	return i, nil
}

// LoadFile implements contract.FileLoader: the file goes to the destination
// transaction's FileLoader, when it has one, after the table's pending
// batch and the schema changes the file needs. The rows count as upserts.
func (e *Engine) LoadFile(table string, f contract.LocalFile) (contract.FileLoaded, error) {
	if err := e.check(); err != nil {
		return contract.FileLoaded{}, err
	}
	if e.noFileLoader {
		return contract.FileLoaded{Reason: "the destination has no file loader"}, nil
	}
	t, err := e.table(table)
	if err != nil {
		return contract.FileLoaded{}, e.fail(fmt.Errorf("load file %s into %q: %w", f.Path, table, err))
	}
	load, reason, err := e.fileLoad(t, f)
	if err != nil {
		return contract.FileLoaded{}, e.fail(fmt.Errorf("load file %s into table %q: %w", f.Path, t.name, err))
	}
	if reason != "" {
		return contract.FileLoaded{Reason: reason}, nil
	}
	// The load must see the table as the operations before it left it.
	if err := e.stage(t); err != nil {
		return contract.FileLoaded{}, e.fail(err)
	}
	var res destination.FileLoadResult
	unsupported := false
	done := make(chan error, 1)
	e.submit(writeJob{ctx: e.ctx, done: done, run: func(tx destination.Tx) error {
		fl, ok := tx.(destination.FileLoader)
		if !ok {
			unsupported = true
			return nil
		}
		// The connector's context, not the writer's: a long load stops
		// when the sync is cancelled.
		var err error
		res, err = fl.LoadFile(e.ctx, load)
		if err != nil {
			return fmt.Errorf("load file %s into table %q: %w", f.Path, t.name, err)
		}
		return nil
	}})
	if err := <-done; err != nil {
		return contract.FileLoaded{}, e.fail(err)
	}
	if unsupported {
		e.noFileLoader = true
		return contract.FileLoaded{Reason: "the destination has no file loader"}, nil
	}
	if !res.Handled {
		return contract.FileLoaded{Reason: res.Reason}, nil
	}
	e.ops.Add(res.Rows)
	t.counts.Upserts += res.Rows
	e.dirty = true
	// The engine does not know the keys the load wrote: from here on the
	// table's rows are looked up, not assumed new.
	t.keys = nil
	return contract.FileLoaded{Handled: true, Rows: res.Rows}, nil
}

// fileLoad declares the file's columns and maps them to the warehouse's.
// reason is set when the destination cannot give exactly what upserting the
// rows would.
func (e *Engine) fileLoad(t *table, f contract.LocalFile) (load destination.FileLoad, reason string, err error) {
	if t.hashKey {
		return load, "the table has no primary key: its _sluice_id is a hash the engine computes per row", nil
	}
	if f.Format != contract.FileCSV && f.Format != contract.FileParquet {
		return load, fmt.Sprintf("format %q is not one a file loader reads", f.Format), nil
	}
	load = destination.FileLoad{Table: t.name, Path: f.Path, Format: f.Format, CSV: f.CSV}
	given := map[int]bool{}
	use := func(c contract.Column) (int, error) {
		i, err := e.declareColumn(t, c)
		if err != nil {
			return 0, fmt.Errorf("column %q: %w", c.Name, err)
		}
		if given[i] {
			return 0, fmt.Errorf("column %q is given twice", c.Name)
		}
		given[i] = true
		return i, nil
	}
	var mismatch []string
	for _, c := range f.Columns {
		if c.Name == "" {
			load.Columns = append(load.Columns, destination.Column{})
			continue
		}
		if c.Type == contract.Unspecified {
			// A column of NULLs only (a Parquet NULL type): the loader
			// could not tell its warehouse type from the file.
			mismatch = append(mismatch, c.Name+" has no type")
			load.Columns = append(load.Columns, destination.Column{})
			continue
		}
		i, err := use(c)
		if err != nil {
			return load, "", err
		}
		want := destination.Column{Type: c.Type, Precision: c.Precision, Scale: c.Scale}
		if c.Type != contract.Decimal {
			want.Precision, want.Scale = 0, 0
		}
		if !sameType(t.cols[i].col, want) {
			// A wider warehouse column gets converted values, which the
			// engine converts its own way (coerce): upserts keep that.
			mismatch = append(mismatch, fmt.Sprintf("%s is %s in the file but %s in the warehouse", c.Name, typeText(want), typeText(t.cols[i].col)))
		}
		want.Name = t.cols[i].col.Name
		load.Columns = append(load.Columns, want)
	}
	for _, cv := range f.Constants {
		c := cv.Column
		if c.Type == contract.Unspecified {
			col, _, ok, err := infer(cv.Value)
			if err != nil {
				return load, "", fmt.Errorf("column %q: %w", c.Name, err)
			}
			if !ok {
				// A NULL says nothing of the type: the column keeps
				// the one it has, or is text.
				col.Type = contract.String
				if i, ok := t.bySource[c.Name]; ok && t.cols[i].col.Type != contract.Unspecified {
					col = t.cols[i].col
				}
			}
			c.Type, c.Precision, c.Scale = col.Type, col.Precision, col.Scale
		}
		i, err := use(c)
		if err != nil {
			return load, "", err
		}
		v, err := coerce(cv.Value, t.cols[i].col)
		if err != nil {
			return load, "", fmt.Errorf("column %q: value %s does not fit %s: %w", c.Name, showValue(cv.Value), t.cols[i].col.Type, err)
		}
		load.Constants = append(load.Constants, destination.FileConstant{Column: t.cols[i].col, Value: v})
	}
	if f.RowNumber != "" {
		i, err := use(contract.Column{Name: f.RowNumber, Type: contract.Long})
		if err != nil {
			return load, "", err
		}
		if c := t.cols[i].col; c.Type != contract.Long {
			mismatch = append(mismatch, fmt.Sprintf("%s (the row number) is %s in the warehouse", f.RowNumber, typeText(c)))
		}
		load.RowNumber = t.cols[i].col.Name
	}
	for _, k := range t.keyIdx {
		if !given[k] {
			return load, fmt.Sprintf("the file gives no value for key column %q", t.cols[k].source), nil
		}
	}
	if len(mismatch) > 0 {
		slices.Sort(mismatch)
		return load, "types differ: " + strings.Join(mismatch, "; "), nil
	}
	return load, "", nil
}

// typeText names a column's type, with a DECIMAL's precision and scale.
func typeText(c destination.Column) string {
	if c.Type == contract.Decimal {
		return fmt.Sprintf("DECIMAL(%d,%d)", c.Precision, c.Scale)
	}
	return c.Type.String()
}
