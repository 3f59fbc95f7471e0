package duckdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// A file load (destination.FileLoader) reads a local CSV or Parquet file
// with DuckDB's own read_csv or read_parquet, in one INSERT ... SELECT
// inside the checkpoint's transaction, and must leave exactly the rows that
// upserting the file's rows one by one would (fileformat reading them).
//
// CSV is read with the dialect the connector's reader found (delimiter,
// quote, header), every column as text, quoted empty fields kept as empty
// strings (allow_quoted_nulls=false); each column is then converted by SQL
// that accepts exactly the text fileformat accepts for its type (see
// csvValue). A file loaded fresh is instead read by Go, in parts, into
// Arrow batches that DuckDB scans, in a build with the duckdb_arrow tag
// (csvarrow.go); otherwise a large one is read in numbered parts, its
// typed columns as their types (csvparts.go). A value that does not
// read as its column's type (fileformat would then turn the column to
// STRING) marks its row with a sentinel _sluice_synced; a load that marks
// any row is undone and not handled, and the connector upserts the rows
// itself. Parquet is read by read_parquet
// when every column has a DuckDB type whose values convert exactly to the
// sluice type (see parquetCast); otherwise the file is not handled.
//
// A load into a table (or, when part of the key is a constant such as the
// file's name, a slice of it) that holds no row yet is one INSERT straight
// into the table, as DuckDB's own CREATE TABLE AS would be. Otherwise the
// rows are staged in a temporary table, checked, and replace the rows with
// their keys (DELETE ... USING, then INSERT), duplicates within the file
// resolved by their position, the last winning.

// badSynced marks the rows with a value that does not read as its column's
// type; no row keeps it past the load.
const badSynced = "'-infinity'::TIMESTAMPTZ"

// loadTable stages the rows of a file load that replaces rows.
const loadTable = "_sluice_load"

// loadThreads and loadMemoryLimit are DuckDB's settings while a file loads
// at the sync's defaults (one thread, syncMemoryLimit): the engine's
// goroutine waits for the load, so its core is free, and read_parquet on
// two threads needs more than 48MB. Measured on 10M rows on an idle 2-core
// machine: Parquet 10.9 s at one thread and 48MB, 6.4 s at two and 128MB
// (DuckDB's own load, both cores and 80 % of RAM: 5.9 s), peak RSS 151 and
// 246 MiB (BENCHMARKS.md, "File tables"). A CSV load gains from the second
// thread only where its rows are numbered in parts (loadInParts) or past
// its row numbering (materializeRows).
const (
	loadThreads     = "2"
	loadMemoryLimit = "128MB"
	// csvLoadMemoryLimit is a CSV load's memory_limit on two threads:
	// the materialized rows spill beyond it, and 128MB peaked at 259-288
	// MiB where 64MB peaked at 177-197 MiB, as fast (10M rows, 13.0-14.0 s
	// at 64MB against 12.8-13.6 s at 80MB, runs alternated).
	csvLoadMemoryLimit = "64MB"
)

// widenForLoad raises DuckDB's threads to loadThreads and its memory_limit
// to memoryLimit for a file load, if the sync runs at its defaults
// (settings a user chose are left alone), and returns what puts them back.
func (t *tx) widenForLoad(ctx context.Context, memoryLimit string) (restore func() error, err error) {
	noop := func() error { return nil }
	if t.d.threads != syncThreads || t.d.memoryLimit != syncMemoryLimit || runtime.NumCPU() < 2 {
		return noop, nil
	}
	set := func(threads, limit string) error {
		if _, err := t.tx.ExecContext(context.WithoutCancel(ctx), `SET threads = `+threads); err != nil {
			return fmt.Errorf("DuckDB threads for a file load: %w", err)
		}
		if _, err := t.tx.ExecContext(context.WithoutCancel(ctx), `SET memory_limit = '`+limit+`'`); err != nil {
			return fmt.Errorf("DuckDB memory_limit for a file load: %w", err)
		}
		return nil
	}
	if err := set(loadThreads, memoryLimit); err != nil {
		return noop, err
	}
	return func() error { return set(syncThreads, syncMemoryLimit) }, nil
}

