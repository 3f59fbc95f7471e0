// Package srctest runs a source connector through the real engine into a
// DuckDB warehouse, as `sluice debug` does, and reads the warehouse back,
// for the database connectors' tests.
package srctest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// Schema is the warehouse schema the tests sync into.
const Schema = "src"

// Warehouse is a DuckDB file in a test's temporary folder.
type Warehouse struct {
	t    *testing.T
	Path string
	// Logs collects what the connector logged in every sync.
	Logs bytes.Buffer
	mu   sync.Mutex
}

// New makes an empty warehouse.
func New(t *testing.T) *Warehouse {
	return &Warehouse{t: t, Path: filepath.Join(t.TempDir(), "warehouse.db")}
}

// Sync runs one sync: Schema, Start with the warehouse's state, Update
// (with its Ops wrapped by wrap, if given), then Finish, or Abort when
// anything failed. It returns the sync's error.
func (w *Warehouse) Sync(ctx context.Context, c contract.Connector, cfg contract.Config, wrap func(contract.Ops) contract.Ops) error {
	w.t.Helper()
	dest, err := duckdb.Open(ctx, w.Path, Schema, duckdb.Settings{})
	if err != nil {
		w.t.Fatalf("open warehouse: %v", err)
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		w.t.Fatalf("read state: %v", err)
	}
	var start []byte
	state := contract.State{}
	if rec != nil {
		start = rec.State
		dec := json.NewDecoder(bytes.NewReader(start))
		dec.UseNumber()
		if err := dec.Decode(&state); err != nil {
			w.t.Fatalf("state: %v", err)
		}
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&lockedWriter{w: &w.Logs, mu: &w.mu}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	e := engine.New(dest, engine.Options{})
	declared, err := c.Schema(ctx, cloneConfig(cfg))
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := e.Start(ctx, declared, start); err != nil {
		return err
	}
	var ops contract.Ops = e
	if wrap != nil {
		ops = wrap(e)
	}
	err = c.Update(ctx, cloneConfig(cfg), state, ops)
	if err == nil {
		err = e.Err()
	}
	if err == nil {
		err = e.Finish(ctx)
	}
	if err != nil {
		e.Abort(context.WithoutCancel(ctx))
	}
	return err
}

// MustSync is Sync that fails the test on error.
func (w *Warehouse) MustSync(ctx context.Context, c contract.Connector, cfg contract.Config) {
	w.t.Helper()
	if err := w.Sync(ctx, c, cfg, nil); err != nil {
		w.t.Fatalf("sync: %v", err)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func cloneConfig(c contract.Config) contract.Config {
	out := contract.Config{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

func (w *Warehouse) db() *sql.DB {
	w.t.Helper()
	db, err := duckdb.OpenDB(context.Background(), w.Path, duckdb.Settings{})
	if err != nil {
		w.t.Fatalf("open warehouse: %v", err)
	}
	return db
}

// Query returns q's rows, each as its cells' text joined by |, NULL as
// "NULL". Tables are named {name} for the test schema.
func (w *Warehouse) Query(q string, args ...any) []string {
	w.t.Helper()
	q = strings.NewReplacer("{", `"`+Schema+`"."`, "}", `"`).Replace(q)
	db := w.db()
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			w.t.Fatalf("query %s: %v", q, err)
		}
		cells := make([]string, len(cols))
		for i, v := range vals {
			cells[i] = cell(v)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		w.t.Fatalf("query %s: %v", q, err)
	}
	return out
}

// cell renders a value: NULL, text as it is, anything else as Go prints
// it (DuckDB's DECIMAL prints its digits). Cast in SQL for other forms.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.Format("2006-01-02 15:04:05.999999Z07:00")
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// Dump is every row of a table, every column but _sluice_synced as text,
// sorted: what two runs must agree on.
func (w *Warehouse) Dump(table string) []string {
	w.t.Helper()
	return w.Query(`SELECT COLUMNS(* EXCLUDE (` + destination.ColumnSynced + `))::VARCHAR FROM {` + table + `} ORDER BY ALL`)
}

// Tables lists the warehouse's tables.
func (w *Warehouse) Tables() []string {
	w.t.Helper()
	return w.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE '\_sluice\_%' ESCAPE '\' ORDER BY 1`, Schema)
}

// Types gives a table's column types, as "name TYPE", in column order.
func (w *Warehouse) Types(table string) []string {
	w.t.Helper()
	return w.Query(`SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`, Schema, table)
}

// State is the committed state, as JSON text.
func (w *Warehouse) State() string {
	w.t.Helper()
	ctx := context.Background()
	dest, err := duckdb.Open(ctx, w.Path, Schema, duckdb.Settings{})
	if err != nil {
		w.t.Fatalf("open warehouse: %v", err)
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		w.t.Fatalf("read state: %v", err)
	}
	if rec == nil {
		return ""
	}
	return string(rec.State)
}

// ErrInjected is the error FailAfter's Ops return.
var ErrInjected = errors.New("injected failure")

// FailAfter wraps Ops so that the row operation after n succeeded ones
// fails, as a connector error or a crash would end a sync mid-table.
func FailAfter(n int) func(contract.Ops) contract.Ops {
	return func(o contract.Ops) contract.Ops { return &failing{Ops: o, left: n} }
}

type failing struct {
	contract.Ops
	left int
}

func (f *failing) step() error {
	if f.left == 0 {
		return ErrInjected
	}
	f.left--
	return nil
}

func (f *failing) Upsert(t string, r map[string]any) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.Ops.Upsert(t, r)
}

func (f *failing) Update(t string, r map[string]any) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.Ops.Update(t, r)
}

func (f *failing) Delete(t string, r map[string]any) error {
	if err := f.step(); err != nil {
		return err
	}
	return f.Ops.Delete(t, r)
}

// Counter wraps Ops to count what passes through.
type Counter struct {
	contract.Ops
	Upserts, Updates, Deletes, Truncates, Checkpoints int
}

// Wrap is the wrap function for Sync.
func (c *Counter) Wrap(o contract.Ops) contract.Ops { c.Ops = o; return c }

func (c *Counter) Upsert(t string, r map[string]any) error { c.Upserts++; return c.Ops.Upsert(t, r) }
func (c *Counter) Update(t string, r map[string]any) error { c.Updates++; return c.Ops.Update(t, r) }
func (c *Counter) Delete(t string, r map[string]any) error { c.Deletes++; return c.Ops.Delete(t, r) }
func (c *Counter) Truncate(t string) error                 { c.Truncates++; return c.Ops.Truncate(t) }
func (c *Counter) Checkpoint(s any) error                  { c.Checkpoints++; return c.Ops.Checkpoint(s) }

// Want compares lines, such as a Dump, with the expected ones.
func Want(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// WantErr fails the test unless err contains every part.
func WantErr(t *testing.T, err error, parts ...string) {
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

// CancelAfter wraps Ops so that the sync's context is cancelled after n
// upserts, as Ctrl-C would.
func CancelAfter(n int, cancel context.CancelFunc) func(contract.Ops) contract.Ops {
	return func(o contract.Ops) contract.Ops { return &cancelling{Ops: o, n: n, cancel: cancel} }
}

type cancelling struct {
	contract.Ops
	n      int
	cancel context.CancelFunc
}

func (c *cancelling) Upsert(t string, r map[string]any) error {
	if c.n--; c.n < 0 {
		c.cancel()
	}
	return c.Ops.Upsert(t, r)
}

// ResumeMatches is the crash-and-resume check: reset puts the source back
// to its first state, change makes the second. The reference is a sync of
// the first state, then one of the second. Then for each point n, in a
// subtest of a fresh warehouse, the second sync is stopped at n
// (alternately by a failing operation and by a cancelled context) and run
// again: tables (warehouse names) must hold what the reference holds.
func ResumeMatches(t *testing.T, conn contract.Connector, cfg contract.Config, tables []string, points []int, reset, change func()) {
	t.Helper()
	ctx := context.Background()
	reset()
	ref := New(t)
	ref.MustSync(ctx, conn, cfg)
	change()
	ref.MustSync(ctx, conn, cfg)
	want := map[string][]string{}
	for _, tb := range tables {
		want[tb] = ref.Dump(tb)
	}
	for i, n := range points {
		how := []string{"error", "cancel"}[i%2]
		t.Run(fmt.Sprintf("%s-after-%d", how, n), func(t *testing.T) {
			reset()
			w := New(t)
			w.MustSync(ctx, conn, cfg)
			change()
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			wrap := FailAfter(n)
			if how == "cancel" {
				wrap = CancelAfter(n, cancel)
			}
			err := w.Sync(sctx, conn, cfg, wrap)
			if err == nil {
				t.Fatal("the sync did not fail")
			}
			if how == "cancel" && !errors.Is(err, context.Canceled) {
				t.Errorf("want a cancelled sync, got %v", err)
			}
			w.MustSync(ctx, conn, cfg)
			for _, tb := range tables {
				Want(t, tb, w.Dump(tb), want[tb])
			}
		})
	}
}
