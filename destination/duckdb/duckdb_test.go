package duckdb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/internal/contract"
)

var synced = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *duckdb.DB {
	t.Helper()
	d, err := duckdb.Open(context.Background(), path, "s", duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func query(t *testing.T, path, q string) []string {
	t.Helper()
	db, err := duckdb.OpenDB(context.Background(), path, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
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
	return out
}

var table = destination.Table{
	Name:       "t",
	PrimaryKey: []string{"id"},
	Columns:    []destination.Column{{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.Long}},
}

func batch(rows ...[]any) *destination.Batch {
	b := &destination.Batch{Table: "t", Columns: table.Columns, Key: []int{0}, Rows: len(rows), Values: make([][]any, 2)}
	for _, r := range rows {
		b.Values[0] = append(b.Values[0], r[0])
		b.Values[1] = append(b.Values[1], r[1])
		b.Set = append(b.Set, nil)
		b.Deleted = append(b.Deleted, destination.Live)
	}
	return b
}

// A commit is all or nothing: when its second batch fails to merge, the
// schema change, the first batch and the state are all rolled back, and the
// destination can still commit afterwards.
func TestCommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	d := open(t, path)
	defer d.Close()
	if err := d.Commit(ctx, destination.Commit{
		Changes: []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}},
		State:   destination.StateRecord{State: []byte(`{"n":1}`)},
		Synced:  synced,
	}); err != nil {
		t.Fatal(err)
	}
	good, err := d.Stage(ctx, batch([]any{int64(1), int64(10)}))
	if err != nil {
		t.Fatal(err)
	}
	// A batch whose n is text that is no number: the merge's cast fails.
	bad := batch([]any{int64(2), "not a number"})
	bad.Columns = []destination.Column{{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.String}}
	badStaged, err := d.Stage(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	// The same failure from a batch still in memory.
	badInMemory := batch([]any{int64(4), "not a number either"})
	badInMemory.Columns = bad.Columns
	for _, c := range []destination.Commit{
		{Staged: []destination.Staged{good, badStaged}},
		{Staged: []destination.Staged{good}, Batches: []*destination.Batch{badInMemory}},
		// A batch merged through the query appender is rolled back too.
		{Batches: []*destination.Batch{batch([]any{int64(5), int64(50)}), badInMemory}},
	} {
		c.Changes = []destination.SchemaChange{{Kind: destination.AddColumn, Table: destination.Table{Name: "t"}, Column: destination.Column{Name: "extra", Type: contract.Boolean}}}
		c.State = destination.StateRecord{State: []byte(`{"n":2}`)}
		c.Synced = synced
		if err := d.Commit(ctx, c); err == nil {
			t.Fatal("commit of a bad batch succeeded")
		}
	}
	if err := d.Discard(ctx, []destination.Staged{good, badStaged}); err != nil {
		t.Fatal(err)
	}
	ts, err := d.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || len(ts[0].Columns) != 2 {
		t.Errorf("describe after a failed commit: %+v", ts)
	}
	rec, err := d.ReadState(ctx)
	if err != nil || string(rec.State) != `{"n":1}` {
		t.Errorf("state %v %v", rec, err)
	}
	// The destination still works.
	if err := d.Commit(ctx, destination.Commit{
		Changes: []destination.SchemaChange{{Kind: destination.AddColumn, Table: destination.Table{Name: "t"}, Column: destination.Column{Name: "extra", Type: contract.Boolean}}},
		Batches: []*destination.Batch{batch([]any{int64(3), int64(30)})},
		State:   destination.StateRecord{State: []byte(`{"n":3}`), PrevHash: "abc"},
		Synced:  synced,
	}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got := query(t, path, `SELECT id || ':' || n || ':' || coalesce(extra::VARCHAR, 'NULL') FROM s.t`); len(got) != 1 || got[0] != "3:30:NULL" {
		t.Errorf("rows %v", got)
	}
	d = open(t, path)
	rec, err = d.ReadState(ctx)
	if err != nil || string(rec.State) != `{"n":3}` || rec.PrevHash != "abc" {
		t.Errorf("state %+v %v", rec, err)
	}
}

func TestDescribeRejectsForeignTables(t *testing.T) {
	ctx := context.Background()
	for name, ddl := range map[string]string{
		"no key":       `CREATE TABLE s.foreign_t (a INTEGER)`,
		"foreign type": `CREATE TABLE s.foreign_t (a INTEGER PRIMARY KEY, l INTEGER[])`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "w.db")
			d := open(t, path)
			d.Close()
			db, err := duckdb.OpenDB(ctx, path, duckdb.Settings{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ddl); err != nil {
				t.Fatal(err)
			}
			db.Close()
			d = open(t, path)
			defer d.Close()
			_, err = d.Describe(ctx)
			if err == nil || !strings.Contains(err.Error(), "foreign_t") {
				t.Errorf("describe: %v", err)
			}
		})
	}
}

func TestOpenViaURL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "w.db")
	d, err := destination.Open(ctx, "duckdb://"+path+"?threads=1", destination.Options{Schema: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ts, err := d.Describe(ctx); err != nil || len(ts) != 0 {
		t.Errorf("describe %v %v", ts, err)
	}
	if rec, err := d.ReadState(ctx); err != nil || rec != nil {
		t.Errorf("state %v %v", rec, err)
	}
	_, err = destination.Open(ctx, "nosuch:///x", destination.Options{Schema: "s"})
	if err == nil || !strings.Contains(err.Error(), "duckdb") {
		t.Errorf("unknown scheme: %v", err)
	}
}