// materializeRows makes src.rows a materialized CTE when DuckDB runs on
// more than one thread. The row numbering (row_number() OVER (), see
// csvScan) holds the pipeline it is in to one thread; without the CTE that
// pipeline ends in the INSERT, whose compression is most of a load's work
// (12 of 17 CPU-s for 10M rows). The CTE ends the numbered pipeline, so the
// INSERT reads the numbered rows on every thread: on 10M rows the
// statement took 13.0 s against 17.7 s, the files connector's sync 13.85 s
// against 17.06 s (BENCHMARKS.md, "File tables"). The numbers are given
// before the CTE, so the order it hands rows on in does not matter. It
// spills to DuckDB's temporary directory beyond memory_limit (1.1 GB for a
// 916 MB file). On one thread it is only a cost. A file that can be cut
// into numbered parts (loadInParts) needs none of this.
func (t *tx) materializeRows(ctx context.Context, src *source) error {
	threads, err := t.threads(ctx)
	if err != nil {
		return err
	}
	if threads > 1 {
		src.rows = `WITH _sluice_rows AS MATERIALIZED (` + src.rows + `) SELECT * FROM _sluice_rows`
	}
	return nil
}

// threads is DuckDB's thread count now.
func (t *tx) threads(ctx context.Context) (int, error) {
	var threads int
	if err := t.tx.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&threads); err != nil {
		return 0, fmt.Errorf("DuckDB threads: %w", err)
	}
	return threads, nil
}

// spillLimit bounds the CSV files whose rows a load materializes: past
// memory_limit they spill to DuckDB's temporary directory, beside the
// warehouse, at about 1.2 times the file's text (1.1 GB for a 916 MB
// file), which a larger file would ask of the disk for a fifth of its
// load's time. A gzipped file's text is taken as spillGzipFactor times
// its size.
const (
	spillLimit      = 2 << 30
	spillGzipFactor = 8
)

// spillFits reports whether f is small enough to materialize (spillLimit).
func spillFits(f destination.FileLoad) bool {
	fi, err := os.Stat(f.Path)
	if err != nil {
		return false // the load itself then says what is wrong
	}
	size := fi.Size()
	if f.CSV.Gzip {
		size *= spillGzipFactor
	}
	return size <= spillLimit
}

// csvBufferBytes is read_csv's buffer: DuckDB's default (32 MiB, one per
// thread) does not fit the sync's memory_limit.
const csvBufferBytes = 2 << 20

var _ destination.FileLoader = (*tx)(nil)

