// Package duckdb is the embedded DuckDB destination, the default for local
// runs: duckdb:files/warehouse.db (relative) or duckdb:///abs/warehouse.db.
//
// A commit merges each batch into its target with one INSERT OR REPLACE for
// full rows and one UPDATE ... FROM for partial rows, never a statement per
// row. Batches still in memory at the commit stream through DuckDB's query
// appender straight into those statements; batches the engine had to move
// out of memory before the commit wait in temporary staging tables, filled
// by the plain appender.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

func init() {
	destination.Register("duckdb", func(ctx context.Context, u *url.URL, opts destination.Options) (destination.Destination, error) {
		path := u.Opaque
		if path == "" {
			path = u.Path
		}
		return Open(ctx, path, opts.Schema, Settings{MemoryLimit: u.Query().Get("memory_limit"), Threads: u.Query().Get("threads")})
	})
}

// Settings bound DuckDB's resources. Empty fields take the defaults, chosen
// so that a sync's memory stays flat whatever the data size.
type Settings struct {
	MemoryLimit string // default "192MB"
	Threads     string // default: DuckDB's (the number of cores)
}

// DB is one connector schema in a DuckDB file.
type DB struct {
	path   string
	schema string
	db     *sql.DB
	conn   *sql.Conn // staging tables are temporary, so one connection owns them
	tables map[string]*destination.Table
	seq    int

	memoryLimit string
}

// defaultMemoryLimit bounds DuckDB's buffer pool, so that a sync's memory
// stays flat whatever the data size (see BENCHMARKS.md for what it measures
// and where it does not hold).
const defaultMemoryLimit = "192MB"

// LockedError says the warehouse file is held by another process.
type LockedError struct {
	Path   string
	Detail string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("the warehouse %s is open in another program (%s): close that program (a DuckDB CLI, DBeaver, another sluice run) and try again", e.Path, e.Detail)
}

// OpenDB opens a DuckDB file (created if missing) with bounded memory, and
// turns a lock conflict into a LockedError.
func OpenDB(ctx context.Context, path string, s Settings) (*sql.DB, error) {
	if s.MemoryLimit == "" {
		s.MemoryLimit = defaultMemoryLimit
	}
	if path != "" && path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create the warehouse folder: %w", err)
		}
	}
	q := url.Values{}
	q.Set("memory_limit", s.MemoryLimit)
	if s.Threads != "" {
		q.Set("threads", s.Threads)
	}
	// Insertion order of merged rows carries no meaning; dropping it lets
	// DuckDB stream large INSERT ... SELECT without buffering.
	q.Set("preserve_insertion_order", "false")
	c, err := duckdb.NewConnector(path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, classify(path, err)
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(path, err)
	}
	return db, nil
}

func classify(path string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock") {
		detail := msg
		if i := strings.Index(msg, "Conflicting lock is held in "); i >= 0 {
			detail = "held by " + strings.TrimPrefix(msg[i:], "Conflicting lock is held in ")
		}
		detail, _, _ = strings.Cut(detail, ". See also")
		return &LockedError{Path: path, Detail: strings.TrimSpace(detail)}
	}
	return fmt.Errorf("open the warehouse %s: %w", path, err)
}

// Open opens the connector schema in the DuckDB file at path.
func Open(ctx context.Context, path, schema string, s Settings) (*DB, error) {
	db, err := OpenDB(ctx, path, s)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the warehouse %s: %w", path, err)
	}
	d := &DB{path: path, schema: schema, db: db, conn: conn, memoryLimit: s.MemoryLimit}
	if d.memoryLimit == "" {
		d.memoryLimit = defaultMemoryLimit
	}
	s1 := quote(schema)
	for _, q := range []string{
		// Casts between TIMESTAMPTZ and text, as when a UTC_DATETIME
		// column widens to STRING, must not depend on the machine's zone.
		`SET TimeZone = 'UTC'`,
		`CREATE SCHEMA IF NOT EXISTS ` + s1,
		`CREATE TABLE IF NOT EXISTS ` + s1 + `.` + quote(destination.StateTable) + ` (id INTEGER PRIMARY KEY, state JSON NOT NULL, prev_hash VARCHAR, committed_at TIMESTAMPTZ NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + s1 + `.` + quote(destination.LogTable) + ` ("time" TIMESTAMPTZ NOT NULL, level VARCHAR NOT NULL, message VARCHAR NOT NULL)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			d.Close()
			return nil, fmt.Errorf("prepare schema %q in %s: %w", schema, path, err)
		}
	}
	return d, nil
}

