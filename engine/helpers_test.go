package engine_test

// The engine's tests are one conformance suite: each runs against every
// destination (eachDest), and reads the warehouse back in a way that does
// not depend on it. DuckDB always runs; PostgreSQL runs when
// SLUICE_POSTGRES_URL names a database, each test in a schema of its own,
// dropped at the end.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/destination/postgres"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// kind names a destination the suite runs against.
type kind string

const (
	duckDB   kind = "duckdb"
	postgreS kind = "postgres"
)

var kinds = []kind{duckDB, postgreS}

// postgresURL is the database the PostgreSQL runs use.
var postgresURL = os.Getenv("SLUICE_POSTGRES_URL")

// eachDest runs fn once per destination, as parallel subtests named by
// the destination.
func eachDest(t *testing.T, fn func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			if k == postgreS && postgresURL == "" {
				t.Skip("PostgreSQL: set SLUICE_POSTGRES_URL=postgres://user@host:5432/db?sslmode=disable to run this test against it")
			}
			t.Parallel()
			fn(t, k)
		})
	}
}

// warehouse is one test's destination: a DuckDB file in the test's
// temporary folder, or a fresh schema in the PostgreSQL database.
type warehouse struct {
	t      *testing.T
	kind   kind
	schema string
	path   string    // DuckDB
	open   *sql.DB   // DuckDB, kept open between syncs for queries
	pg     *pgx.Conn // PostgreSQL, for queries
	// inPlace is duckdb.Settings.InPlaceValues for the syncs: how many
	// values a transaction updates in place before it rewrites rows.
	inPlace int
}

func newWarehouse(t *testing.T, k kind) *warehouse {
	t.Helper()
	w := &warehouse{t: t, kind: k, schema: "conn"}
	switch k {
	case duckDB:
		w.path = filepath.Join(t.TempDir(), "warehouse.db")
		t.Cleanup(w.closeQueries)
	case postgreS:
		var b [6]byte
		rand.Read(b[:])
		w.schema = "conn_" + hex.EncodeToString(b[:])
		t.Cleanup(func() {
			ctx := context.Background()
			if c := w.pgConn(); c != nil {
				if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quoteIdent(w.schema)+` CASCADE`); err != nil {
					t.Errorf("drop schema %s: %v", w.schema, err)
				}
				c.Close(ctx)
			}
		})
	}
	return w
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// closeQueries closes the DuckDB query handle: one process must not have
// the file open twice while writing it.
func (w *warehouse) closeQueries() {
	if w.open != nil {
		w.open.Close()
		w.open = nil
	}
}

