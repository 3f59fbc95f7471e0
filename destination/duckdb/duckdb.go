// Package duckdb is the embedded DuckDB destination, the default for local
// runs: duckdb:files/warehouse.db (relative) or duckdb:///abs/warehouse.db.
//
// Each checkpoint is one DuckDB transaction, open while the engine writes
// its batches, and never a statement per row. Full rows go through one
// appender per table kept open across batches; a full row whose key may be
// in the table first has the old row deleted (DELETE ... USING over the
// query appender), and the engine's "maybe" rows are looked up together
// (deferMaybes). Partial rows are one UPDATE ... FROM per batch. Tables carry
// no PRIMARY KEY constraint (its index would have to fit in memory until the
// commit); the key is kept in _sluice_tables and statements join on it.
// A whole local CSV or Parquet file can instead be loaded by DuckDB's own
// reader in one INSERT ... SELECT (destination.FileLoader, loadfile.go).
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// Settings bound DuckDB's resources. Empty fields take DuckDB's defaults
// in OpenDB, and for a sync (Open) syncMemoryLimit and syncThreads, chosen
// so that a sync's memory stays flat whatever the data size.
type Settings struct {
	MemoryLimit string
	Threads     string
	// AllocatorBackgroundThreads is DuckDB's allocator_background_threads,
	// "true" or "false": empty takes DuckDB's default (false) in OpenDB and
	// syncAllocatorBackgroundThreads in Open.
	AllocatorBackgroundThreads string
	// InPlaceValues is how many values one transaction changes in place
	// (UPDATE) before it rewrites the rows that partial rows change instead
	// (see tx.rewrite): 0 means defaultInPlaceValues, -1 none.
	InPlaceValues int
}

// defaultInPlaceValues bounds what a transaction's UPDATEs hold in memory
// until the commit: about 56 bytes a value, so 7 MB. Below it, an UPDATE is
// about twice as fast as a rewrite; above it, the rewrite keeps a
// checkpoint of millions of updates within memory_limit (BENCHMARKS.md).
const defaultInPlaceValues = 131_072

// DB is one connector schema in a DuckDB file.
type DB struct {
	path   string
	schema string
	db     *sql.DB
	conn   *sql.Conn // the sync's transaction and its appenders share it
	tables map[string]*destination.Table

	memoryLimit   string
	threads       string
	inPlaceValues int
}

// tablesTable records each table's key columns, comma-separated: tables
// carry no PRIMARY KEY constraint (see tx.apply).
const tablesTable = "_sluice_tables"

// syncMemoryLimit bounds DuckDB's buffer pool during a sync, so that the
// sync's memory stays flat whatever the data size. The process needs about
// 150-200 MB beyond it (the program itself, the engine's batches, DuckDB's
// own memory outside the pool): measured peaks are 190-255 MB for 1M rows
// and 239-243 MB for 20M keyed rows at 48MB, against 286 MB at 96MB and
// with no loss of speed (BENCHMARKS.md). Other uses of the warehouse (sql,
// tables) take DuckDB's default.
const syncMemoryLimit = "48MB"

// syncThreads is DuckDB's thread count for a sync. Measured on two cores,
// one thread loads faster (409k against 311k rows/s, 1M keyed rows) and
// peaks lower (188 against 244 MB): the engine folds rows on the other.
const syncThreads = "1"

// syncAllocatorBackgroundThreads lets DuckDB's allocator (jemalloc) return
// freed memory to the system from a thread of its own. Without it, memory
// DuckDB has freed stays in the process until a later allocation on the
// same arena purges it, which a load on one DuckDB thread rarely makes
// happen: the raw appender's peak, 6M hash-keyed rows at 48MB, fell from
// 242-256 MB to 198-201 MB with it (BENCHMARKS.md, "Hash-keyed loads").
const syncAllocatorBackgroundThreads = "true"

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
	if path != "" && path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create the warehouse folder: %w", err)
		}
		if err := removeUnfinished(path); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	if s.MemoryLimit != "" {
		q.Set("memory_limit", s.MemoryLimit)
	}
	if s.Threads != "" {
		q.Set("threads", s.Threads)
	}
	if s.AllocatorBackgroundThreads != "" {
		q.Set("allocator_background_threads", s.AllocatorBackgroundThreads)
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
	if strings.Contains(msg, "not a valid DuckDB database file") || strings.Contains(msg, "Could not read enough bytes") {
		return fmt.Errorf("open the warehouse %s: %w: DuckDB did not write this file, or it is damaged; move it aside to keep it, or delete it (with its .wal) to start over (`sluice reset` does that for `sluice debug`)", path, err)
	}
	return fmt.Errorf("open the warehouse %s: %w", path, err)
}