// Close implements destination.Destination.
func (d *DB) Close() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	errs = append(errs, d.db.Close())
	return errors.Join(errs...)
}

// SQLType is the DuckDB type of a sluice column.
func SQLType(c destination.Column) string {
	switch c.Type {
	case contract.Boolean:
		return "BOOLEAN"
	case contract.Short:
		return "SMALLINT"
	case contract.Int:
		return "INTEGER"
	case contract.Long:
		return "BIGINT"
	case contract.Decimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", c.Precision, c.Scale)
	case contract.Float:
		return "FLOAT"
	case contract.Double:
		return "DOUBLE"
	case contract.NaiveDate:
		return "DATE"
	case contract.NaiveDateTime:
		return "TIMESTAMP"
	case contract.UTCDateTime:
		return "TIMESTAMPTZ"
	case contract.Binary:
		return "BLOB"
	case contract.JSON:
		return "JSON"
	}
	return "VARCHAR" // STRING, XML
}

// stagedType is the type a column has in a staging table: the appender takes
// DECIMAL and JSON as text, and the merge casts them.
func stagedType(c destination.Column) string {
	switch c.Type {
	case contract.Decimal, contract.JSON:
		return "VARCHAR"
	}
	return SQLType(c)
}

// castStaged converts a staged column to its target column's type. A column
// staged as text (DECIMAL, JSON) is read as its own type first, so that a
// column widened since it was staged gets the value as the warehouse would
// convert a committed one: a DECIMAL(38,2) "2.5" widened to VARCHAR reads
// "2.50", as ALTER TABLE makes it.
func castStaged(expr string, staged, target destination.Column) string {
	if stagedType(staged) != SQLType(staged) {
		expr = "CAST(" + expr + " AS " + SQLType(staged) + ")"
	}
	return "CAST(" + expr + " AS " + SQLType(target) + ")"
}

func parseSQLType(t string, precision, scale sql.NullInt64) (destination.Column, bool) {
	t = strings.ToUpper(t)
	switch {
	case t == "BOOLEAN":
		return destination.Column{Type: contract.Boolean}, true
	case t == "SMALLINT":
		return destination.Column{Type: contract.Short}, true
	case t == "INTEGER":
		return destination.Column{Type: contract.Int}, true
	case t == "BIGINT":
		return destination.Column{Type: contract.Long}, true
	case strings.HasPrefix(t, "DECIMAL"):
		return destination.Column{Type: contract.Decimal, Precision: int(precision.Int64), Scale: int(scale.Int64)}, true
	case t == "FLOAT" || t == "REAL":
		return destination.Column{Type: contract.Float}, true
	case t == "DOUBLE":
		return destination.Column{Type: contract.Double}, true
	case t == "DATE":
		return destination.Column{Type: contract.NaiveDate}, true
	case t == "TIMESTAMP":
		return destination.Column{Type: contract.NaiveDateTime}, true
	case t == "TIMESTAMP WITH TIME ZONE" || t == "TIMESTAMPTZ":
		return destination.Column{Type: contract.UTCDateTime}, true
	case t == "BLOB":
		return destination.Column{Type: contract.Binary}, true
	case t == "JSON":
		return destination.Column{Type: contract.JSON}, true
	case t == "VARCHAR":
		return destination.Column{Type: contract.String}, true
	}
	return destination.Column{}, false
}

func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (d *DB) qualified(table string) string {
	return quote(d.schema) + "." + quote(table)
}