// openDest opens the destination as a sync does.
func (w *warehouse) openDest(ctx context.Context) (destination.Destination, error) {
	w.closeQueries()
	switch w.kind {
	case postgreS:
		return postgres.Open(ctx, postgresURL, w.schema)
	default:
		d, err := duckdb.Open(ctx, w.path, w.schema, duckdb.Settings{Threads: "2", InPlaceValues: w.inPlace})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}

// clock gives each commit its own _sluice_synced: base + n seconds.
type clock struct{ n int }

var clockBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time {
	c.n++
	return clockBase.Add(time.Duration(c.n) * time.Second)
}

// syncRun is one sync in progress.
type syncRun struct {
	e *engine.Engine
}

// sync runs one sync the way the runner does: Start with the declared schema
// and the warehouse's state, fn as the connector's Update, then Finish, or
// Abort if fn (or Finish) fails. It returns the sync's error.
func (w *warehouse) sync(opts engine.Options, declared []contract.Table, fn func(r *syncRun) error) error {
	return w.syncCtx(context.Background(), opts, declared, fn)
}

func (w *warehouse) syncCtx(ctx context.Context, opts engine.Options, declared []contract.Table, fn func(r *syncRun) error) error {
	w.t.Helper()
	dest, err := w.openDest(ctx)
	if err != nil {
		w.t.Fatalf("open warehouse: %v", err)
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		w.t.Fatalf("read state: %v", err)
	}
	var start []byte
	if rec != nil {
		start = rec.State
	}
	if opts.Now == nil {
		opts.Now = (&clock{}).now
	}
	e := engine.New(dest, opts)
	if err := e.Start(ctx, declared, start); err != nil {
		return err
	}
	r := &syncRun{e: e}
	err = fn(r)
	if err == nil {
		err = e.Err()
	}
	if err == nil {
		err = e.Finish(ctx)
	}
	if err != nil {
		if aerr := e.Abort(context.WithoutCancel(ctx)); aerr != nil {
			w.t.Errorf("abort: %v", aerr)
		}
	}
	return err
}

// mustSync is sync that fails the test on error.
func (w *warehouse) mustSync(opts engine.Options, declared []contract.Table, fn func(r *syncRun) error) {
	w.t.Helper()
	if err := w.sync(opts, declared, fn); err != nil {
		w.t.Fatalf("sync: %v", err)
	}
}

func (w *warehouse) db() *sql.DB {
	w.t.Helper()
	if w.open == nil {
		db, err := duckdb.OpenDB(context.Background(), w.path, duckdb.Settings{})
		if err != nil {
			w.t.Fatalf("open warehouse: %v", err)
		}
		w.open = db
	}
	return w.open
}

// pgConn is the PostgreSQL query connection, nil if it cannot be had.
func (w *warehouse) pgConn() *pgx.Conn {
	if w.pg == nil {
		cfg, err := pgx.ParseConfig(postgresURL)
		if err != nil {
			w.t.Errorf("SLUICE_POSTGRES_URL: %v", err)
			return nil
		}
		// Text of times as the destination's own sessions have it.
		cfg.RuntimeParams["TimeZone"] = "UTC"
		// Columns change type between queries: no cached statements.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
		c, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			w.t.Errorf("connect to PostgreSQL: %v", err)
			return nil
		}
		w.pg = c
	}
	return w.pg
}

