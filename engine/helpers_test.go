package engine_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

const testSchema = "conn"

// warehouse is a DuckDB file in a test's temporary folder.
type warehouse struct {
	t    *testing.T
	path string
	open *sql.DB // kept open between syncs for queries
	// inPlace is duckdb.Settings.InPlaceValues for the syncs: how many
	// values a transaction updates in place before it rewrites rows.
	inPlace int
}

func newWarehouse(t *testing.T) *warehouse {
	t.Helper()
	w := &warehouse{t: t, path: filepath.Join(t.TempDir(), "warehouse.db")}
	t.Cleanup(w.closeQueries)
	return w
}

// closeQueries closes the query handle: one process must not have the file
// open twice while writing it.
func (w *warehouse) closeQueries() {
	if w.open != nil {
		w.open.Close()
		w.open = nil
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
	w.closeQueries()
	dest, err := duckdb.Open(ctx, w.path, testSchema, duckdb.Settings{Threads: "2", InPlaceValues: w.inPlace})
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

// query runs q (with table names relative to the test schema, written
// {name}) and returns all rows; values as database/sql gives them.
func (w *warehouse) query(q string, args ...any) [][]any {
	w.t.Helper()
	q = qualify(q)
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
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	return out
}

// qualify turns {name} into "conn"."name".
func qualify(q string) string {
	var b strings.Builder
	for {
		i := strings.Index(q, "{")
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		j := strings.Index(q[i:], "}")
		b.WriteString(q[:i])
		b.WriteString(`"` + testSchema + `"."` + q[i+1:i+j] + `"`)
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

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("0x%x", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float32:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func (w *warehouse) expectRows(q string, want ...string) {
	w.t.Helper()
	got := w.rowsText(q)
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		w.t.Errorf("%s:\n got: %s\nwant: %s", q, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// columnTypes gives each column's DuckDB type, system columns included.
func (w *warehouse) columnTypes(table string) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for _, r := range w.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?`, testSchema, table) {
		out[r[0].(string)] = r[1].(string)
	}
	return out
}

func (w *warehouse) tables() []string {
	w.t.Helper()
	var out []string
	for _, r := range w.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1`, testSchema) {
		out = append(out, r[0].(string))
	}
	return out
}

// withDest opens the warehouse's destination for fn, outside any sync.
func (w *warehouse) withDest(fn func(ctx context.Context, dest *duckdb.DB)) {
	w.t.Helper()
	w.closeQueries()
	ctx := context.Background()
	dest, err := duckdb.Open(ctx, w.path, testSchema, duckdb.Settings{})
	if err != nil {
		w.t.Fatalf("open: %v", err)
	}
	defer dest.Close()
	fn(ctx, dest)
}

func (w *warehouse) state() string {
	w.t.Helper()
	var rec *destination.StateRecord
	w.withDest(func(ctx context.Context, dest *duckdb.DB) {
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
	w.withDest(func(ctx context.Context, dest *duckdb.DB) {
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

func openDuckDB(path string) (destination.Destination, error) {
	d, err := duckdb.Open(context.Background(), path, testSchema, duckdb.Settings{})
	if err != nil {
		return nil, err
	}
	return d, nil
}
