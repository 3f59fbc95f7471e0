package engine_test

// Tests of the file capabilities (loadfile.go). They need no PostgreSQL:
// its Tx has no FileLoader, which lfNoLoader stands for.

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// lfSync runs fn as a connector over an engine into the DuckDB warehouse
// at path, then finishes (or aborts on error).
func lfSync(t *testing.T, path string, declared []contract.Table, wrap func(destination.Destination) destination.Destination, fn func(e *engine.Engine) error) error {
	t.Helper()
	ctx := context.Background()
	db, err := duckdb.Open(ctx, path, "s", duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dest destination.Destination = db
	if wrap != nil {
		dest = wrap(db)
	}
	e := engine.New(dest, engine.Options{})
	if err := e.Start(ctx, declared, nil); err != nil {
		return err
	}
	err = fn(e)
	if err == nil {
		err = e.Err()
	}
	if err == nil {
		err = e.Finish(ctx)
	}
	if err != nil {
		e.Abort(ctx)
	}
	return err
}

func lfQuery(t *testing.T, path, q string) string {
	t.Helper()
	db, err := duckdb.OpenDB(context.Background(), path, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

var lfTable = []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "id", Type: contract.Long}}}}

func lfCSV(t *testing.T, content string) contract.LocalFile {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return contract.LocalFile{Path: p, Format: contract.FileCSV, CSV: contract.CSVDialect{Delimiter: ',', Quote: '"', Header: true},
		Columns: []contract.Column{{Name: "id", Type: contract.Long}, {Name: "v", Type: contract.String}}, RowNumber: "line",
		Constants: []contract.ColumnValue{{Column: contract.Column{Name: "src"}, Value: "f.csv"}}}
}