// query runs q (with table names relative to the test schema, written
// {name}; arguments as $1, $2, ...) and returns all rows, with values as
// the driver gives them, except PostgreSQL's numeric, which comes back
// as decimalText with the column's scale.
func (w *warehouse) query(q string, args ...any) [][]any {
	w.t.Helper()
	q = w.qualify(q)
	if w.kind == postgreS {
		return w.queryPG(q, args...)
	}
	rows, err := w.db().Query(q, args...)
	if err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			w.t.Fatalf("scan: %v", err)
		}
		for i, v := range vals {
			if d, ok := v.(duckdbdriver.Decimal); ok {
				vals[i] = decimalOf(d.Value, -int(d.Scale), int(d.Scale))
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	return out
}

func (w *warehouse) queryPG(q string, args ...any) [][]any {
	w.t.Helper()
	c := w.pgConn()
	if c == nil {
		w.t.FailNow()
	}
	rows, err := c.Query(context.Background(), q, args...)
	if err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			w.t.Fatalf("query %s: %v", q, err)
		}
		for i, v := range vals {
			if n, ok := v.(pgtype.Numeric); ok {
				// The scale is the column's (typmod - 4) & 0xffff: the
				// value itself drops it for zero.
				scale := -int(n.Exp)
				if m := rows.FieldDescriptions()[i].TypeModifier; m >= 4 {
					scale = int((m - 4) & 0xffff)
				}
				if !n.Valid {
					vals[i] = nil
				} else {
					vals[i] = decimalOf(n.Int, int(n.Exp), scale)
				}
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	return out
}

// decimalText is a decimal's text with scale digits after the point: the
// value is unscaled * 10^exp.
type decimalText string

func decimalTextOf(unscaled *big.Int, exp, scale int) string {
	v := new(big.Int).Set(unscaled)
	for ; exp > -scale; exp-- {
		v.Mul(v, big.NewInt(10))
	}
	digits := new(big.Int).Abs(v).String()
	sign := ""
	if v.Sign() < 0 {
		sign = "-"
	}
	if scale == 0 {
		return sign + digits
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}

func decimalOf(unscaled *big.Int, exp, scale int) decimalText {
	return decimalText(decimalTextOf(unscaled, exp, scale))
}

// qualify turns {name} into "schema"."name".
func (w *warehouse) qualify(q string) string {
	var b strings.Builder
	for {
		i := strings.Index(q, "{")
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		j := strings.Index(q[i:], "}")
		b.WriteString(q[:i])
		b.WriteString(quoteIdent(w.schema) + "." + quoteIdent(q[i+1:i+j]))
		q = q[i+j+1:]
	}
}

// rowsText renders query rows as strings, for compact comparisons.
func (w *warehouse) rowsText(q string, args ...any) []string {
	w.t.Helper()
	var out []string
	for _, r := range w.query(q, args...) {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = cell(v)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

// cell renders a value the same whichever destination it came from:
// floats as the engine renders them in text (4.0, 1e+21), decimals with
// their scale, binary as 0x and hex, times in UTC (RFC 3339), and JSON
// objects and arrays compact with sorted keys (PostgreSQL's jsonb keeps
// neither the spacing nor the key order of the text it was given).
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("0x%x", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float32:
		return floatText(float64(x), 32)
	case float64:
		return floatText(x, 64)
	case decimalText:
		return string(x)
	case string:
		if strings.HasPrefix(x, "{") || strings.HasPrefix(x, "[") {
			if s, ok := canonicalJSON(x); ok {
				return s
			}
		}
	}
	return fmt.Sprint(v)
}

// canonicalJSON re-encodes JSON text compactly, object keys sorted,
// numbers as written.
func canonicalJSON(s string) (string, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

// floatText is the engine's rendering of a float as text (engine.toText).
func floatText(f float64, bitSize int) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, bitSize)
	exp, _ := strconv.Atoi(e[strings.LastIndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, bitSize)
	if !strings.ContainsRune(s, '.') {
		s += ".0"
	}
	return s
}

func (w *warehouse) expectRows(q string, want ...string) {
	w.t.Helper()
	got := w.rowsText(q)
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		w.t.Errorf("%s:\n got: %s\nwant: %s", q, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// pgTypeNames maps PostgreSQL's type names to DuckDB's, so that tests
// compare one set of names.
var pgTypeNames = map[string]string{
	"boolean": "BOOLEAN", "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT",
	"real": "FLOAT", "double precision": "DOUBLE", "date": "DATE",
	"timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
	"bytea": "BLOB", "jsonb": "JSON", "text": "VARCHAR",
}

// columnTypes gives each column's type, system columns included, by
// DuckDB's names.
func (w *warehouse) columnTypes(table string) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	if w.kind == postgreS {
		for _, r := range w.query(`SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, w.qualify("{"+table+"}")) {
			typ := r[1].(string)
			if n, ok := pgTypeNames[typ]; ok {
				typ = n
			} else if strings.HasPrefix(typ, "numeric(") {
				typ = "DECIMAL(" + strings.TrimPrefix(typ, "numeric(")
			}
			out[r[0].(string)] = typ
		}
		return out
	}
	for _, r := range w.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, w.schema, table) {
		out[r[0].(string)] = r[1].(string)
	}
	return out
}

func (w *warehouse) tables() []string {
	w.t.Helper()
	var out []string
	for _, r := range w.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, w.schema) {
		out = append(out, r[0].(string))
	}
	sort.Strings(out)
	return out
}

// withDest opens the warehouse's destination for fn, outside any sync.
func (w *warehouse) withDest(fn func(ctx context.Context, dest destination.Destination)) {
	w.t.Helper()
	ctx := context.Background()
	dest, err := w.openDest(ctx)
	if err != nil {
		w.t.Fatalf("open: %v", err)
	}
	defer dest.Close()
	fn(ctx, dest)
}

func (w *warehouse) state() string {
	w.t.Helper()
	var rec *destination.StateRecord
	w.withDest(func(ctx context.Context, dest destination.Destination) {
		var err error
		if rec, err = dest.ReadState(ctx); err != nil {
			w.t.Fatalf("read state: %v", err)
		}
	})
	if rec == nil {
		return "<none>"
	}
	return string(rec.State)
}

func (w *warehouse) describe() []destination.Table {
	w.t.Helper()
	var ts []destination.Table
	w.withDest(func(ctx context.Context, dest destination.Destination) {
		var err error
		if ts, err = dest.Describe(ctx); err != nil {
			w.t.Fatalf("describe: %v", err)
		}
	})
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// row is shorthand for an operation's row.
type row = map[string]any

// each runs ops in order, stopping at the first error.
func each(fns ...func() error) error {
	for _, f := range fns {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error containing %q, got none", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
