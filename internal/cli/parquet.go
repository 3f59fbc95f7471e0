package cli

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/internal/contract"
)

// Parquet goes through an in-memory DuckDB, which the command line links
// anyway for the warehouse.

// openScratch opens an in-memory DuckDB whose spill files go to a private
// temporary folder (DuckDB's default is .tmp in the working directory). The
// returned function closes the database and removes the folder.
func openScratch(ctx context.Context) (*sql.DB, func(), error) {
	spill, err := os.MkdirTemp("", "sluice-duckdb-*")
	if err != nil {
		return nil, nil, err
	}
	db, err := duckdb.OpenDB(ctx, "", duckdb.Settings{})
	if err != nil {
		os.RemoveAll(spill)
		return nil, nil, err
	}
	// One connection: the settings below are per connection for TimeZone.
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		// Casting text to TIMESTAMPTZ must not depend on the machine's zone.
		`SET TimeZone = 'UTC'`,
		`SET temp_directory = ` + sqlString(spill),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			os.RemoveAll(spill)
			return nil, nil, err
		}
	}
	return db, func() { db.Close(); os.RemoveAll(spill) }, nil
}

// exportParquet reads rows into a Parquet file at path, or to stdout when
// path is empty. The rows are appended as text to a staging table, since
// the columns and their types are final only once every row is read (a
// column may first appear in the last row, and an inferred type widens);
// COPY then casts each column to the type the read schema gives it. The
// file is written next to path under a temporary name and renamed at the
// end, so that a failure leaves no half file.
func exportParquet(ctx context.Context, h *contract.DatasetHandle, opts contract.ReadOptions, path string, stdout io.Writer) (contract.ReadResult, error) {
	var res contract.ReadResult
	if path == "" && isTerminal(stdout) {
		return res, errors.New("Parquet is binary: write it to a file with -o FILE.parquet, or pipe the output")
	}
	name := path
	dir, base := filepath.Dir(path), filepath.Base(path)
	if path == "" {
		name, dir, base = "the standard output", "", "sluice-read.parquet"
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return res, fmt.Errorf("Parquet file %s: %w", name, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	db, done, err := openScratch(ctx)
	if err != nil {
		return res, fmt.Errorf("Parquet file %s: %w", name, err)
	}
	defer done()
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("Parquet file %s: %w", name, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		st := &stage{ctx: ctx, dc: dc.(driver.Conn), index: map[string]int{}}
		defer st.close()
		var rerr error
		if res, rerr = h.Read(ctx, opts, st.add); rerr != nil {
			return rerr
		}
		names := make([]string, len(res.Schema))
		sel := make([]string, len(res.Schema))
		for i, c := range res.Schema {
			names[i] = c.Name
			sel[i] = "CAST(" + quoteIdent(c.Name) + " AS " + parquetType(c) + ") AS " + quoteIdent(c.Name)
		}
		if err := st.ensure(names); err != nil {
			return fmt.Errorf("Parquet file %s: %w", name, err)
		}
		if err := st.close(); err != nil {
			return fmt.Errorf("Parquet file %s: %w", name, err)
		}
		if len(sel) == 0 {
			return fmt.Errorf("Parquet file %s: the rows have no columns, and a Parquet file needs at least one", name)
		}
		q := "COPY (SELECT " + strings.Join(sel, ", ") + " FROM " + stageTable + " ORDER BY " + stageRowID + ") TO " + sqlString(tmp.Name()) + " (FORMAT parquet, USE_TMP_FILE false)"
		if err := st.exec(q); err != nil {
			return fmt.Errorf("write Parquet file %s: %w", name, duckErr{err})
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if path != "" {
		// CreateTemp makes the file private; an export is not.
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			return res, fmt.Errorf("Parquet file %s: %w", name, err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return res, fmt.Errorf("Parquet file %s: %w", name, err)
		}
		return res, nil
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return res, fmt.Errorf("Parquet file %s: %w", name, err)
	}
	defer f.Close()
	if _, err := io.Copy(stdout, f); err != nil {
		return res, fmt.Errorf("Parquet file %s: %w", name, err)
	}
	return res, nil
}

const (
	stageTable = "rows"
	// stageRowID keeps the rows in the order they were read.
	stageRowID = "_sluice_row"
)

// stage appends rows as text to the staging table, adding a column when a
// row brings a new one.
type stage struct {
	ctx   context.Context
	dc    driver.Conn
	ap    *duckdbdriver.Appender
	names []string // staged columns, after the row number
	index map[string]int
	args  []driver.Value
	rows  int64
	fresh []string
}

func (s *stage) exec(q string) error {
	_, err := s.dc.(driver.ExecerContext).ExecContext(s.ctx, q, nil)
	return err
}

func (s *stage) close() error {
	if s.ap == nil {
		return nil
	}
	err := s.ap.Close()
	s.ap = nil
	return err
}

// ensure gives the staging table every column of names, and opens the
// appender on its columns.
func (s *stage) ensure(names []string) error {
	s.fresh = s.fresh[:0]
	for _, n := range names {
		if _, ok := s.index[n]; !ok {
			s.fresh = append(s.fresh, n)
		}
	}
	if len(s.fresh) == 0 && s.ap != nil {
		return nil
	}
	if err := s.close(); err != nil {
		return err
	}
	if len(s.names) == 0 && len(s.index) == 0 {
		if err := s.exec("CREATE TABLE " + stageTable + " (" + stageRowID + " BIGINT)"); err != nil {
			return err
		}
		s.index[stageRowID] = -1
	}
	for _, n := range s.fresh {
		if err := s.exec("ALTER TABLE " + stageTable + " ADD COLUMN " + quoteIdent(n) + " VARCHAR"); err != nil {
			return err
		}
		s.index[n] = len(s.names)
		s.names = append(s.names, n)
	}
	ap, err := duckdbdriver.NewAppenderWithColumns(s.dc, "", "", stageTable, append([]string{stageRowID}, s.names...))
	if err != nil {
		return err
	}
	s.ap = ap
	s.args = make([]driver.Value, len(s.names)+1)
	return nil
}

func (s *stage) add(row contract.Row) error {
	for k := range row {
		if _, ok := s.index[k]; !ok {
			names := make([]string, 0, len(row))
			for k := range row {
				names = append(names, k)
			}
			// Sorted, so that the staged order does not depend on map order.
			slices.Sort(names)
			if err := s.ensure(names); err != nil {
				return err
			}
			break
		}
	}
	if s.ap == nil { // a row with no columns
		if err := s.ensure([]string{}); err != nil {
			return err
		}
	}
	s.rows++
	s.args[0] = s.rows
	for i := range s.names {
		s.args[i+1] = nil
	}
	for k, v := range row {
		if t, ok := parquetText(v); ok {
			s.args[s.index[k]+1] = t
		}
	}
	return s.ap.AppendRow(s.args...)
}

// parquetText renders a value as text that DuckDB casts back to the
// column's type; false for NULL.
func parquetText(v any) (string, bool) {
	switch x := v.(type) {
	case []byte:
		// DuckDB reads \xHH as a byte when it casts text to BLOB.
		var b strings.Builder
		for _, c := range x {
			fmt.Fprintf(&b, "\\x%02X", c)
		}
		return b.String(), true
	case float64:
		return floatText(x, 64), true
	case float32:
		return floatText(float64(x), 32), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	}
	return cellText(v)
}

func floatText(f float64, bits int) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	if bits == 32 {
		return fmt.Sprint(float32(f))
	}
	return fmt.Sprint(f)
}

// parquetType is the DuckDB type a column gets in a Parquet file.
func parquetType(c contract.Column) string {
	if c.Type == contract.Decimal && c.Precision == 0 {
		c.Precision = 38 // undeclared precision: the widest
	}
	return duckdb.SQLType(destination.Column{Name: c.Name, Type: c.Type, Precision: c.Precision, Scale: c.Scale})
}

// parquetRows opens a Parquet file and returns its column names and rows.
// The caller must call the returned close function.
func parquetRows(ctx context.Context, file string) ([]string, iter.Seq2[contract.Row, error], func(), error) {
	fail := func(err error) ([]string, iter.Seq2[contract.Row, error], func(), error) {
		return nil, nil, nil, fmt.Errorf("read Parquet file %s: %w", file, err)
	}
	if file == "-" {
		return fail(errors.New("DuckDB reads Parquet from a file, not from the standard input"))
	}
	if _, err := os.Stat(file); err != nil {
		return nil, nil, nil, err // names the file already
	}
	db, done, err := openScratch(ctx)
	if err != nil {
		return fail(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT * FROM read_parquet(?)`, file)
	if err != nil {
		done()
		return fail(duckErr{err})
	}
	closeAll := func() { rows.Close(); done() }
	cols, err := rows.Columns()
	if err != nil {
		closeAll()
		return fail(err)
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		closeAll()
		return fail(err)
	}
	seq := func(yield func(contract.Row, error) bool) {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for n := int64(1); rows.Next(); n++ {
			if err := rows.Scan(ptrs...); err != nil {
				yield(nil, fmt.Errorf("Parquet file %s, row %d: %w", file, n, err))
				return
			}
			row := make(contract.Row, len(cols))
			for i, c := range cols {
				row[c] = parquetValue(vals[i], types[i].DatabaseTypeName())
			}
			if !yield(row, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, fmt.Errorf("Parquet file %s: %w", file, err))
		}
	}
	return cols, seq, closeAll, nil
}

// parquetValue turns a value DuckDB scanned into one a writer takes: the
// Go types the runtime infers column types from.
func parquetValue(v any, dbType string) any {
	switch x := v.(type) {
	case duckdbdriver.Decimal:
		return contract.DecimalText(formatDecimal(x))
	case duckdbdriver.UUID:
		return (&x).String()
	case []byte:
		if dbType == "UUID" && len(x) == 16 {
			u := duckdbdriver.UUID(x)
			return u.String()
		}
		return x
	case duckdbdriver.Interval:
		return fmt.Sprintf("%d months %d days %d microseconds", x.Months, x.Days, x.Micros)
	case *big.Int:
		return contract.DecimalText(x.String())
	case time.Time:
		if dbType == "TIME" {
			return x.Format("15:04:05.999999")
		}
		return x
	}
	return v
}

// quoteIdent quotes a DuckDB identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqlString quotes a DuckDB string literal, for the statements (COPY, SET)
// that take no parameters.
func sqlString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// duckErr leaves out the statement DuckDB quotes after its message: the
// user did not write it.
type duckErr struct{ err error }

func (e duckErr) Error() string {
	msg, _, _ := strings.Cut(e.err.Error(), "\n\nLINE ")
	return strings.TrimSpace(msg)
}

func (e duckErr) Unwrap() error { return e.err }