// Open opens the connector schema in the DuckDB file at path.
func Open(ctx context.Context, path, schema string, s Settings) (*DB, error) {
	if s.Threads == "" {
		s.Threads = syncThreads
	}
	if s.MemoryLimit == "" {
		s.MemoryLimit = syncMemoryLimit
	}
	if s.AllocatorBackgroundThreads == "" {
		s.AllocatorBackgroundThreads = syncAllocatorBackgroundThreads
	}
	db, err := OpenDB(ctx, path, s)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the warehouse %s: %w", path, err)
	}
	if s.InPlaceValues == 0 {
		s.InPlaceValues = defaultInPlaceValues
	}
	d := &DB{path: path, schema: schema, db: db, conn: conn, memoryLimit: s.MemoryLimit, threads: s.Threads, inPlaceValues: max(s.InPlaceValues, 0)}
	s1 := quote(schema)
	for _, q := range []string{
		// Casts between TIMESTAMPTZ and text, as when a UTC_DATETIME
		// column widens to STRING, must not depend on the machine's zone.
		`SET TimeZone = 'UTC'`,
		`CREATE SCHEMA IF NOT EXISTS ` + s1,
		`CREATE TABLE IF NOT EXISTS ` + s1 + `.` + quote(destination.StateTable) + ` (id INTEGER PRIMARY KEY, state JSON NOT NULL, prev_hash VARCHAR, committed_at TIMESTAMPTZ NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + s1 + `.` + quote(tablesTable) + ` (table_name VARCHAR PRIMARY KEY, primary_key VARCHAR NOT NULL)`,
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
	keys, err := d.conn.QueryContext(ctx, `SELECT table_name, primary_key FROM `+d.qualified(tablesTable))
	if err != nil {
		return nil, fmt.Errorf("read table keys: %w", err)
	}
	defer keys.Close()
	for keys.Next() {
		var tname, key string
		if err := keys.Scan(&tname, &key); err != nil {
			return nil, err
		}
		if t := byName[tname]; t != nil {
			t.PrimaryKey = strings.Split(key, ",")
		}
	}
	if err := keys.Err(); err != nil {
		return nil, err
	}
	for _, n := range order {
		if len(byName[n].PrimaryKey) == 0 {
			continue
		}
		if err := d.conn.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM `+d.qualified(n)+`)`).Scan(&byName[n].Empty); err != nil {
			return nil, fmt.Errorf("table %q: %w", n, err)
		}
	}
	out := make([]destination.Table, 0, len(order))
	d.tables = map[string]*destination.Table{}
	for _, n := range order {
		t := byName[n]
		if len(t.PrimaryKey) == 0 {
			return nil, fmt.Errorf("table %q in schema %q was not created by sluice: drop or rename it", n, d.schema)
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

// Begin implements destination.Destination.
func (d *DB) Begin(ctx context.Context, synced time.Time) (destination.Tx, error) {
	if d.tables == nil {
		if _, err := d.Describe(ctx); err != nil {
			return nil, err
		}
	}
	t, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &tx{d: d, tx: t, synced: synced.UTC(), syncedSQL: timestampLiteral(synced), updated: map[string]bool{}, appenders: map[string]*openAppender{}, deferred: map[string]*deferred{}}, nil
}

// tx is one checkpoint's transaction. Batches are merged as they arrive
// (appended rows spill to the database file, so memory stays bounded), and
// only the commit makes them visible.
type tx struct {
	d         *DB
	tx        *sql.Tx
	synced    time.Time
	syncedSQL string
	// updated marks tables this transaction has run an UPDATE or MERGE on.
	// DuckDB refuses, at commit, an ALTER TABLE that follows an update of
	// the same table in one transaction (inserts are fine), so a schema
	// change to such a table rebuilds it instead.
	updated   map[string]bool
	appenders map[string]*openAppender // by table; see appendFresh
	deferred  map[string]*deferred     // by table; see deferMaybes
	inPlace   int                      // values changed by UPDATE so far
	failed    bool
}

// Apply implements destination.Tx.
func (t *tx) Apply(ctx context.Context, changes []destination.SchemaChange) (err error) {
	defer t.fail(&err)
	for _, ch := range changes {
		if tbl := t.d.tables[ch.Table.Name]; tbl != nil {
			if err := t.flushDeferred(ctx, tbl); err != nil {
				return err
			}
		}
		if err := t.settle(ch.Table.Name); err != nil {
			return err
		}
	}
	for i := 0; i < len(changes); {
		ch := changes[i]
		if ch.Kind != destination.CreateTable && t.updated[ch.Table.Name] {
			j := i + 1
			for j < len(changes) && changes[j].Kind != destination.CreateTable && changes[j].Table.Name == ch.Table.Name {
				j++
			}
			if err := t.rebuild(ctx, ch.Table.Name, changes[i:j]); err != nil {
				return fmt.Errorf("table %q: %w", ch.Table.Name, err)
			}
			i = j
			continue
		}
		if err := t.apply(ctx, ch); err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
		i++
	}
	return nil
}

// fail marks the transaction as failed (only a rollback is left) and adds
// advice to the errors a user can act on.
func (t *tx) fail(errp *error) {
	if *errp == nil {
		return
	}
	t.failed = true
	*errp = t.d.explain(*errp)
}

func (t *tx) apply(ctx context.Context, ch destination.SchemaChange) error {
	d := t.d
	name := ch.Table.Name
	switch ch.Kind {
	case destination.CreateTable:
		if _, err := t.tx.ExecContext(ctx, createSQL(d.qualified(name), ch.Table.Columns)); err != nil {
			return err
		}
		// DuckDB's PRIMARY KEY index lives in memory until the transaction
		// that fills it commits, which bounds a load by memory_limit; the
		// key is therefore sluice's own metadata, and merges join on it.
		if _, err := t.tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+d.qualified(tablesTable)+` VALUES (?, ?)`, name, strings.Join(ch.Table.PrimaryKey, ",")); err != nil {
			return err
		}
		tbl := ch.Table
		tbl.Columns = append([]destination.Column(nil), tbl.Columns...)
		tbl.PrimaryKey = append([]string(nil), tbl.PrimaryKey...)
		d.tables[name] = &tbl
		return nil
	case destination.AddColumn:
		if _, err := t.tx.ExecContext(ctx, "ALTER TABLE "+d.qualified(name)+" ADD COLUMN "+quote(ch.Column.Name)+" "+SQLType(ch.Column)); err != nil {
			return err
		}
	case destination.WidenColumn:
		if _, err := t.tx.ExecContext(ctx, "ALTER TABLE "+d.qualified(name)+" ALTER COLUMN "+quote(ch.Column.Name)+" SET DATA TYPE "+SQLType(ch.Column)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown schema change %d", ch.Kind)
	}
	if tbl := d.tables[name]; tbl != nil {
		tbl.Columns = changed(tbl.Columns, ch)
	}
	return nil
}

// changed returns columns with one AddColumn or WidenColumn applied.
func changed(columns []destination.Column, ch destination.SchemaChange) []destination.Column {
	out := append([]destination.Column(nil), columns...)
	for i := range out {
		if out[i].Name == ch.Column.Name {
			out[i] = ch.Column
			return out
		}
	}
	return append(out, ch.Column)
}

func createSQL(qualified string, columns []destination.Column) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + qualified + " (")
	for _, col := range columns {
		b.WriteString(quote(col.Name) + " " + SQLType(col) + ", ")
	}
	b.WriteString(quote(destination.ColumnSynced) + " " + systemDefs[destination.ColumnSynced] + ", " +
		quote(destination.ColumnDeleted) + " " + systemDefs[destination.ColumnDeleted] + ")")
	return b.String()
}