// LoadFile implements destination.FileLoader.
func (t *tx) LoadFile(ctx context.Context, f destination.FileLoad) (res destination.FileLoadResult, err error) {
	defer t.fail(&err)
	if t.failed {
		return res, errors.New("load after a failed step")
	}
	tbl, err := t.d.target(f.Table)
	if err != nil {
		return res, err
	}
	// Rows this transaction holds for the table go in first: the load
	// replaces or is checked against them.
	if err := t.flushDeferred(ctx, tbl); err != nil {
		return res, err
	}
	if err := t.settle(f.Table); err != nil {
		return res, err
	}
	src, reason, err := t.loadSource(ctx, tbl, f, false)
	if err != nil || reason != "" {
		return destination.FileLoadResult{Reason: reason}, err
	}
	fresh := true
	err = t.tx.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM `+t.d.qualified(tbl.Name)+` WHERE `+src.slice+`)`).Scan(&fresh)
	if err != nil {
		return res, fmt.Errorf("table %q: %w", tbl.Name, err)
	}
	// A CSV load gets a second thread only where its rows are read
	// through Arrow (loadArrow), numbered in parts (loadInParts) or its
	// numbered rows materialized (materializeRows). One that replaces
	// rows stays on one thread: its rows are numbered on one, and the
	// staging table they go to, the transaction's own, is scanned on one
	// (DuckDB scans a transaction's uncommitted rows on one thread), so a
	// second thread would add memory for no gain.
	viaArrow := arrowLoads && f.Format == contract.FileCSV && fresh && src.unique && src.rn != ""
	inParts := f.Format == contract.FileCSV && fresh && src.unique && src.rn != "" && csvPartsFit(f)
	materialize := f.Format == contract.FileCSV && fresh && src.unique && spillFits(f)
	if f.Format == contract.FileParquet || viaArrow || inParts || materialize {
		limit := loadMemoryLimit
		if f.Format == contract.FileCSV {
			limit = csvLoadMemoryLimit
		}
		restore, werr := t.widenForLoad(ctx, limit)
		if werr != nil {
			return res, werr
		}
		defer func() {
			if rerr := restore(); err == nil && rerr != nil {
				err = rerr
			}
		}()
	}
	if fresh && src.unique {
		if viaArrow || inParts {
			psrc, _, err := t.loadSource(ctx, tbl, f, true)
			if err != nil {
				return res, err
			}
			if viaArrow {
				res, done, err := t.loadArrow(ctx, tbl, f, psrc)
				if err != nil || done {
					return res, err
				}
			}
			if inParts {
				res, done, err := t.loadInParts(ctx, tbl, f, psrc)
				if err != nil || done {
					return res, err
				}
			}
		}
		if materialize {
			if err := t.materializeRows(ctx, &src); err != nil {
				return res, err
			}
		}
		return t.insertFresh(ctx, tbl, f, src)
	}
	return t.replaceFrom(ctx, tbl, f, src, fresh)
}

// source is the SELECT that turns a file into the table's rows.
type source struct {
	// rows selects every row of the file in the table's column order,
	// then _sluice_synced (badSynced where a value does not read) and
	// _sluice_deleted; staged also selects the row's position in the
	// file, _sluice_rn.
	rows, staged string
	columns      []string // quoted target columns of rows
	key          []string // quoted key columns
	// slice is the condition that holds for every row of this file and,
	// when part of the key is a constant, for no row of another file.
	slice string
	// unique: the key includes the row's position, so no two rows of the
	// file share one.
	unique bool
	// For a CSV file, rows is "SELECT out FROM (SELECT values FROM
	// (csvScan))"; rn is the quoted column that takes the row's position.
	out, values, rn string
}

// loadSource builds the SELECT for f, or says why DuckDB cannot read the
// file as the connector's reader does. typed is for a CSV file read in
// numbered parts (partsRows), whose typed columns DuckDB reads as their
// types: fileformat.NumberTypedCSV has checked and rewritten their values.
func (t *tx) loadSource(ctx context.Context, tbl *destination.Table, f destination.FileLoad, typed bool) (source, string, error) {
	var src source
	var scan string
	vals := map[string]string{} // target column -> expression over the scan
	checks := []string{}        // conditions that every good row meets
	switch f.Format {
	case contract.FileCSV:
		if len(f.Columns) < 2 {
			// fileformat reads the empty lines of a one-column file as
			// NULL rows, where read_csv skips them.
			return src, "a CSV file of one column", nil
		}
		// Two steps: the text, then the typed columns' values.
		values := []string{"_sluice_rn"}
		for i, c := range f.Columns {
			if c.Name == "" {
				continue
			}
			raw, v := fmt.Sprintf("c%d", i), fmt.Sprintf("v%d", i)
			if c.Type == contract.String {
				values = append(values, raw)
				vals[c.Name] = raw
				continue
			}
			conv, why := csvValue(raw, c)
			if why != "" {
				return src, why, nil
			}
			if typed {
				values = append(values, raw)
				vals[c.Name] = raw
				continue
			}
			values = append(values, raw, conv+" AS "+v)
			vals[c.Name] = v
			// A value is good when it reads, or is empty or blank
			// (NULL); the test for blanks runs only where it does
			// not read.
			good := v + " IS NOT NULL"
			if c.Type == contract.Double {
				// Text that overflows reads as infinity, which
				// fileformat refuses.
				good = "isfinite(" + v + ")"
			}
			checks = append(checks, "("+raw+" IS NULL OR "+good+" OR ("+v+" IS NULL AND regexp_full_match("+raw+", '"+blank+"')))")
		}
		src.values = strings.Join(values, ", ")
		scan = "SELECT " + src.values + " FROM (" + csvScan(f) + ")"
	case contract.FileParquet:
		names, reason, err := t.parquetColumns(ctx, f)
		if err != nil || reason != "" {
			return src, reason, err
		}
		sel := []string{"file_row_number + 1 AS _sluice_rn"}
		for i, c := range f.Columns {
			if c.Name == "" {
				continue
			}
			cast, why := parquetCast(names[i].typ, c)
			if why != "" {
				return src, fmt.Sprintf("column %q: %s", names[i].name, why), nil
			}
			sel = append(sel, fmt.Sprintf("%s AS c%d", strings.ReplaceAll(cast, "$", quote(names[i].name)), i))
			vals[c.Name] = fmt.Sprintf("c%d", i)
		}
		scan = "SELECT " + strings.Join(sel, ", ") + " FROM read_parquet(" + sqlString(f.Path) + ", file_row_number = true, binary_as_string = false, hive_partitioning = false)"
	default:
		return src, fmt.Sprintf("format %q", f.Format), nil
	}
	var slice []string
	for _, k := range f.Constants {
		lit, err := literal(k.Value, k.Column)
		if err != nil {
			return src, "", fmt.Errorf("column %q: %w", k.Column.Name, err)
		}
		vals[k.Column.Name] = lit
		if isKey(tbl, k.Column.Name) && k.Value != nil {
			slice = append(slice, quote(k.Column.Name)+" = "+lit)
		}
	}
	if f.RowNumber != "" {
		vals[f.RowNumber] = "_sluice_rn"
		src.unique = isKey(tbl, f.RowNumber)
		src.rn = quote(f.RowNumber)
	}
	for _, k := range tbl.PrimaryKey {
		v, ok := vals[k]
		if !ok {
			return src, fmt.Sprintf("the file gives no value for key column %q", k), nil
		}
		src.key = append(src.key, quote(k))
		// A row without its key is an error when upserted: the rows then
		// show it, not the load.
		checks = append(checks, v+" IS NOT NULL")
	}
	synced := t.syncedSQL
	if len(checks) > 0 {
		synced = "CASE WHEN " + strings.Join(checks, " AND ") + " THEN " + t.syncedSQL + " ELSE " + badSynced + " END"
	}
	var out []string
	for _, c := range tbl.Columns {
		src.columns = append(src.columns, quote(c.Name))
		v, ok := vals[c.Name]
		if !ok {
			v = "NULL" // an upsert replaces the whole row
		}
		out = append(out, v+" AS "+quote(c.Name))
	}
	src.columns = append(src.columns, quote(destination.ColumnSynced), quote(destination.ColumnDeleted))
	out = append(out, synced+" AS "+quote(destination.ColumnSynced), "false AS "+quote(destination.ColumnDeleted))
	src.out = strings.Join(out, ", ")
	src.rows = "SELECT " + src.out + " FROM (" + scan + ")"
	src.staged = "SELECT " + strings.Join(out, ", ") + ", _sluice_rn FROM (" + scan + ")"
	src.slice = "true"
	if len(slice) > 0 {
		src.slice = strings.Join(slice, " AND ")
	}
	return src, "", nil
}

func isKey(tbl *destination.Table, col string) bool {
	for _, k := range tbl.PrimaryKey {
		if k == col {
			return true
		}
	}
	return false
}

// insertFresh inserts the file's rows straight into a table (slice) that
// holds none yet, then looks for rows marked bad, and if there are any
// deletes what it inserted.
func (t *tx) insertFresh(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source) (destination.FileLoadResult, error) {
	n, err := t.insertRows(ctx, tbl, f, src.rows, src.columns)
	if err != nil {
		return destination.FileLoadResult{}, err
	}
	return t.keepUnlessBad(ctx, tbl, f, src, n)
}

// insertRows inserts what rows selects into columns of tbl, and returns
// how many rows it inserted.
func (t *tx) insertRows(ctx context.Context, tbl *destination.Table, f destination.FileLoad, rows string, columns []string) (int64, error) {
	r, err := t.tx.ExecContext(ctx, `INSERT INTO `+t.d.qualified(tbl.Name)+` (`+strings.Join(columns, ", ")+`) `+rows)
	if err != nil {
		return 0, readErr(f, err)
	}
	return r.RowsAffected()
}

// keepUnlessBad looks for rows of the slice that a fresh load marked bad,
// and deletes them all if there is one: the rows are then upserted.
func (t *tx) keepUnlessBad(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source, n int64) (destination.FileLoadResult, error) {
	var bad bool
	if err := t.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.d.qualified(tbl.Name)+` WHERE `+src.slice+` AND `+quote(destination.ColumnSynced)+` = `+badSynced+`)`).Scan(&bad); err != nil {
		return destination.FileLoadResult{}, err
	}
	if !bad {
		return destination.FileLoadResult{Handled: true, Rows: n}, nil
	}
	if err := t.undoFresh(ctx, tbl, f, src); err != nil {
		return destination.FileLoadResult{}, err
	}
	return destination.FileLoadResult{Reason: badReason}, nil
}

// undoFresh deletes what a fresh load inserted into the slice.
func (t *tx) undoFresh(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source) error {
	t.updated[tbl.Name] = true
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+t.d.qualified(tbl.Name)+` WHERE `+src.slice); err != nil {
		return fmt.Errorf("undo the load of %s: %w", f.Path, err)
	}
	return nil
}

// loadInParts loads a fresh CSV file in numbered parts, one per thread
// (see csvparts.go), from src as loadSource gives it typed. done is false,
// with nothing inserted, when the file is to be loaded whole: it has no
// cut, a carriage return that ends no line, or its rows fail the check
// that they are numbered 1 to n, n the records numbered.
func (t *tx) loadInParts(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source) (res destination.FileLoadResult, done bool, err error) {
	threads, err := t.threads(ctx)
	if err != nil || threads < 2 {
		return res, false, err
	}
	feed, err := feedCSV(ctx, f, threads)
	if err != nil || feed == nil {
		return res, false, err
	}
	n, err := t.insertRows(ctx, tbl, f, partsRows(src, f, feed), src.columns)
	records, ferr := feed.close()
	if err != nil {
		return res, false, err
	}
	switch {
	case errors.Is(ferr, fileformat.ErrNotTyped):
		return t.declineNotTyped(ctx, tbl, f, src, ferr)
	case errors.Is(ferr, fileformat.ErrNotNumbered):
		return res, false, t.undoFresh(ctx, tbl, f, src)
	case ferr != nil:
		return res, false, ferr
	}
	// The sum is exact (HUGEINT): with the count, the least and the
	// greatest, it tells 1..n from any numbering a misread could give,
	// and DuckDB skipping a row it could not read (ignore_errors). The
	// TIMESTAMPTZ columns' counts catch a value DuckDB took for NULL, as
	// it does, without an error, with one it does not read; a value of
	// another type that it does not read skips the row
	// (TestTypedPartsLoadAsWhole). This scan runs on one thread (the
	// transaction's own rows), so it reads only those columns.
	var rows, low, high int64
	var sums, bad bool
	sel := []string{`count(*)`, `coalesce(min(` + src.rn + `), 0)`, `coalesce(max(` + src.rn + `), 0)`,
		`coalesce(sum(` + src.rn + `), 0) = count(*)::HUGEINT * (count(*) + 1) // 2`,
		`coalesce(bool_or(` + quote(destination.ColumnSynced) + ` = ` + badSynced + `), false)`}
	dest := []any{&rows, &low, &high, &sums, &bad}
	values, written := make([]int64, len(f.Columns)), make([]int64, len(f.Columns))
	for i, c := range f.Columns {
		if c.Name != "" && c.Type == contract.UTCDateTime {
			sel = append(sel, `count(`+quote(c.Name)+`)`)
			dest = append(dest, &values[i])
			written[i] = feed.values[i]
		}
	}
	if err := t.tx.QueryRowContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+t.d.qualified(tbl.Name)+` WHERE `+src.slice).Scan(dest...); err != nil {
		return res, false, err
	}
	if rows != n || rows != records || !sums || (rows > 0 && (low != 1 || high != rows)) || !slices.Equal(values, written) {
		slog.Warn("a CSV file's parts did not give its records as counted; loading it whole", "file", f.Path, "rows", rows, "records", records, "values", values, "written", written)
		return res, false, t.undoFresh(ctx, tbl, f, src)
	}
	if bad {
		return destination.FileLoadResult{Reason: badReason}, true, t.undoFresh(ctx, tbl, f, src)
	}
	slog.Debug("loaded a CSV file in parts", "file", f.Path, "parts", len(feed.paths), "rows", n)
	return destination.FileLoadResult{Handled: true, Rows: n}, true, nil
}

