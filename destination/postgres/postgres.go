// Package postgres is the PostgreSQL destination:
// postgres://user:password@host:5432/database?sslmode=disable (the scheme
// postgresql:// works too; every other parameter is pgx's).
//
// It keeps the semantics of the DuckDB destination rule for rule: soft
// deletes, truncate as a soft delete of the rows synced before it, one
// _sluice_synced per transaction, keys recorded in <schema>._sluice_tables,
// the connector state in <schema>._sluice_state committed in the same
// transaction as the data it covers, and logs in <schema>._sluice_log.
// Unlike DuckDB, tables carry a real PRIMARY KEY: PostgreSQL keeps its index
// on disk, and INSERT ... ON CONFLICT needs it.
//
// Each checkpoint is one transaction on one connection, and never a
// statement per row: rows the engine knows to be new go straight into the
// table by one COPY kept open across batches (copy.go encodes them); other
// full rows are copied into a temporary staging table and merged with one
// INSERT ... ON CONFLICT DO UPDATE; partial rows (updates, deletes) are one
// UPDATE ... FROM the staging table. MERGE measured slower than ON CONFLICT
// here (BENCHMARKS.md). A table created in the transaction gets its PRIMARY
// KEY once its first rows are in, before anything needs it and at the
// latest before the commit: one index build instead of one insertion per
// row. Such a table's key columns are NOT NULL from the start, which
// spares the build a scan, and its rows are copied with COPY FREEZE, so
// they are frozen and all-visible from the commit on.
//
// A session advisory lock per schema keeps two syncs of one connector
// apart; the server releases it when a crashed process's connection drops.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/sluicedata/sluice/destination"
)

func init() {
	open := func(ctx context.Context, u *url.URL, opts destination.Options) (destination.Destination, error) {
		return Open(ctx, u.String(), opts.Schema)
	}
	destination.Register("postgres", open)
	destination.Register("postgresql", open)
}

// tablesTable records each table's key columns, comma-separated, as the
// DuckDB destination does: it tells sluice's tables from others in the
// schema, and the PRIMARY KEY must agree with it.
const tablesTable = "_sluice_tables"

// maxName is PostgreSQL's limit on identifiers (NAMEDATALEN-1 bytes): a
// longer name is cut silently, which would make sluice lose track of it.
const maxName = 63

// lockWait is how long Open waits for another sync of the same schema to
// end (or for the server to notice that a killed one is gone).
var lockWait = 30 * time.Second

// DB is one connector schema in a PostgreSQL database.
type DB struct {
	cfg    *pgx.ConnConfig
	where  string // host:port/database, for messages
	secret string // the URL's password, kept out of every message
	schema string
	conn   *pgx.Conn  // the sync's transactions; holds the schema's lock
	logs   *pgx.Conn  // Log's own connection, so logs commit on their own
	logMu  sync.Mutex // Log is called from the connector's goroutine and the writer's
	tables map[string]*destination.Table
}

// Open connects to the database a postgres:// URL names, takes the schema's
// lock and creates the schema and sluice's tables in it where missing.
func Open(ctx context.Context, rawURL, schema string) (*DB, error) {
	secret := ""
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		secret, _ = u.User.Password()
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL destination URL is not valid (%s): write it as postgres://user:password@host:5432/database?sslmode=disable", scrub(err.Error(), secret))
	}
	if len(schema) > maxName {
		return nil, fmt.Errorf("schema name %q is longer than PostgreSQL's %d-byte limit: choose a shorter one (--schema)", schema, maxName)
	}
	// Values cast to text (a column widened to STRING) must read as the
	// engine renders new ones, whatever the server's defaults.
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["DateStyle"] = "ISO, YMD"
	cfg.RuntimeParams["extra_float_digits"] = "1"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "sluice"
	}
	// A cancelled context asks the server to cancel the statement, so the
	// connection survives and the transaction rolls back; the deadline
	// breaks the connection only if the server does not answer.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 5 * time.Second}
	}
	// COPY needs the column types; a cached description would be stale
	// once a column widens, so every statement with arguments is
	// described anew (one round trip, a fraction of a millisecond).
	cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	d := &DB{cfg: cfg, secret: secret, schema: schema,
		where: fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)}
	if err := d.connect(ctx); err != nil {
		return nil, err
	}
	if err := d.prepare(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// connect opens the sync's connection and takes the schema's lock.
func (d *DB) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return d.connectError(err)
	}
	if err := d.lock(ctx, conn); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return err
	}
	d.conn = conn
	return nil
}