// Describe implements destination.Destination.
func (d *DB) Describe(ctx context.Context) ([]destination.Table, error) {
	rows, err := d.conn.QueryContext(ctx, `SELECT table_name, column_name, data_type, numeric_precision, numeric_scale
		FROM information_schema.columns WHERE table_schema = ? ORDER BY table_name, ordinal_position`, d.schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byName := map[string]*destination.Table{}
	var order []string
	for rows.Next() {
		var tname, cname, dtype string
		var prec, scale sql.NullInt64
		if err := rows.Scan(&tname, &cname, &dtype, &prec, &scale); err != nil {
			return nil, err
		}
		if strings.HasPrefix(tname, "_sluice_") || cname == destination.ColumnSynced || cname == destination.ColumnDeleted {
			continue
		}
		t := byName[tname]
		if t == nil {
			t = &destination.Table{Name: tname}
			byName[tname] = t
			order = append(order, tname)
		}
		col, ok := parseSQLType(dtype, prec, scale)
		if !ok {
			return nil, fmt.Errorf("table %q column %q has type %s, which sluice does not write: drop the column or run `sluice reset`", tname, cname, dtype)
		}
		col.Name = cname
		t.Columns = append(t.Columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	pk, err := d.conn.QueryContext(ctx, `SELECT table_name, constraint_column_names FROM duckdb_constraints()
		WHERE schema_name = ? AND constraint_type = 'PRIMARY KEY'`, d.schema)
	if err != nil {
		return nil, err
	}
	defer pk.Close()
	for pk.Next() {
		var tname string
		var cols []any
		if err := pk.Scan(&tname, &cols); err != nil {
			return nil, err
		}
		if t := byName[tname]; t != nil {
			for _, c := range cols {
				t.PrimaryKey = append(t.PrimaryKey, fmt.Sprint(c))
			}
		}
	}
	if err := pk.Err(); err != nil {
		return nil, err
	}
	out := make([]destination.Table, 0, len(order))
	d.tables = map[string]*destination.Table{}
	for _, n := range order {
		t := byName[n]
		if len(t.PrimaryKey) == 0 {
			return nil, fmt.Errorf("table %q in schema %q has no primary key, so sluice did not create it: drop or rename it", n, d.schema)
		}
		out = append(out, *t)
		d.tables[n] = t
	}
	return out, nil
}

// ReadState implements destination.Destination.
func (d *DB) ReadState(ctx context.Context) (*destination.StateRecord, error) {
	var state string
	var prev sql.NullString
	err := d.conn.QueryRowContext(ctx, `SELECT state::VARCHAR, prev_hash FROM `+d.qualified(destination.StateTable)+` WHERE id = 1`).Scan(&state, &prev)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return &destination.StateRecord{State: []byte(state), PrevHash: prev.String}, nil
}

// staged is a batch in a temporary table.
type staged struct {
	name       string
	table      string
	columns    []destination.Column
	key        []int
	truncate   bool
	hasFull    bool
	hasPartial bool
}

func (s *staged) Table() string { return s.table }

// Stage implements destination.Destination.
func (d *DB) Stage(ctx context.Context, b *destination.Batch) (destination.Staged, error) {
	d.seq++
	s := &staged{
		name:     fmt.Sprintf("_sluice_stage_%d", d.seq),
		table:    b.Table,
		columns:  append([]destination.Column(nil), b.Columns...),
		key:      append([]int(nil), b.Key...),
		truncate: b.Truncate,
	}
	if b.Rows == 0 {
		return s, nil
	}
	var ddl strings.Builder
	ddl.WriteString("CREATE TEMP TABLE " + quote(s.name) + " (")
	for i, c := range s.columns {
		if i > 0 {
			ddl.WriteString(", ")
		}
		ddl.WriteString(quote(c.Name) + " " + stagedType(c))
	}
	ddl.WriteString(`, "_sluice_row_set" VARCHAR, "_sluice_row_del" TINYINT)`)
	if _, err := d.conn.ExecContext(ctx, ddl.String()); err != nil {
		return nil, fmt.Errorf("create staging table: %w", err)
	}
	err := d.conn.Raw(func(dc any) error {
		ap, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", s.name)
		if err != nil {
			return err
		}
		s.hasFull, s.hasPartial, err = appendRows(ap, b, allRows)
		if err != nil {
			ap.Close()
			return err
		}
		return ap.CloseWithCancel(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("append to staging: %w", err)
	}
	return s, nil
}

// Which rows of a batch appendRows takes.
const (
	allRows = iota
	fullRows
	partialRows
)

// appendRows appends a batch's rows in the staging layout: the batch's
// columns, then _sluice_row_set (NULL for a full row, else one '0' or '1' per
// column) and _sluice_row_del. It reports which kinds of row it saw.
func appendRows(ap *duckdb.Appender, b *destination.Batch, which int) (hasFull, hasPartial bool, err error) {
	ncol := len(b.Columns)
	args := make([]driver.Value, ncol+2)
	setBuf := make([]byte, ncol)
	for r := 0; r < b.Rows; r++ {
		full := b.Set[r] == nil
		if full && which == partialRows || !full && which == fullRows {
			continue
		}
		for c := 0; c < ncol; c++ {
			args[c] = b.Values[c][r]
		}
		if full {
			args[ncol] = nil
			hasFull = true
		} else {
			for c := 0; c < ncol; c++ {
				setBuf[c] = '0'
				if b.IsSet(r, c) {
					setBuf[c] = '1'
				}
			}
			args[ncol] = string(setBuf)
			hasPartial = true
		}
		args[ncol+1] = b.Deleted[r]
		if err := ap.AppendRow(args...); err != nil {
			return hasFull, hasPartial, fmt.Errorf("table %q row %d: %w", b.Table, r+1, err)
		}
	}
	return hasFull, hasPartial, nil
}

// Discard implements destination.Destination.
func (d *DB) Discard(ctx context.Context, list []destination.Staged) error {
	var errs []error
	for _, st := range list {
		s := st.(*staged)
		if _, err := d.conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp.main."+quote(s.name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Commit implements destination.Destination.
func (d *DB) Commit(ctx context.Context, c destination.Commit) (err error) {
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			d.tables = nil // the cache may hold changes that were rolled back
			err = d.explain(err, c)
		}
	}()
	if d.tables == nil {
		if _, err := d.Describe(ctx); err != nil {
			return err
		}
	}
	for _, ch := range c.Changes {
		if err := d.applyChange(ctx, tx, ch); err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
	}
	synced := timestampLiteral(c.Synced)
	for _, st := range c.Staged {
		s := st.(*staged)
		if err := d.mergeStaged(ctx, tx, s, synced); err != nil {
			return fmt.Errorf("merge into table %q: %w", s.table, err)
		}
	}
	for _, b := range c.Batches {
		if err := d.mergeBatch(ctx, tx, b, synced); err != nil {
			return fmt.Errorf("merge into table %q: %w", b.Table, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+d.qualified(destination.StateTable)+` VALUES (1, ?, ?, ?)`,
		string(c.State.State), c.State.PrevHash, c.Synced); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Staging tables are scratch: a failure to drop them loses nothing.
	_ = d.Discard(context.WithoutCancel(ctx), c.Staged)
	return nil
}

// explain adds what to do to the DuckDB errors a user can act on. DuckDB
// keeps a table's primary-key index in memory until the transaction that
// fills it commits, so one commit of many rows can exceed memory_limit.
func (d *DB) explain(err error, c destination.Commit) error {
	if !strings.Contains(err.Error(), "Out of Memory Error") {
		return err
	}
	return fmt.Errorf("%w\nDuckDB ran out of its memory_limit (%s) in a commit of %d staged and %d in-memory batches: "+
		"checkpoint more often (every few hundred thousand rows), or raise the limit with --destination 'duckdb:%s?memory_limit=2GB'",
		err, d.memoryLimit, len(c.Staged), len(c.Batches), d.path)
}

func (d *DB) applyChange(ctx context.Context, tx *sql.Tx, ch destination.SchemaChange) error {
	var q string
	name := ch.Table.Name
	switch ch.Kind {
	case destination.CreateTable:
		var b strings.Builder
		b.WriteString("CREATE TABLE " + d.qualified(name) + " (")
		for _, col := range ch.Table.Columns {
			b.WriteString(quote(col.Name) + " " + SQLType(col) + ", ")
		}
		b.WriteString(quote(destination.ColumnSynced) + " TIMESTAMPTZ NOT NULL, " + quote(destination.ColumnDeleted) + " BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (")
		for i, k := range ch.Table.PrimaryKey {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(k))
		}
		b.WriteString("))")
		q = b.String()
		t := ch.Table
		t.Columns = append([]destination.Column(nil), t.Columns...)
		defer func() { d.tables[name] = &t }()
	case destination.AddColumn:
		q = "ALTER TABLE " + d.qualified(name) + " ADD COLUMN " + quote(ch.Column.Name) + " " + SQLType(ch.Column)
		defer func() {
			if t := d.tables[name]; t != nil {
				t.Columns = append(t.Columns, ch.Column)
			}
		}()
	case destination.WidenColumn:
		q = "ALTER TABLE " + d.qualified(name) + " ALTER COLUMN " + quote(ch.Column.Name) + " SET DATA TYPE " + SQLType(ch.Column)
		defer func() {
			if t := d.tables[name]; t != nil {
				for i := range t.Columns {
					if t.Columns[i].Name == ch.Column.Name {
						t.Columns[i] = ch.Column
					}
				}
			}
		}()
	default:
		return fmt.Errorf("unknown schema change %d", ch.Kind)
	}
	_, err := tx.ExecContext(ctx, q)
	return err
}

// timestampLiteral renders the commit's _sluice_synced as SQL, so that the
// merge statements need no parameters (query appenders take none).
func timestampLiteral(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'::TIMESTAMPTZ"
}

// mergeStaged applies one staged batch: the truncate first, then full rows,
// then partial rows. The engine folded each key to one row, so full and
// partial rows never share a key and their order does not matter.
func (d *DB) mergeStaged(ctx context.Context, tx *sql.Tx, s *staged, synced string) error {
	t, err := d.target(s.table)
	if err != nil {
		return err
	}
	if s.truncate {
		if err := d.truncate(ctx, tx, s.table, synced); err != nil {
			return err
		}
	}
	src := "temp.main." + quote(s.name)
	if s.hasFull {
		if _, err := tx.ExecContext(ctx, d.upsertSQL(t, s.columns, src, synced)+` WHERE s."_sluice_row_set" IS NULL`); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	if s.hasPartial {
		if _, err := tx.ExecContext(ctx, d.updateSQL(t, s.columns, s.key, src, synced)+` AND s."_sluice_row_set" IS NOT NULL`); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	return nil
}

// mergeBatch applies a batch still in memory, streaming its rows through
// query appenders: DuckDB runs the merge statement over the appended rows
// without a staging table, inside the commit's transaction.
func (d *DB) mergeBatch(ctx context.Context, tx *sql.Tx, b *destination.Batch, synced string) error {
	t, err := d.target(b.Table)
	if err != nil {
		return err
	}
	if b.Truncate {
		if err := d.truncate(ctx, tx, b.Table, synced); err != nil {
			return err
		}
	}
	if b.Rows == 0 {
		return nil
	}
	var full, partial bool
	for _, set := range b.Set[:b.Rows] {
		if set == nil {
			full = true
		} else {
			partial = true
		}
	}
	types, names, err := stagingTypes(b.Columns)
	if err != nil {
		return err
	}
	run := func(query string, which int) error {
		return d.conn.Raw(func(dc any) error {
			ap, err := duckdb.NewQueryAppender(dc.(driver.Conn), query, "s", types, names)
			if err != nil {
				return err
			}
			if _, _, err := appendRows(ap, b, which); err != nil {
				ap.Close()
				return err
			}
			return ap.CloseWithCancel(ctx)
		})
	}
	if full {
		if err := run(d.upsertSQL(t, b.Columns, "", synced), fullRows); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	if partial {
		if err := run(d.updateSQL(t, b.Columns, b.Key, "", synced), partialRows); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	return nil
}

func (d *DB) target(table string) (*destination.Table, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("table %q is not in the warehouse", table)
	}
	return t, nil
}

func (d *DB) truncate(ctx context.Context, tx *sql.Tx, table, synced string) error {
	_, err := tx.ExecContext(ctx, `UPDATE `+d.qualified(table)+` SET `+quote(destination.ColumnDeleted)+` = true, `+
		quote(destination.ColumnSynced)+` = `+synced+` WHERE NOT `+quote(destination.ColumnDeleted))
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// upsertSQL writes full rows from the staging layout in src (a table, or
// the query appender's rows when src is empty) into t. Every target column
// is listed, so that columns the row does not give become NULL rather than
// keep their old value.
func (d *DB) upsertSQL(t *destination.Table, columns []destination.Column, src, synced string) string {
	idx := columnIndex(columns)
	cols := make([]string, 0, len(t.Columns)+2)
	sel := make([]string, 0, len(t.Columns)+2)
	for _, col := range t.Columns {
		cols = append(cols, quote(col.Name))
		if i, ok := idx[col.Name]; ok {
			sel = append(sel, castStaged("s."+quote(col.Name), columns[i], col))
		} else {
			sel = append(sel, "NULL")
		}
	}
	cols = append(cols, quote(destination.ColumnSynced), quote(destination.ColumnDeleted))
	sel = append(sel, synced, `s."_sluice_row_del" = 1`)
	from := " FROM s"
	if src != "" {
		from = " FROM " + src + " s"
	}
	return `INSERT OR REPLACE INTO ` + d.qualified(t.Name) + ` (` + strings.Join(cols, ", ") + `) SELECT ` + strings.Join(sel, ", ") + from
}

// updateSQL applies partial rows: each changes the columns its
// _sluice_row_set marks, and the deleted flag unless _sluice_row_del is -1.
func (d *DB) updateSQL(t *destination.Table, columns []destination.Column, key []int, src, synced string) string {
	idx := columnIndex(columns)
	keyCol := map[string]bool{}
	var set, on []string
	for _, k := range key {
		n := quote(columns[k].Name)
		keyCol[columns[k].Name] = true
		on = append(on, "t."+n+" = s."+n)
	}
	for _, col := range t.Columns {
		i, ok := idx[col.Name]
		if !ok || keyCol[col.Name] {
			continue
		}
		n := quote(col.Name)
		set = append(set, fmt.Sprintf(`%s = CASE WHEN substr(s."_sluice_row_set", %d, 1) = '1' THEN %s ELSE t.%s END`, n, i+1, castStaged("s."+n, columns[i], col), n))
	}
	set = append(set, quote(destination.ColumnSynced)+" = "+synced,
		quote(destination.ColumnDeleted)+` = CASE s."_sluice_row_del" WHEN 1 THEN true WHEN 0 THEN false ELSE t.`+quote(destination.ColumnDeleted)+` END`)
	from := " FROM s"
	if src != "" {
		from = " FROM " + src + " s"
	}
	return `UPDATE ` + d.qualified(t.Name) + ` AS t SET ` + strings.Join(set, ", ") + from + ` WHERE ` + strings.Join(on, " AND ")
}

func columnIndex(columns []destination.Column) map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.Name] = i
	}
	return m
}

// stagingTypes gives the query appender the staging layout's types and names.
func stagingTypes(columns []destination.Column) ([]duckdb.TypeInfo, []string, error) {
	types := make([]duckdb.TypeInfo, 0, len(columns)+2)
	names := make([]string, 0, len(columns)+2)
	add := func(name string, t duckdb.Type) error {
		ti, err := duckdb.NewTypeInfo(t)
		if err != nil {
			return err
		}
		types = append(types, ti)
		names = append(names, name)
		return nil
	}
	for _, c := range columns {
		if err := add(c.Name, appenderType(stagedType(c))); err != nil {
			return nil, nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	if err := add("_sluice_row_set", duckdb.TYPE_VARCHAR); err != nil {
		return nil, nil, err
	}
	if err := add("_sluice_row_del", duckdb.TYPE_TINYINT); err != nil {
		return nil, nil, err
	}
	return types, names, nil
}

func appenderType(sqlType string) duckdb.Type {
	switch sqlType {
	case "BOOLEAN":
		return duckdb.TYPE_BOOLEAN
	case "SMALLINT":
		return duckdb.TYPE_SMALLINT
	case "INTEGER":
		return duckdb.TYPE_INTEGER
	case "BIGINT":
		return duckdb.TYPE_BIGINT
	case "FLOAT":
		return duckdb.TYPE_FLOAT
	case "DOUBLE":
		return duckdb.TYPE_DOUBLE
	case "DATE":
		return duckdb.TYPE_DATE
	case "TIMESTAMP":
		return duckdb.TYPE_TIMESTAMP
	case "TIMESTAMPTZ":
		return duckdb.TYPE_TIMESTAMP_TZ
	case "BLOB":
		return duckdb.TYPE_BLOB
	}
	return duckdb.TYPE_VARCHAR
}

// Log implements destination.Destination. It runs on its own connection, so
// log lines commit even when the sync's transaction does not.
func (d *DB) Log(ctx context.Context, recs []destination.LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(recs))
	b.WriteString("INSERT INTO " + d.qualified(destination.LogTable) + " VALUES ")
	for i, r := range recs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, r.Time, r.Level, r.Message)
	}
	_, err := d.db.ExecContext(ctx, b.String(), args...)
	return err
}

var _ destination.Destination = (*DB)(nil)