// declineNotTyped undoes a fresh load whose reader met a value that does
// not read as its column's type (fileformat.ErrNotTyped): the rows are
// upserted, and the column widens as they go.
func (t *tx) declineNotTyped(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source, err error) (destination.FileLoadResult, bool, error) {
	slog.Debug("a CSV file's value does not read as its column's type", "file", f.Path, "error", err)
	return destination.FileLoadResult{Reason: badReason}, true, t.undoFresh(ctx, tbl, f, src)
}

// badReason says why a load was undone.
const badReason = "a value does not read as its column's type, or a key is missing: the rows are upserted instead"

// replaceFrom stages the file's rows, checks them, and replaces the rows of
// the table with their keys by them, the last of each key winning.
func (t *tx) replaceFrom(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source, fresh bool) (destination.FileLoadResult, error) {
	staged := "temp.main." + quote(loadTable)
	if _, err := t.tx.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+quote(loadTable)+` AS `+src.staged); err != nil {
		return destination.FileLoadResult{}, readErr(f, err)
	}
	drop := func() error {
		_, err := t.tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+staged)
		return err
	}
	var n int64
	var bad bool
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*), coalesce(bool_or(`+quote(destination.ColumnSynced)+` = `+badSynced+`), false) FROM `+staged).Scan(&n, &bad); err != nil {
		return destination.FileLoadResult{}, err
	}
	if bad {
		return destination.FileLoadResult{Reason: badReason}, drop()
	}
	q := t.d.qualified(tbl.Name)
	if !fresh {
		on := make([]string, len(src.key))
		for i, k := range src.key {
			on[i] = "t." + k + " = s." + k
		}
		t.updated[tbl.Name] = true
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+q+` AS t USING (SELECT DISTINCT `+strings.Join(src.key, ", ")+` FROM `+staged+`) AS s WHERE `+strings.Join(on, " AND ")); err != nil {
			return destination.FileLoadResult{}, fmt.Errorf("replace rows of table %q: %w", tbl.Name, err)
		}
	}
	sel := `SELECT ` + strings.Join(src.columns, ", ") + ` FROM ` + staged
	if !src.unique {
		sel += ` QUALIFY row_number() OVER (PARTITION BY ` + strings.Join(src.key, ", ") + ` ORDER BY _sluice_rn DESC) = 1`
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO `+q+` (`+strings.Join(src.columns, ", ")+`) `+sel); err != nil {
		return destination.FileLoadResult{}, fmt.Errorf("insert into table %q: %w", tbl.Name, err)
	}
	return destination.FileLoadResult{Handled: true, Rows: n}, drop()
}