// lock takes the session advisory lock of the schema, waiting up to
// lockWait for a run that holds it.
func (d *DB) lock(ctx context.Context, conn *pgx.Conn) error {
	deadline := time.Now().Add(lockWait)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "sluice schema "+d.schema).Scan(&ok); err != nil {
			return d.explain(fmt.Errorf("lock schema %q: %w", d.schema, err))
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			var pid int64
			_ = conn.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0) LIMIT 1`, "sluice schema "+d.schema).Scan(&pid)
			return fmt.Errorf("schema %q in %s is being synced by another sluice run (server process %d holds its lock; waited %s): let it finish or stop it, then try again", d.schema, d.where, pid, lockWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for schema %q's lock: %w", d.schema, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// prepare creates the schema and sluice's tables where they are missing.
// It looks first: CREATE ... IF NOT EXISTS needs the CREATE privilege even
// when the object exists, and an administrator may have made them.
func (d *DB) prepare(ctx context.Context) error {
	var exists bool
	if err := d.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, d.schema).Scan(&exists); err != nil {
		return d.explain(fmt.Errorf("look up schema %q: %w", d.schema, err))
	}
	if !exists {
		if _, err := d.conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quote(d.schema)); err != nil {
			return d.explain(fmt.Errorf("create schema %q in %s: %w", d.schema, d.where, err))
		}
	}
	for _, t := range []struct{ name, ddl string }{
		{destination.StateTable, `(id integer PRIMARY KEY, state json NOT NULL, prev_hash text, committed_at timestamptz NOT NULL)`},
		{tablesTable, `(table_name text PRIMARY KEY, primary_key text NOT NULL)`},
		{destination.LogTable, `("time" timestamptz NOT NULL, level text NOT NULL, message text NOT NULL)`},
	} {
		var found bool
		if err := d.conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, d.qualified(t.name)).Scan(&found); err != nil {
			return d.explain(fmt.Errorf("look up table %s: %w", d.qualified(t.name), err))
		}
		if found {
			continue
		}
		if _, err := d.conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+d.qualified(t.name)+` `+t.ddl); err != nil {
			return d.explain(fmt.Errorf("create table %s: %w", d.qualified(t.name), err))
		}
	}
	return nil
}

// Close implements destination.Destination. Closing the connection
// releases the schema's lock.
func (d *DB) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.logMu.Lock()
	defer d.logMu.Unlock()
	var errs []error
	for _, c := range []*pgx.Conn{d.conn, d.logs} {
		if c != nil {
			errs = append(errs, c.Close(ctx))
		}
	}
	d.conn, d.logs = nil, nil
	return errors.Join(errs...)
}

// ready reconnects when a cancelled or failed statement broke the
// connection, so the destination stays usable for the next transaction.
func (d *DB) ready(ctx context.Context) error {
	if d.conn != nil && !d.conn.IsClosed() {
		return nil
	}
	d.tables = nil
	return d.connect(ctx)
}

func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (d *DB) qualified(table string) string {
	return quote(d.schema) + "." + quote(table)
}

// Describe implements destination.Destination. A table whose shape sluice
// did not make (a type it does not write, a missing system column, a
// PRIMARY KEY other than the one it recorded) is an error naming it.
func (d *DB) Describe(ctx context.Context) ([]destination.Table, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := d.conn.Query(ctx, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum`, d.schema)
	if err != nil {
		return nil, d.explain(fmt.Errorf("read the tables of schema %q: %w", d.schema, err))
	}
	byName := map[string]*destination.Table{}
	system := map[string]map[string]string{} // table -> system column -> type
	var order []string
	var bad error
	for rows.Next() {
		var tname, cname, ctype string
		if err := rows.Scan(&tname, &cname, &ctype); err != nil {
			rows.Close()
			return nil, err
		}
		if strings.HasPrefix(tname, "_sluice_") {
			continue
		}
		t := byName[tname]
		if t == nil {
			t = &destination.Table{Name: tname}
			byName[tname] = t
			order = append(order, tname)
			system[tname] = map[string]string{}
		}
		if cname == destination.ColumnSynced || cname == destination.ColumnDeleted {
			system[tname][cname] = ctype
			continue
		}
		col, ok := parseSQLType(ctype)
		if !ok && bad == nil {
			bad = fmt.Errorf("table %s column %q has type %s, which sluice does not write (it writes boolean, smallint, integer, bigint, numeric(p,s), real, double precision, date, timestamp, timestamptz, bytea, text and jsonb): change the column's type, drop the column, or drop the table to sync it again",
				d.qualified(tname), cname, ctype)
		}
		col.Name = cname
		t.Columns = append(t.Columns, col)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, d.explain(fmt.Errorf("read the tables of schema %q: %w", d.schema, err))
	}
	recorded := map[string][]string{}
	rows, err = d.conn.Query(ctx, `SELECT table_name, primary_key FROM `+d.qualified(tablesTable))
	if err != nil {
		return nil, d.explain(fmt.Errorf("read table keys: %w", err))
	}
	for rows.Next() {
		var tname, key string
		if err := rows.Scan(&tname, &key); err != nil {
			rows.Close()
			return nil, err
		}
		recorded[tname] = strings.Split(key, ",")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, d.explain(fmt.Errorf("read table keys: %w", err))
	}
	actual := map[string][]string{}
	rows, err = d.conn.Query(ctx, `SELECT c.relname, array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE n.nspname = $1 AND i.indisprimary GROUP BY c.relname`, d.schema)
	if err != nil {
		return nil, d.explain(fmt.Errorf("read primary keys: %w", err))
	}
	for rows.Next() {
		var tname string
		var key []string
		if err := rows.Scan(&tname, &key); err != nil {
			rows.Close()
			return nil, err
		}
		actual[tname] = key
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, d.explain(fmt.Errorf("read primary keys: %w", err))
	}
	for _, n := range order {
		t := byName[n]
		key, ok := recorded[n]
		if !ok {
			return nil, fmt.Errorf("table %s in %s was not created by sluice (it is not in %s): drop or rename it, or sync into another schema (--schema)", d.qualified(n), d.where, d.qualified(tablesTable))
		}
		if err := d.checkShape(t, key, actual[n], system[n]); err != nil {
			return nil, err
		}
		t.PrimaryKey = key
	}
	if bad != nil {
		return nil, bad
	}
	for _, n := range order {
		if err := d.conn.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM `+d.qualified(n)+`)`).Scan(&byName[n].Empty); err != nil {
			return nil, d.explain(fmt.Errorf("table %s: %w", d.qualified(n), err))
		}
	}
	out := make([]destination.Table, 0, len(order))
	d.tables = map[string]*destination.Table{}
	for _, n := range order {
		t := byName[n]
		out = append(out, *t)
		d.tables[n] = t
	}
	return out, nil
}

// checkShape compares a table with what sluice made: its key columns and
// PRIMARY KEY as recorded, and the system columns with their types.
func (d *DB) checkShape(t *destination.Table, key, pk []string, system map[string]string) error {
	q := d.qualified(t.Name)
	for _, c := range []struct{ name, typ string }{
		{destination.ColumnSynced, "timestamp with time zone"},
		{destination.ColumnDeleted, "boolean"},
	} {
		got, ok := system[c.name]
		if !ok {
			return fmt.Errorf("table %s has no column %s: sluice's tables have %s %s; add it (ALTER TABLE %s ADD COLUMN %s %s NOT NULL DEFAULT ...) or drop the table to sync it again",
				q, c.name, c.name, c.typ, q, quote(c.name), c.typ)
		}
		if got != c.typ {
			return fmt.Errorf("table %s column %s has type %s, want %s: change it back or drop the table to sync it again", q, c.name, got, c.typ)
		}
	}
	for _, k := range key {
		if _, ok := t.Column(k); !ok {
			return fmt.Errorf("table %s has lost its key column %q (key (%s) in %s): drop the table to sync it again", q, k, strings.Join(key, ", "), d.qualified(tablesTable))
		}
	}
	if !slices.Equal(key, pk) {
		have := "no PRIMARY KEY"
		if len(pk) > 0 {
			have = "PRIMARY KEY (" + strings.Join(pk, ", ") + ")"
		}
		return fmt.Errorf("table %s has %s, but sluice keys it by (%s): restore it with ALTER TABLE %s ADD PRIMARY KEY (%s) (dropping the other one first), or drop the table to sync it again",
			q, have, strings.Join(key, ", "), q, quoteAll(key))
	}
	return nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

// ReadState implements destination.Destination. The state is stored as
// json, not jsonb, so that it reads back byte for byte: the runner compares
// it with the state file.
func (d *DB) ReadState(ctx context.Context) (*destination.StateRecord, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	var state string
	var prev *string
	err := d.conn.QueryRow(ctx, `SELECT state::text, prev_hash FROM `+d.qualified(destination.StateTable)+` WHERE id = 1`).Scan(&state, &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, d.explain(fmt.Errorf("read state from %s: %w", d.qualified(destination.StateTable), err))
	}
	rec := &destination.StateRecord{State: []byte(state)}
	if prev != nil {
		rec.PrevHash = *prev
	}
	return rec, nil
}

// Log implements destination.Destination. It runs on a connection of its
// own, so log lines commit even when the sync's transaction does not.
func (d *DB) Log(ctx context.Context, recs []destination.LogRecord) error {
	if len(recs) == 0 {
		return nil
	}
	d.logMu.Lock()
	defer d.logMu.Unlock()
	if d.logs == nil || d.logs.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, d.cfg)
		if err != nil {
			return d.connectError(err)
		}
		d.logs = c
	}
	times := make([]time.Time, len(recs))
	levels := make([]string, len(recs))
	msgs := make([]string, len(recs))
	for i, r := range recs {
		// PostgreSQL text cannot hold NUL.
		times[i], levels[i], msgs[i] = r.Time, r.Level, strings.ReplaceAll(r.Message, "\x00", `\0`)
	}
	_, err := d.logs.Exec(ctx, `INSERT INTO `+d.qualified(destination.LogTable)+` SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[])`, times, levels, msgs)
	if err != nil {
		return d.explain(fmt.Errorf("write %d log records: %w", len(recs), err))
	}
	return nil
}

// Begin implements destination.Destination.
func (d *DB) Begin(ctx context.Context, synced time.Time) (destination.Tx, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	if d.tables == nil {
		if _, err := d.Describe(ctx); err != nil {
			return nil, err
		}
	}
	t, err := d.conn.Begin(ctx)
	if err != nil {
		return nil, d.explain(fmt.Errorf("begin: %w", err))
	}
	return &tx{d: d, tx: t, synced: synced.UTC(), syncedSQL: timestampLiteral(synced), stages: map[string]string{}, keyless: map[string][]string{}}, nil
}

func (d *DB) target(table string) (*destination.Table, error) {
	t := d.tables[table]
	if t == nil {
		return nil, fmt.Errorf("table %q is not in schema %q", table, d.schema)
	}
	return t, nil
}

// timestampLiteral renders _sluice_synced as SQL, the same in every
// statement of a transaction.
func timestampLiteral(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05.999999") + "+00'::timestamptz"
}

var _ destination.Destination = (*DB)(nil)

// checkName refuses a name PostgreSQL would cut short.
func checkName(kind, name string) error {
	if len(name) > maxName {
		return fmt.Errorf("%s name %q is %d bytes, over PostgreSQL's limit of %d (it would be cut silently): shorten it in the connector", kind, name, len(name), maxName)
	}
	return nil
}

// columnIndex maps names to indexes.
func columnIndex(columns []destination.Column) map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.Name] = i
	}
	return m
}

// storedAlike reports whether two columns have the same PostgreSQL type
// (STRING and XML are both text).
func storedAlike(a, b destination.Column) bool { return SQLType(a) == SQLType(b) }
