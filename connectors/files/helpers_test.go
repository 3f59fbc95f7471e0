package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// result is what one sync did.
type result struct {
	counts map[string]engine.Counts
	loads  int // files the destination's reader loaded
	// declined lists the reasons of the files offered to the reader and
	// upserted after all.
	declined []string
	state    map[string]any // committed
	ops      int64          // operations the connector emitted
	err      error
}

// syncOpts change a test sync.
type syncOpts struct {
	// failAfter makes the Ops fail at that operation (1-based): the
	// connector gets an error, as from a failed write.
	failAfter int64
	// cancelAfter cancels the sync's context at that operation.
	cancelAfter int64
	// hideLoader runs without the FileLoader capability.
	hideLoader bool
	batchRows  int
}

// syncDir runs the connector once into the DuckDB warehouse at db, starting
// from the state the warehouse committed last, as `sluice debug` does.
func syncDir(t testing.TB, db string, cfg contract.Config, o syncOpts) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dest, err := duckdb.Open(ctx, db, Name, duckdb.Settings{})
	if err != nil {
		t.Fatalf("open warehouse: %v", err)
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	var start []byte
	state := contract.State{}
	if rec != nil {
		start = rec.State
		dec := json.NewDecoder(bytes.NewReader(start))
		dec.UseNumber()
		if err := dec.Decode(&state); err != nil {
			t.Fatal(err)
		}
	}
	eng := engine.New(dest, engine.Options{BatchRows: o.batchRows})
	c := Connector()
	res := result{}
	declared, err := c.Schema(ctx, cfg)
	if err == nil {
		err = eng.Start(ctx, declared, start)
	}
	if err == nil {
		ops := &countingOps{Engine: eng, o: o, cancel: cancel, res: &res}
		var target contract.Ops = ops
		if o.hideLoader {
			target = &noLoaderOps{ops}
		}
		err = c.Update(ctx, cfg, state, target)
		res.ops = ops.n
		if err == nil {
			err = eng.Err()
		}
		if err == nil {
			err = eng.Finish(ctx)
		}
		if err != nil {
			eng.Abort(ctx)
		}
	}
	res.err = err
	res.counts = map[string]engine.Counts{}
	for _, tc := range eng.TableCounts() {
		res.counts[tc.Table] = tc.Counts
	}
	if rec, err := dest.ReadState(context.Background()); err == nil && rec != nil {
		json.Unmarshal(rec.State, &res.state)
	}
	return res
}

// countingOps is the engine, counting operations and file loads, and
// failing or cancelling on demand.
type countingOps struct {
	*engine.Engine
	o      syncOpts
	cancel context.CancelFunc
	res    *result
	n      int64
}

var errInjected = errors.New("injected failure")

func (c *countingOps) step() error {
	c.n++
	if c.o.failAfter > 0 && c.n >= c.o.failAfter {
		return fmt.Errorf("operation %d: %w", c.n, errInjected)
	}
	if c.o.cancelAfter > 0 && c.n == c.o.cancelAfter {
		c.cancel()
	}
	return nil
}

func (c *countingOps) Upsert(table string, row map[string]any) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Engine.Upsert(table, row)
}

func (c *countingOps) Delete(table string, row map[string]any) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.Engine.Delete(table, row)
}

func (c *countingOps) LoadFile(table string, f contract.LocalFile) (contract.FileLoaded, error) {
	if err := c.step(); err != nil {
		return contract.FileLoaded{}, err
	}
	res, err := c.Engine.LoadFile(table, f)
	if res.Handled {
		c.res.loads++
	} else if err == nil {
		c.res.declined = append(c.res.declined, filepath.Base(f.Path)+": "+res.Reason)
	}
	return res, err
}

// noLoaderOps hides the FileLoader capability.
type noLoaderOps struct{ c *countingOps }

func (n *noLoaderOps) Upsert(t string, r map[string]any) error { return n.c.Upsert(t, r) }
func (n *noLoaderOps) Update(t string, r map[string]any) error { return n.c.Update(t, r) }
func (n *noLoaderOps) Delete(t string, r map[string]any) error { return n.c.Delete(t, r) }
func (n *noLoaderOps) Truncate(t string) error                 { return n.c.Truncate(t) }
func (n *noLoaderOps) Checkpoint(s any) error                  { return n.c.Checkpoint(s) }
func (n *noLoaderOps) DeclareColumns(t string, cols []contract.Column) error {
	return n.c.DeclareColumns(t, cols)
}

// dump reads a warehouse table, every column but _sluice_synced, one line
// per row, sorted: columns by name, values as DuckDB renders them as text.
func dump(t testing.TB, conn *sql.DB, table string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.QueryContext(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name <> ? ORDER BY column_name`, Name, table, destination.ColumnSynced)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) == 0 {
		t.Fatalf("table %q is not in the warehouse", table)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf(`'%s=' || coalesce("%s"::VARCHAR, 'NULL')`, c, c)
	}
	rows, err = conn.QueryContext(ctx, `SELECT `+strings.Join(sel, ` || ' | ' || `)+` FROM "`+Name+`"."`+table+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// openWarehouse opens a warehouse file for reading, until the caller
// closes it (a sync needs it closed).
func openWarehouse(t testing.TB, db string) *sql.DB {
	t.Helper()
	conn, err := duckdb.OpenDB(context.Background(), db, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// query runs one query on a warehouse and returns the first column of the
// first row as text.
func query(t testing.TB, conn *sql.DB, q string, args ...any) string {
	t.Helper()
	var s sql.NullString
	if err := conn.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// columnTypes lists a warehouse table's columns as name:TYPE, sorted.
func columnTypes(t testing.TB, conn *sql.DB, table string) []string {
	t.Helper()
	rows, err := conn.Query(`SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY column_name`, Name, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeGzip(t testing.TB, path, content string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(content))
	zw.Close()
	writeFile(t, path, b.String())
}

// touch moves a file's modification time, so that a rewrite of the same
// size within the clock's resolution still shows as a change.
func touch(t testing.TB, path string, d time.Duration) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime().Add(d), st.ModTime().Add(d)); err != nil {
		t.Fatal(err)
	}
}

// duckExec runs statements in an in-memory DuckDB: the tests write their
// Parquet files with DuckDB's COPY.
func duckExec(t testing.TB, stmts ...string) {
	t.Helper()
	db, err := duckdb.OpenDB(context.Background(), "", duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func cfgFor(root string, kv ...string) contract.Config {
	c := contract.Config{"root": root}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}