// systemDefs are the system columns' definitions, by name.
var systemDefs = map[string]string{
	destination.ColumnSynced:  "TIMESTAMPTZ NOT NULL",
	destination.ColumnDeleted: "BOOLEAN NOT NULL DEFAULT false",
}

// rebuild applies schema changes to a table this transaction has updated,
// by copying it into a new table of the new shape: the one form of schema
// change DuckDB accepts there. It costs a pass over the table, once per
// checkpoint at most for each table whose schema changes after an update.
func (t *tx) rebuild(ctx context.Context, name string, changes []destination.SchemaChange) error {
	d := t.d
	old, err := d.target(name)
	if err != nil {
		return err
	}
	cols := old.Columns
	for _, ch := range changes {
		cols = changed(cols, ch)
	}
	// The new table keeps the old one's column order, system columns
	// included, and takes added columns last: the order ALTER TABLE ADD
	// COLUMN gives, so that a table's columns do not depend on whether a
	// change came after an update.
	order, err := t.columnOrder(ctx, name)
	if err != nil {
		return err
	}
	for _, c := range cols {
		if !slices.Contains(order, c.Name) {
			order = append(order, c.Name)
		}
	}
	was, now := columnIndex(old.Columns), columnIndex(cols)
	defs := make([]string, 0, len(order))
	sel := make([]string, 0, len(order))
	for _, n := range order {
		if def, ok := systemDefs[n]; ok {
			defs = append(defs, quote(n)+" "+def)
			sel = append(sel, quote(n))
			continue
		}
		j, ok := now[n]
		if !ok {
			return fmt.Errorf("rebuild: column %q of the table is unknown to sluice", n)
		}
		c := cols[j]
		defs = append(defs, quote(n)+" "+SQLType(c))
		i, ok := was[n]
		switch {
		case !ok:
			sel = append(sel, "NULL")
		case sameSQL(old.Columns[i], c):
			sel = append(sel, quote(n))
		default:
			sel = append(sel, "CAST("+quote(n)+" AS "+SQLType(c)+")")
		}
	}
	tmp := "_sluice_rebuild_" + name
	for _, q := range []string{
		"CREATE TABLE " + d.qualified(tmp) + " (" + strings.Join(defs, ", ") + ")",
		"INSERT INTO " + d.qualified(tmp) + " SELECT " + strings.Join(sel, ", ") + " FROM " + d.qualified(name),
		"DROP TABLE " + d.qualified(name),
		"ALTER TABLE " + d.qualified(tmp) + " RENAME TO " + quote(name),
	} {
		if _, err := t.tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("rebuild for %d schema changes: %w", len(changes), err)
		}
	}
	old.Columns = cols
	// The new table has had inserts only, so plain ALTERs work again.
	t.updated[name] = false
	return nil
}