// readErr names the file in DuckDB's error.
func readErr(f destination.FileLoad, err error) error {
	return fmt.Errorf("DuckDB reading %s: %w", f.Path, err)
}

// csvScan reads a CSV file with exactly the connector's dialect, every
// column as text, each row numbered by its position (the streaming window
// numbers rows in the order the scan yields them, which is the file's).
func csvScan(f destination.FileLoad) string {
	cols := make([]string, len(f.Columns))
	for i := range cols {
		cols[i] = fmt.Sprintf("'c%d': 'VARCHAR'", i)
	}
	return "SELECT row_number() OVER () AS _sluice_rn, * FROM " + readCSV(f, sqlString(f.Path), f.CSV.Header, cols)
}

// readCSV is the read_csv call reading from (a path or a list of them, as
// SQL) with f's dialect and the given columns; header says whether each
// file starts with a header line.
func readCSV(f destination.FileLoad, from string, header bool, columns []string, extra ...string) string {
	compression := "none"
	if f.CSV.Gzip {
		compression = "gzip"
	}
	opts := []string{
		from,
		"header = " + strconv.FormatBool(header),
		"delim = " + sqlString(string(rune(f.CSV.Delimiter))),
		"quote = " + sqlString(string(rune(f.CSV.Quote))),
		"escape = " + sqlString(string(rune(f.CSV.Quote))),
		"compression = " + sqlString(compression),
		"columns = {" + strings.Join(columns, ", ") + "}",
		"auto_detect = false",
		"hive_partitioning = false",
		"allow_quoted_nulls = false",
		"strict_mode = true",
		"null_padding = false",
		"buffer_size = " + strconv.Itoa(csvBufferBytes),
	}
	opts = append(opts, extra...)
	return "read_csv(" + strings.Join(opts, ", ") + ")"
}