// TestDeclareColumnsWidens: a declared column widens mid-batch; the rows
// taken before keep their values, converted as the warehouse converts.
func TestDeclareColumnsWidens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	err := lfSync(t, path, lfTable, nil, func(e *engine.Engine) error {
		if err := e.DeclareColumns("t", []contract.Column{{Name: "v", Type: contract.Long}, {Name: "d", Type: contract.NaiveDate}}); err != nil {
			return err
		}
		if err := e.Upsert("t", map[string]any{"id": 1, "v": int64(42), "d": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			return err
		}
		if err := e.DeclareColumns("t", []contract.Column{{Name: "v", Type: contract.String}}); err != nil {
			return err
		}
		// Already wider: LONG values go into the STRING column.
		if err := e.DeclareColumns("t", []contract.Column{{Name: "v", Type: contract.Long}}); err != nil {
			return err
		}
		if err := e.Upsert("t", map[string]any{"id": 2, "v": int64(7)}); err != nil {
			return err
		}
		return e.Upsert("t", map[string]any{"id": 3, "v": "n/a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lfQuery(t, path, `SELECT string_agg(id || '=' || v || ':' || typeof(v) || ':' || coalesce(d::VARCHAR, '-'), ' ' ORDER BY id) FROM s.t`); got != "1=42:VARCHAR:2024-03-01 2=7:VARCHAR:- 3=n/a:VARCHAR:-" {
		t.Errorf("rows: %s", got)
	}
}

func TestDeclareColumnsErrors(t *testing.T) {
	for _, c := range []struct {
		col  contract.Column
		want string
	}{
		{contract.Column{Name: "id", Type: contract.String}, `key column "id" is LONG and cannot widen`},
		{contract.Column{Name: "x"}, "unknown type"},
		{contract.Column{Name: "x", Type: contract.Decimal, Precision: 40}, "DECIMAL needs a precision"},
		{contract.Column{Name: "_sluice_x", Type: contract.Long}, "reserved"},
	} {
		err := lfSync(t, filepath.Join(t.TempDir(), "w.db"), lfTable, nil, func(e *engine.Engine) error {
			return e.DeclareColumns("t", []contract.Column{c.col})
		})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("declare %+v: %v, want an error saying %q", c.col, err, c.want)
		}
	}
}

// TestLoadFileThenUpsert: rows a load wrote are replaced, not duplicated,
// by later upserts of their keys in the same sync, and the summary counts
// the loaded rows.
func TestLoadFileThenUpsert(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	var counts []engine.TableCount
	err := lfSync(t, path, lfTable, nil, func(e *engine.Engine) error {
		if err := e.Upsert("t", map[string]any{"id": 9, "v": "before"}); err != nil {
			return err
		}
		res, err := e.LoadFile("t", lfCSV(t, "id,v\n1,a\n2,b\n3,c\n2,bb\n"))
		if err != nil {
			return err
		}
		if !res.Handled || res.Rows != 4 {
			t.Errorf("LoadFile: %+v, want 4 rows handled", res)
		}
		if err := e.Upsert("t", map[string]any{"id": 2, "v": "after"}); err != nil {
			return err
		}
		if err := e.Delete("t", map[string]any{"id": 3}); err != nil {
			return err
		}
		counts = e.TableCounts()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lfQuery(t, path, `SELECT string_agg(id || '=' || v || ':' || coalesce(line::VARCHAR, '-') || ':' || coalesce(src, '-') || ':' || _sluice_deleted, ' ' ORDER BY id) FROM s.t`); got != "1=a:1:f.csv:false 2=after:-:-:false 3=c:3:f.csv:true 9=before:-:-:false" {
		t.Errorf("rows: %s", got)
	}
	if len(counts) != 1 || counts[0].Upserts != 6 || counts[0].Deletes != 1 {
		t.Errorf("counts: %+v, want 6 upserts (4 loaded) and 1 delete", counts)
	}
}

// TestLoadFileDeclined: a value that does not read as its column's type
// leaves the table as it was and the transaction usable; so does a file
// without the table's key.
func TestLoadFileDeclined(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	err := lfSync(t, path, lfTable, nil, func(e *engine.Engine) error {
		if err := e.Upsert("t", map[string]any{"id": 1, "v": "kept"}); err != nil {
			return err
		}
		f := lfCSV(t, "id,v\n5,a\nsix,b\n")
		res, err := e.LoadFile("t", f)
		if err != nil || res.Handled || !strings.Contains(res.Reason, "does not read") {
			t.Errorf("bad value: %+v, %v", res, err)
		}
		f = lfCSV(t, "x,v\n5,a\n")
		f.Columns[0].Name = "x"
		if res, err = e.LoadFile("t", f); err != nil || res.Handled || !strings.Contains(res.Reason, `no value for key column "id"`) {
			t.Errorf("no key: %+v, %v", res, err)
		}
		// The transaction goes on: a good file loads.
		if res, err = e.LoadFile("t", lfCSV(t, "id,v\n5,a\n")); err != nil || !res.Handled {
			t.Errorf("good file: %+v, %v", res, err)
		}
		return e.Upsert("t", map[string]any{"id": 2, "v": "after"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lfQuery(t, path, `SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM s.t`); got != "1=kept 2=after 5=a" {
		t.Errorf("rows: %s", got)
	}
}

// TestLoadFileError: a file the reader cannot read ends the sync; nothing
// since the last checkpoint is committed.
func TestLoadFileError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	err := lfSync(t, path, lfTable, nil, func(e *engine.Engine) error {
		if err := e.Upsert("t", map[string]any{"id": 1, "v": "committed"}); err != nil {
			return err
		}
		if err := e.Checkpoint(map[string]any{"n": 1}); err != nil {
			return err
		}
		if err := e.Upsert("t", map[string]any{"id": 2, "v": "lost"}); err != nil {
			return err
		}
		_, err := e.LoadFile("t", lfCSV(t, "id,v\n5,a\n6,b,c\n"))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "f.csv") {
		t.Fatalf("error %v, want one naming the file", err)
	}
	if got := lfQuery(t, path, `SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM s.t`); got != "1=committed" {
		t.Errorf("rows: %s", got)
	}
}

// lfNoLoader is a destination whose transactions lack FileLoader, as
// PostgreSQL's do.
type lfNoLoader struct{ destination.Destination }

type lfPlainTx struct{ destination.Tx }

func (d lfNoLoader) Begin(ctx context.Context, synced time.Time) (destination.Tx, error) {
	tx, err := d.Destination.Begin(ctx, synced)
	return lfPlainTx{tx}, err
}

func TestLoadFileWithoutCapability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	err := lfSync(t, path, lfTable, func(d destination.Destination) destination.Destination { return lfNoLoader{d} }, func(e *engine.Engine) error {
		for i := 0; i < 2; i++ {
			res, err := e.LoadFile("t", lfCSV(t, "id,v\n5,a\n"))
			if err != nil || res.Handled || !strings.Contains(res.Reason, "no file loader") {
				t.Errorf("call %d: %+v, %v", i+1, res, err)
			}
		}
		return e.Upsert("t", map[string]any{"id": 1, "v": "x"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := lfQuery(t, path, `SELECT count(*) FROM s.t`); got != "1" {
		t.Errorf("rows: %s", got)
	}
}