// columnOrder returns the names of a table's columns, system columns
// included, in the table's order.
func (t *tx) columnOrder(ctx context.Context, name string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`, t.d.schema, name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of table %q: %w", name, err)
	}
	defer rows.Close()
	var order []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read the columns of table %q: %w", name, err)
		}
		order = append(order, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns of table %q: %w", name, err)
	}
	return order, nil
}

// timestampLiteral renders _sluice_synced as SQL, so that the merge
// statements need no parameters (query appenders take none).
func timestampLiteral(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'::TIMESTAMPTZ"
}

func sameSQL(a, b destination.Column) bool { return SQLType(a) == SQLType(b) }

// Which rows of a batch a statement takes.
type rowKind uint8

const (
	freshRows   rowKind = iota // full rows whose key cannot be in the table
	staleRows                  // full rows whose key may be in the table
	partialRows                // rows that change some columns of an existing row
)

func (k rowKind) takes(b *destination.Batch, r int) bool {
	switch k {
	case freshRows:
		return b.Set[r] == nil && r < len(b.Fresh) && b.Fresh[r]
	case staleRows:
		return b.Set[r] == nil && (r >= len(b.Fresh) || !b.Fresh[r])
	case partialRows:
		return b.Set[r] != nil
	}
	return false
}

// Write implements destination.Tx: deferred rows first where the batch
// needs them applied, then the batch's own "maybe" rows set aside, then the
// rest written (write).
func (t *tx) Write(ctx context.Context, b *destination.Batch) (err error) {
	defer t.fail(&err)
	tbl, err := t.d.target(b.Table)
	if err != nil {
		return err
	}
	// Deferred rows come before anything that may read or change them.
	if b.Truncate || slices.ContainsFunc(b.Set[:b.Rows], func(s []uint64) bool { return s != nil }) {
		if err := t.flushDeferred(ctx, tbl); err != nil {
			return err
		}
	}
	if err := t.deferMaybes(ctx, tbl, b); err != nil {
		return err
	}
	return t.write(ctx, tbl, b)
}

// write applies a batch: each kind of row in one statement.
func (t *tx) write(ctx context.Context, tbl *destination.Table, b *destination.Batch) (err error) {
	d := t.d
	var n [3]int
	for r := 0; r < b.Rows; r++ {
		for _, k := range []rowKind{freshRows, staleRows, partialRows} {
			if k.takes(b, r) {
				n[k]++
			}
		}
	}
	// Full rows whose key may be in the table replace it: the old row is
	// deleted and the new one appended with the fresh ones. An UPDATE of
	// every column would keep each changed value in DuckDB's memory until
	// the commit; a delete keeps a row id.
	isDirect := direct(tbl, b)
	replace := isDirect && n[staleRows] > 0
	if b.Truncate || n[staleRows] > 0 && !replace {
		if err := t.settle(b.Table); err != nil {
			return err
		}
	}
	if b.Truncate {
		if _, err := t.tx.ExecContext(ctx, `UPDATE `+d.qualified(b.Table)+` SET `+quote(destination.ColumnDeleted)+` = true, `+
			quote(destination.ColumnSynced)+` = `+t.syncedSQL+` WHERE NOT `+quote(destination.ColumnDeleted)); err != nil {
			return fmt.Errorf("truncate table %q: %w", b.Table, err)
		}
		t.updated[b.Table] = true
	}
	if n[freshRows]+n[staleRows]+n[partialRows] == 0 {
		return nil
	}
	types, names, err := stagingTypes(b.Columns)
	if err != nil {
		return err
	}
	run := func(query string, which rowKind) error {
		return d.conn.Raw(func(dc any) error {
			ap, err := duckdb.NewQueryAppender(dc.(driver.Conn), query, "s", types, names)
			if err != nil {
				return err
			}
			if err := appendRows(ap, b, which); err != nil {
				ap.Close()
				return err
			}
			return ap.CloseWithCancel(ctx)
		})
	}
	if replace {
		// The delete must see rows this transaction appended with the
		// same keys.
		if open := t.appenders[b.Table]; open != nil && open.holdsAny(b, staleRows) {
			if err := open.flush(); err != nil {
				return fmt.Errorf("append to table %q: %w", b.Table, err)
			}
		}
		t.updated[b.Table] = true
		if err := run(d.deleteSQL(tbl, b.Columns, b.Key), staleRows); err != nil {
			return fmt.Errorf("replace rows of table %q: %w", b.Table, err)
		}
	}
	if n[freshRows] > 0 || replace {
		if isDirect {
			err = d.conn.Raw(func(dc any) error { return t.appendFresh(dc.(driver.Conn), tbl, b, replace) })
		} else if err = t.settle(b.Table); err == nil {
			err = run(d.insertSQL(tbl, b.Columns, t.syncedSQL), freshRows)
		}
		if err != nil {
			return fmt.Errorf("insert into table %q: %w", b.Table, err)
		}
	}
	if n[staleRows] > 0 && !replace {
		t.updated[b.Table] = true
		if err := run(d.mergeSQL(tbl, b.Columns, b.Key, t.syncedSQL), staleRows); err != nil {
			return fmt.Errorf("upsert into table %q: %w", b.Table, err)
		}
	}
	if n[partialRows] > 0 {
		t.updated[b.Table] = true
		values := 0
		for r := 0; r < b.Rows; r++ {
			if b.Set[r] == nil {
				continue
			}
			values += 2 // _sluice_synced and _sluice_deleted
			for _, w := range b.Set[r] {
				values += bits.OnesCount64(w)
			}
		}
		if t.inPlace+values <= t.d.inPlaceValues {
			t.inPlace += values
			if err := t.settle(b.Table); err != nil {
				return err
			}
			err = run(d.updateSQL(tbl, b.Columns, b.Key, t.syncedSQL), partialRows)
		} else {
			err = t.rewrite(ctx, tbl, b, run)
		}
		if err != nil {
			return fmt.Errorf("update table %q: %w", b.Table, err)
		}
	}
	return nil
}

// mergedTable holds, for a moment, the rows that partial rows rewrite.
const mergedTable = "_sluice_merged"

// rewrite applies a batch's partial rows (updates and deletes) by replacing
// the rows they change: the merged rows are built in a temporary table,
// read back, the old rows deleted and the merged ones appended through the
// table's open appender. An UPDATE would keep every value it changes in
// DuckDB's memory until the commit, so that a checkpoint of a few million
// updates would fail at the sync's memory_limit; a delete keeps a row id,
// and appended rows fill row groups that go to the database file.
func (t *tx) rewrite(ctx context.Context, tbl *destination.Table, b *destination.Batch, run func(string, rowKind) error) error {
	d := t.d
	if open := t.appenders[b.Table]; open != nil && open.holdsAny(b, partialRows) {
		if err := open.flush(); err != nil {
			return err
		}
	}
	merged := "temp.main." + quote(mergedTable)
	if _, err := t.tx.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE `+quote(mergedTable)+` AS SELECT * FROM `+d.qualified(tbl.Name)+` LIMIT 0`); err != nil {
		return err
	}
	// The table's columns in sluice's order, which an ALTER may not have
	// kept in the table itself. JSON comes back as text: the driver would
	// decode it into Go maps, which do not keep the text as it was.
	cols := make([]string, 0, len(tbl.Columns)+2)
	sel := make([]string, 0, len(tbl.Columns)+2)
	var jsonCols []int
	for i, c := range tbl.Columns {
		cols = append(cols, quote(c.Name))
		if c.Type == contract.JSON {
			jsonCols = append(jsonCols, i)
			sel = append(sel, quote(c.Name)+"::VARCHAR")
		} else {
			sel = append(sel, quote(c.Name))
		}
	}
	system := []string{quote(destination.ColumnSynced), quote(destination.ColumnDeleted)}
	cols, sel = append(cols, system...), append(sel, system...)
	if err := run(`INSERT INTO `+merged+` (`+strings.Join(cols, ", ")+`) `+d.mergedSQL(tbl, b.Columns, b.Key, t.syncedSQL), partialRows); err != nil {
		return err
	}
	res, err := t.tx.QueryContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+merged)
	if err != nil {
		return err
	}
	var rows [][]driver.Value
	for res.Next() {
		row := make([]driver.Value, len(sel))
		ptrs := make([]any, len(sel))
		for i := range row {
			ptrs[i] = (*any)(&row[i])
		}
		if err := res.Scan(ptrs...); err != nil {
			res.Close()
			return err
		}
		for _, i := range jsonCols {
			// The appender encodes what it is given as JSON, so a
			// string would become a JSON string; raw text stays as is.
			if s, ok := row[i].(string); ok {
				row[i] = json.RawMessage(s)
			}
		}
		rows = append(rows, row)
	}
	res.Close()
	if err := res.Err(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil // no key of the batch is in the table
	}
	on := make([]string, 0, len(tbl.PrimaryKey))
	for _, k := range tbl.PrimaryKey {
		on = append(on, "t."+quote(k)+" = m."+quote(k))
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM `+d.qualified(tbl.Name)+` AS t USING `+merged+` AS m WHERE `+strings.Join(on, " AND ")); err != nil {
		return err
	}
	return d.conn.Raw(func(dc any) error {
		open, err := t.tableAppender(dc.(driver.Conn), tbl)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if err := open.append(row); err != nil {
				return err
			}
		}
		return nil
	})
}

// deferred holds the full rows of a table that the engine could not call
// fresh although it tracks the table's keys: mostly its key filter's false
// positives, a percent or so of an initial load. Looking them up batch by
// batch would scan the table's key column for every batch, and merging
// them would join it; deferred, they are looked up together, once per
// deferLimit rows, and most then go in as fresh rows after all.
type deferred struct {
	columns []destination.Column
	key     []int
	rows    [][]any // row-major copies: the engine reuses its batches
	deleted []int8
	at      map[string]int // by keyText: a later row replaces an earlier one
}

// deferLimit is how many rows of a table wait before a lookup.
const deferLimit = 16384

// deferMaybes moves the batch's full rows whose key may be in the table
// into the table's deferred rows, removing them from the batch. Only
// tables the engine tracks (Fresh is set) whose key columns hold integers
// or text are deferred.
func (t *tx) deferMaybes(ctx context.Context, tbl *destination.Table, b *destination.Batch) error {
	if len(b.Fresh) < b.Rows || len(b.Key) == 0 {
		return nil
	}
	df := t.deferred[b.Table]
	if df != nil && !slices.Equal(df.columns, b.Columns) {
		if err := t.flushDeferred(ctx, tbl); err != nil {
			return err
		}
		df = nil
	}
	open := t.appenders[b.Table]
	key := make([]any, len(b.Key))
	keep := 0
	for r := 0; r < b.Rows; r++ {
		var text string
		ok := staleRows.takes(b, r)
		if ok {
			for i, c := range b.Key {
				key[i] = b.Values[c][r]
			}
			text, ok = keyText(key)
		}
		// A key among the open appender's unflushed rows is present: it
		// is merged now, as the engine said.
		if ok && (open == nil || !open.holds(key)) {
			if df == nil {
				df = &deferred{columns: slices.Clone(b.Columns), key: slices.Clone(b.Key), at: map[string]int{}}
				t.deferred[b.Table] = df
			}
			row := make([]any, len(b.Columns))
			for c := range row {
				row[c] = b.Values[c][r]
			}
			if i, ok := df.at[text]; ok {
				df.rows[i], df.deleted[i] = row, b.Deleted[r]
			} else {
				df.at[text] = len(df.rows)
				df.rows, df.deleted = append(df.rows, row), append(df.deleted, b.Deleted[r])
			}
			continue
		}
		if keep != r {
			for c := range b.Values {
				b.Values[c][keep] = b.Values[c][r]
			}
			b.Set[keep], b.Deleted[keep], b.Fresh[keep] = b.Set[r], b.Deleted[r], b.Fresh[r]
		}
		keep++
	}
	b.Rows = keep
	for c := range b.Values {
		b.Values[c] = b.Values[c][:keep]
	}
	b.Set, b.Deleted, b.Fresh = b.Set[:keep], b.Deleted[:keep], b.Fresh[:keep]
	if df != nil && len(df.rows) >= deferLimit {
		return t.flushDeferred(ctx, tbl)
	}
	return nil
}

// flushDeferred looks up the table's deferred rows in one query and writes
// them: fresh where the key is absent, merged where it is present.
func (t *tx) flushDeferred(ctx context.Context, tbl *destination.Table) error {
	df := t.deferred[tbl.Name]
	if df == nil {
		return nil
	}
	delete(t.deferred, tbl.Name)
	// Each key as a SQL tuple, and the query renders what it finds as
	// keyText does.
	names := make([]string, len(df.key))
	for i, c := range df.key {
		names[i] = quote(df.columns[c].Name)
	}
	lits := make([]string, 0, len(df.rows))
	key := make([]any, len(df.key))
	for _, row := range df.rows {
		for i, c := range df.key {
			key[i] = row[c]
		}
		lits = append(lits, keyLiteral(key))
	}
	target := strings.Join(names, ", ")
	if len(names) > 1 {
		target = "(" + target + ")"
	}
	res, err := t.tx.QueryContext(ctx, `SELECT DISTINCT `+strings.Join(names, `::VARCHAR || chr(31) || `)+`::VARCHAR FROM `+t.d.qualified(tbl.Name)+
		` WHERE `+target+` IN (`+strings.Join(lits, ", ")+`)`)
	if err != nil {
		return fmt.Errorf("look up %d keys in table %q: %w", len(lits), tbl.Name, err)
	}
	present := map[string]bool{}
	for res.Next() {
		var v string
		if err := res.Scan(&v); err != nil {
			res.Close()
			return err
		}
		present[v] = true
	}
	res.Close()
	if err := res.Err(); err != nil {
		return err
	}
	n := len(df.rows)
	b := &destination.Batch{Table: tbl.Name, Columns: df.columns, Key: df.key, Rows: n,
		Values: make([][]any, len(df.columns)), Set: make([][]uint64, n), Deleted: df.deleted, Fresh: make([]bool, n)}
	open := t.appenders[tbl.Name]
	for c := range b.Values {
		b.Values[c] = make([]any, n)
	}
	for r, row := range df.rows {
		for c, v := range row {
			b.Values[c][r] = v
		}
		for i, c := range df.key {
			key[i] = row[c]
		}
		text, _ := keyText(key)
		b.Fresh[r] = !present[text] && (open == nil || !open.holds(key))
	}
	return t.write(ctx, tbl, b)
}

// flushAllDeferred flushes every table's deferred rows, in table order.
func (t *tx) flushAllDeferred(ctx context.Context) error {
	names := make([]string, 0, len(t.deferred))
	for n := range t.deferred {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tbl, err := t.d.target(n)
		if err != nil {
			return err
		}
		if err := t.flushDeferred(ctx, tbl); err != nil {
			return err
		}
	}
	return nil
}

// keyText renders a key, integer or text values, the way the lookup in
// flushDeferred renders what it finds: the values' text joined by U+001F.
// It reports false for a value of another type.
func keyText(key []any) (string, bool) {
	if len(key) == 1 {
		if s, ok := key[0].(string); ok {
			return s, true
		}
	}
	var b strings.Builder
	for i, v := range key {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		switch x := v.(type) {
		case int64:
			b.WriteString(strconv.FormatInt(x, 10))
		case int32:
			b.WriteString(strconv.FormatInt(int64(x), 10))
		case int16:
			b.WriteString(strconv.FormatInt(int64(x), 10))
		case string:
			b.WriteString(x)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// keyLiteral renders a key that keyText accepts as SQL: a value, or a
// tuple of them.
func keyLiteral(key []any) string {
	lits := make([]string, len(key))
	for i, v := range key {
		if s, ok := v.(string); ok {
			lits[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		} else {
			lits[i] = fmt.Sprint(v)
		}
	}
	if len(lits) == 1 {
		return lits[0]
	}
	return "(" + strings.Join(lits, ", ") + ")"
}

// direct reports whether a batch's full rows can go through the plain
// appender, straight into the table, as DuckDB's own fastest load does: when
// each of its columns that the table has is of the table column's type and
// of a type the appender takes as the engine gives it (not DECIMAL or JSON,
// which the engine gives as text). Columns the table lacks hold only NULLs,
// as the table has not got them yet.
func direct(t *destination.Table, b *destination.Batch) bool {
	for _, c := range b.Columns {
		tc, ok := t.Column(c.Name)
		if ok && (stagedType(c) != SQLType(c) || SQLType(tc) != SQLType(c)) {
			return false
		}
	}
	return true
}

// appendFresh appends the batch's fresh rows (and its stale ones, when
// stale) to the table with the plain appender. Columns the batch lacks get
// NULL.
//
// The appender stays open across batches until another statement touches
// the table (see settle): DuckDB then flushes whole row groups, which it
// writes out to the database file as it goes. An appender per batch of
// fewer rows than a row group leaves every row of the transaction in
// memory, and a large load fails at any memory_limit.
func (t *tx) appendFresh(dc driver.Conn, tbl *destination.Table, b *destination.Batch, stale bool) error {
	open, err := t.tableAppender(dc, tbl)
	if err != nil {
		return err
	}
	// from[i] is the batch column of the table's column i, or -1.
	from := make([]int, len(tbl.Columns))
	idx := columnIndex(b.Columns)
	for i, c := range tbl.Columns {
		from[i] = -1
		if j, ok := idx[c.Name]; ok {
			from[i] = j
		}
	}
	n := len(tbl.Columns)
	args := make([]driver.Value, n+2)
	args[n] = t.synced
	for r := 0; r < b.Rows; r++ {
		if !freshRows.takes(b, r) && !(stale && staleRows.takes(b, r)) {
			continue
		}
		for i, c := range from {
			args[i] = nil
			if c >= 0 {
				args[i] = b.Values[c][r]
			}
		}
		args[n+1] = b.Deleted[r] == destination.Deleted
		if err := open.append(args); err != nil {
			return fmt.Errorf("row %d: %w", r+1, err)
		}
	}
	return nil
}

// tableAppender returns the table's open appender, opening one over every
// column of the table. Every kind of row goes through this one appender, so
// that its row groups fill up whatever the batches' shapes.
func (t *tx) tableAppender(dc driver.Conn, tbl *destination.Table) (*openAppender, error) {
	names := make([]string, 0, len(tbl.Columns)+2)
	for _, c := range tbl.Columns {
		names = append(names, c.Name)
	}
	names = append(names, destination.ColumnSynced, destination.ColumnDeleted)
	open := t.appenders[tbl.Name]
	if open != nil && !slices.Equal(open.columns, names) {
		if err := t.settle(tbl.Name); err != nil {
			return nil, err
		}
		open = nil
	}
	if open != nil {
		return open, nil
	}
	ap, err := duckdb.NewAppenderWithColumns(dc, "", t.d.schema, tbl.Name, names)
	if err != nil {
		return nil, err
	}
	open = &openAppender{ap: ap, columns: names}
	for _, k := range tbl.PrimaryKey {
		open.key = append(open.key, slices.Index(names, k))
	}
	t.appenders[tbl.Name] = open
	return open, nil
}

// openAppender is a table's appender kept open in the transaction. It
// flushes every rowGroupRows rows, so that DuckDB gets whole row groups, and
// once asked about a key (holds) remembers the keys it holds unflushed,
// which no query sees yet.
type openAppender struct {
	ap      *duckdb.Appender
	columns []string
	key     []int // indexes in the appended row of the key columns
	pending int
	scratch []any
	// remembering: the maps hold the key of every unflushed row. Until
	// the appender is first asked about a key it remembers none, and is
	// never asked in a load whose rows the engine marks fresh in key order
	// (a dataset sync, say): remembering cost that load's writer, the
	// goroutine that sets its pace, 0.3-0.4 s per million rows. asked:
	// holds answered while not remembering; the next flush, which empties
	// the appender, starts remembering.
	remembering, asked bool
	// held holds each unflushed key by a 64-bit hash (keyHash), with no
	// string kept per row.
	held heldKeys
	hash maphash.Hash
}

// rowGroupRows is DuckDB's row group size.
const rowGroupRows = 122_880

func (o *openAppender) append(args []driver.Value) error {
	if err := o.ap.AppendRow(args...); err != nil {
		return err
	}
	if o.remembering {
		o.remember(args)
	}
	if o.pending++; o.pending < rowGroupRows {
		return nil
	}
	return o.flush()
}

// remember records the key of a row appended and not flushed yet.
func (o *openAppender) remember(args []driver.Value) {
	if len(o.key) == 0 {
		return
	}
	o.scratch = o.scratch[:0]
	for _, i := range o.key {
		o.scratch = append(o.scratch, args[i])
	}
	if h, ok := keyHash(&o.hash, o.scratch); ok {
		o.held.add(h)
	}
}

// flush hands the appender's rows to the table, where queries see them.
// Between whole row groups it costs memory until the commit (see
// appendFresh), so it happens there, or when a key must be looked up.
func (o *openAppender) flush() error {
	o.pending = 0
	o.remembering = o.remembering || o.asked
	o.held.reset()
	return o.ap.Flush()
}

// holdsAny reports whether the appender holds unflushed any key of the
// batch's rows of kind k.
func (o *openAppender) holdsAny(b *destination.Batch, k rowKind) bool {
	key := make([]any, len(b.Key))
	for r := 0; r < b.Rows; r++ {
		if !k.takes(b, r) {
			continue
		}
		for i, c := range b.Key {
			key[i] = b.Values[c][r]
		}
		if o.holds(key) {
			return true
		}
	}
	return false
}

// holds reports whether a key is among the unflushed rows. Before the
// appender remembers keys it says so of every key while any row is
// unflushed: each caller then flushes, or merges the row, which flushes
// (settle, or write's replace), and from that flush on the appender
// remembers.
func (o *openAppender) holds(key []any) bool {
	if !o.remembering {
		if o.pending == 0 {
			o.remembering = true // nothing unflushed: the maps are complete
			return false
		}
		o.asked = true
		return true
	}
	h, ok := keyHash(&o.hash, key)
	return ok && o.held.has(h)
}

// keyHash hashes a key that keyText accepts, without building its text. An
// integer key alone is mixed rather than hashed as text: the appender's
// writer, which sets a load's pace, remembers every row's key.
func keyHash(h *maphash.Hash, key []any) (uint64, bool) {
	if len(key) == 1 {
		if n, ok := asInt(key[0]); ok {
			return mix64(uint64(n)), true
		}
	}
	h.Reset()
	var buf [20]byte
	for _, v := range key {
		if n, ok := asInt(v); ok {
			h.Write(strconv.AppendInt(buf[:0], n, 10))
		} else if s, ok := v.(string); ok {
			h.WriteString(s)
		} else {
			return 0, false
		}
		h.WriteByte(0x1f)
	}
	return h.Sum64(), true
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	}
	return 0, false
}

// settle closes the table's open appender, if any, so that its rows are in
// the table before anything else reads or changes it.
func (t *tx) settle(table string) error {
	open := t.appenders[table]
	if open == nil {
		return nil
	}
	delete(t.appenders, table)
	if err := open.ap.Close(); err != nil {
		return fmt.Errorf("append to table %q: %w", table, err)
	}
	return nil
}

// settleAll closes every open appender, in table order.
func (t *tx) settleAll() error {
	names := make([]string, 0, len(t.appenders))
	for n := range t.appenders {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	for _, n := range names {
		errs = append(errs, t.settle(n))
	}
	return errors.Join(errs...)
}

// Commit implements destination.Tx.
func (t *tx) Commit(ctx context.Context, state destination.StateRecord) (err error) {
	defer t.fail(&err)
	if t.failed {
		return errors.New("commit after a failed step")
	}
	if err := t.flushAllDeferred(ctx); err != nil {
		return err
	}
	if err := t.settleAll(); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `INSERT OR REPLACE INTO `+t.d.qualified(destination.StateTable)+` VALUES (1, ?, ?, ?)`,
		string(state.State), state.PrevHash, t.synced); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Rollback implements destination.Tx.
func (t *tx) Rollback() error {
	// The table cache may hold changes that are being rolled back.
	t.d.tables = nil
	// Rows of open appenders land in the transaction, which goes.
	t.deferred = nil
	_ = t.settleAll()
	err := t.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// appendRows appends the rows of a batch that which takes, in the staging
// layout: the batch's columns, then _sluice_row_set (NULL for a full row,
// else one '0' or '1' per column) and _sluice_row_del.
func appendRows(ap *duckdb.Appender, b *destination.Batch, which rowKind) error {
	ncol := len(b.Columns)
	args := make([]driver.Value, ncol+2)
	setBuf := make([]byte, ncol)
	for r := 0; r < b.Rows; r++ {
		if !which.takes(b, r) {
			continue
		}
		for c := 0; c < ncol; c++ {
			args[c] = b.Values[c][r]
		}
		if b.Set[r] == nil {
			args[ncol] = nil
		} else {
			for c := 0; c < ncol; c++ {
				setBuf[c] = '0'
				if b.IsSet(r, c) {
					setBuf[c] = '1'
				}
			}
			args[ncol] = string(setBuf)
		}
		args[ncol+1] = b.Deleted[r]
		if err := ap.AppendRow(args...); err != nil {
			return fmt.Errorf("table %q row %d: %w", b.Table, r+1, err)
		}
	}
	return nil
}

// explain adds what to do to the DuckDB errors a user can act on.
func (d *DB) explain(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "Out of Memory Error") && !strings.Contains(msg, "could not allocate block") {
		return err
	}
	return fmt.Errorf("%w\nDuckDB ran out of its memory_limit (%s): checkpoint more often (until a checkpoint commits, DuckDB keeps in memory a mark for each row that its updates, deletes and upserts of existing keys replace: about 2.5 million rows per checkpoint at 48MB), or raise the limit with --destination 'duckdb:%s?memory_limit=512MB'",
		err, d.memoryLimit, d.path)
}

func (d *DB) target(table string) (*destination.Table, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("table %q is not in the warehouse", table)
	}
	return t, nil
}

// rowValues lists, for each target column, the value a full row gives it:
// the batch's value cast to the column's type, or NULL for a column the
// batch does not have (an upsert replaces the whole row).
func rowValues(t *destination.Table, columns []destination.Column, synced string) (cols, vals []string) {
	idx := columnIndex(columns)
	for _, col := range t.Columns {
		cols = append(cols, quote(col.Name))
		if i, ok := idx[col.Name]; ok {
			vals = append(vals, castStaged("s."+quote(col.Name), columns[i], col))
		} else {
			vals = append(vals, "NULL")
		}
	}
	cols = append(cols, quote(destination.ColumnSynced), quote(destination.ColumnDeleted))
	vals = append(vals, synced, `s."_sluice_row_del" = 1`)
	return cols, vals
}

// insertSQL inserts full rows whose keys are new to the table.
func (d *DB) insertSQL(t *destination.Table, columns []destination.Column, synced string) string {
	cols, vals := rowValues(t, columns, synced)
	return `INSERT INTO ` + d.qualified(t.Name) + ` (` + strings.Join(cols, ", ") + `) SELECT ` + strings.Join(vals, ", ") + ` FROM s`
}

// keyJoin is the join condition of the batch rows (s) to the table (t).
func keyJoin(t *destination.Table, columns []destination.Column, key []int) string {
	on := make([]string, 0, len(key))
	for _, k := range key {
		n := quote(columns[k].Name)
		target, _ := t.Column(columns[k].Name)
		on = append(on, "t."+n+" = "+castStaged("s."+n, columns[k], target))
	}
	return strings.Join(on, " AND ")
}

// deleteSQL deletes the rows whose keys the batch rows have.
func (d *DB) deleteSQL(t *destination.Table, columns []destination.Column, key []int) string {
	return `DELETE FROM ` + d.qualified(t.Name) + ` AS t USING s WHERE ` + keyJoin(t, columns, key)
}

// mergeSQL writes full rows whose keys may already be in the table: a
// match gets every column replaced, a miss is inserted.
func (d *DB) mergeSQL(t *destination.Table, columns []destination.Column, key []int, synced string) string {
	cols, vals := rowValues(t, columns, synced)
	set := make([]string, 0, len(cols))
	for i := range cols {
		// Key columns are equal on a match; the rest are replaced, system
		// columns included.
		if i < len(t.Columns) && slices.Contains(t.PrimaryKey, t.Columns[i].Name) {
			continue
		}
		set = append(set, cols[i]+" = "+vals[i])
	}
	return `MERGE INTO ` + d.qualified(t.Name) + ` AS t USING s ON ` + keyJoin(t, columns, key) +
		` WHEN MATCHED THEN UPDATE SET ` + strings.Join(set, ", ") +
		` WHEN NOT MATCHED THEN INSERT (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(vals, ", ") + `)`
}

// updateSQL applies partial rows in place: each changes the columns its
// _sluice_row_set marks, and the deleted flag unless _sluice_row_del is -1.
func (d *DB) updateSQL(t *destination.Table, columns []destination.Column, key []int, synced string) string {
	idx := columnIndex(columns)
	keyCol := map[string]bool{}
	for _, k := range key {
		keyCol[columns[k].Name] = true
	}
	var set []string
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
	return `UPDATE ` + d.qualified(t.Name) + ` AS t SET ` + strings.Join(set, ", ") + ` FROM s WHERE ` + keyJoin(t, columns, key)
}

// mergedSQL selects, for each partial row whose key is in the table, the
// row it makes: the columns its _sluice_row_set marks changed, the others
// as they were, and the deleted flag unless _sluice_row_del is -1.
func (d *DB) mergedSQL(t *destination.Table, columns []destination.Column, key []int, synced string) string {
	idx := columnIndex(columns)
	keyCol := map[string]bool{}
	for _, k := range key {
		keyCol[columns[k].Name] = true
	}
	sel := make([]string, 0, len(t.Columns)+2)
	for _, col := range t.Columns {
		n := quote(col.Name)
		i, ok := idx[col.Name]
		if !ok || keyCol[col.Name] {
			sel = append(sel, "t."+n)
			continue
		}
		sel = append(sel, fmt.Sprintf(`CASE WHEN substr(s."_sluice_row_set", %d, 1) = '1' THEN %s ELSE t.%s END`, i+1, castStaged("s."+n, columns[i], col), n))
	}
	sel = append(sel, synced,
		`CASE s."_sluice_row_del" WHEN 1 THEN true WHEN 0 THEN false ELSE t.`+quote(destination.ColumnDeleted)+` END`)
	return `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + d.qualified(t.Name) + ` AS t JOIN s ON ` + keyJoin(t, columns, key)
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