// Patterns of the text fileformat reads as each type
// (fileformat/csv_types.go): spaces and tabs around a value are ignored,
// and DuckDB's casts ignore them too.
const (
	blank         = `[ \t]*`
	longPattern   = blank + `[+-]?(0|[1-9][0-9]{0,18})` + blank
	doublePattern = blank + `[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?` + blank
	datePattern   = `[0-9]{4}-[0-9]{2}-[0-9]{2}`
	clockPattern  = `([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?`
	zonePattern   = `([Zz]|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)`
	// DuckDB's casts read these forms as fileformat does: the space or T
	// separator, at most six decimals of a second, and an offset only
	// after the seconds.
	naiveCanon = blank + datePattern + `( ([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?` + blank
	utcCanon   = blank + datePattern + `[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)` + blank
)

// csvValue converts raw, the text of a CSV column, to col's type as
// fileformat reads a value of that type: NULL where it does not read, and
// where it is empty or blank. why is set for a type fileformat never gives
// a CSV column.
func csvValue(raw string, col destination.Column) (conv, why string) {
	match := func(pattern string) string { return "regexp_full_match(" + raw + ", '" + pattern + "')" }
	switch col.Type {
	case contract.Boolean:
		return "CASE lower(" + raw + ") WHEN 'true' THEN true WHEN 'false' THEN false ELSE " +
			"CASE WHEN " + match("(?i)"+blank+"true"+blank) + " THEN true WHEN " + match("(?i)"+blank+"false"+blank) + " THEN false END END", ""
	case contract.Long:
		return "CASE WHEN " + match(longPattern) + " THEN TRY_CAST(" + raw + " AS BIGINT) END", ""
	case contract.Decimal:
		if col.Precision < 1 || col.Scale > col.Precision {
			return "", fmt.Sprintf("DECIMAL(%d,%d)", col.Precision, col.Scale)
		}
		// Exactly the digits the column holds: more decimals would widen
		// fileformat's column, more integer digits do not fit.
		p := `[+-]?(0|[1-9][0-9]{0,` + strconv.Itoa(max(col.Precision-col.Scale-1, 0)) + `})`
		if col.Precision == col.Scale {
			p = `[+-]?0`
		}
		if col.Scale > 0 {
			p += `(\.[0-9]{1,` + strconv.Itoa(col.Scale) + `})?`
		}
		return "CASE WHEN " + match(blank+p+blank) + " THEN TRY_CAST(" + raw + " AS " + SQLType(col) + ") END", ""
	case contract.Double:
		return "CASE WHEN " + match(doublePattern) + " THEN TRY_CAST(" + raw + " AS DOUBLE) END", ""
	case contract.NaiveDate:
		return "CASE WHEN " + match(blank+datePattern+blank) + " THEN TRY_CAST(" + raw + " AS DATE) END", ""
	case contract.NaiveDateTime:
		return "CASE WHEN " + match(naiveCanon) + " THEN TRY_CAST(" + raw + " AS TIMESTAMP)" +
			" WHEN " + match(blank+datePattern+"[Tt ]"+clockPattern+blank) + " THEN TRY_CAST(" + normalizeTime(raw) + " AS TIMESTAMP) END", ""
	case contract.UTCDateTime:
		return "CASE WHEN " + match(utcCanon) + " THEN TRY_CAST(" + raw + " AS TIMESTAMPTZ)" +
			" WHEN " + match(blank+datePattern+"[Tt ]"+clockPattern+zonePattern+blank) + " THEN TRY_CAST(" + normalizeTime(raw) + " AS TIMESTAMPTZ) END", ""
	}
	return "", fmt.Sprintf("a CSV column of type %s", col.Type)
}

// normalizeTime rewrites a datetime fileformat reads into the form DuckDB's
// cast reads alike: trimmed, a space between date and clock, seconds
// (DuckDB reads no offset after HH:MM), decimals of a second cut to six
// (fileformat keeps nine and the engine cuts to microseconds), and Z as
// +00.
func normalizeTime(raw string) string {
	s := "trim(" + raw + ", ' ' || chr(9))"
	s = "regexp_replace(" + s + ", '^(" + datePattern + ")[Tt ]', '\\1 ')"
	s = "regexp_replace(" + s + ", '^(" + datePattern + " [0-9]{2}:[0-9]{2})([^:]|$)', '\\1:00\\2')"
	s = "regexp_replace(" + s + ", '(\\.[0-9]{6})[0-9]+', '\\1')"
	return "regexp_replace(" + s + ", '[Zz]$', '+00')"
}

// parquetColumn is a column as read_parquet sees it.
type parquetColumn struct{ name, typ string }

// parquetColumns lists the file's top-level columns with their DuckDB
// types, in the file's order, which is fileformat's.
func (t *tx) parquetColumns(ctx context.Context, f destination.FileLoad) ([]parquetColumn, string, error) {
	p := sqlString(f.Path)
	var int96 int
	// INT96 timestamps hold nanoseconds, which DuckDB and the engine may
	// cut to microseconds differently.
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM parquet_schema(`+p+`) WHERE type = 'INT96'`).Scan(&int96); err != nil {
		return nil, "", readErr(f, err)
	}
	if int96 > 0 {
		return nil, "INT96 timestamps", nil
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(`+p+`, hive_partitioning = false))`)
	if err != nil {
		return nil, "", readErr(f, err)
	}
	defer rows.Close()
	var cols []parquetColumn
	for rows.Next() {
		var c parquetColumn
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			return nil, "", err
		}
		if strings.EqualFold(c.name, "file_row_number") {
			return nil, "a column named file_row_number", nil
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", readErr(f, err)
	}
	if len(cols) != len(f.Columns) {
		return nil, fmt.Sprintf("DuckDB reads %d columns where the connector's reader found %d", len(cols), len(f.Columns)), nil
	}
	return cols, "", nil
}

// parquetCast gives the expression ($ standing for the column) that turns
// a read_parquet column of DuckDB type typ into the value fileformat reads
// as col's type, or says why none does exactly.
func parquetCast(typ string, col destination.Column) (string, string) {
	same := func(types ...string) bool {
		for _, t := range types {
			if typ == t {
				return true
			}
		}
		return false
	}
	ok := false
	switch col.Type {
	case contract.Boolean:
		ok = same("BOOLEAN")
	case contract.Short:
		ok = same("TINYINT", "SMALLINT", "UTINYINT")
	case contract.Int:
		ok = same("INTEGER", "USMALLINT")
	case contract.Long:
		ok = same("BIGINT", "UINTEGER")
	case contract.Decimal:
		ok = typ == fmt.Sprintf("DECIMAL(%d,%d)", col.Precision, col.Scale) || (typ == "UBIGINT" && col.Scale == 0 && col.Precision >= 20)
	case contract.Float:
		ok = same("FLOAT")
	case contract.Double:
		ok = same("DOUBLE")
	case contract.NaiveDate:
		ok = same("DATE")
	case contract.NaiveDateTime:
		ok = same("TIMESTAMP", "TIMESTAMP_MS")
	case contract.UTCDateTime:
		ok = same("TIMESTAMP WITH TIME ZONE")
	case contract.String:
		// TIME and UUID are text in fileformat, spelled its own way.
		ok = same("VARCHAR")
	case contract.Binary:
		ok = same("BLOB")
	case contract.JSON:
		ok = same("JSON")
	}
	if !ok {
		return "", fmt.Sprintf("DuckDB reads %s where the connector reads %s", typ, col.Type)
	}
	if SQLType(col) == typ {
		return "$", ""
	}
	return "CAST($ AS " + SQLType(col) + ")", ""
}

// literal renders a constant in the engine's canonical form as SQL of the
// column's type.
func literal(v any, col destination.Column) (string, error) {
	t := SQLType(col)
	var s string
	switch x := v.(type) {
	case nil:
		return "CAST(NULL AS " + t + ")", nil
	case string:
		s = x
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return "CAST(" + strconv.FormatInt(x, 10) + " AS " + t + ")", nil
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		switch col.Type {
		case contract.NaiveDate:
			s = x.UTC().Format(time.DateOnly)
		case contract.NaiveDateTime:
			s = x.UTC().Format("2006-01-02 15:04:05.999999")
		default:
			s = x.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
		}
	case []byte:
		return "from_hex(" + sqlString(fmt.Sprintf("%x", x)) + ")", nil
	default:
		return "", fmt.Errorf("a %T constant", v)
	}
	return "CAST(" + sqlString(s) + " AS " + t + ")", nil
}

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
