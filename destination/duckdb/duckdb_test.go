package duckdb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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

// commit runs one transaction: the changes, the batches, the state.
func commit(ctx context.Context, d *duckdb.DB, state string, changes []destination.SchemaChange, batches ...*destination.Batch) error {
	tx, err := d.Begin(ctx, synced)
	if err != nil {
		return err
	}
	err = tx.Apply(ctx, changes)
	for _, b := range batches {
		if err == nil {
			err = tx.Write(ctx, b)
		}
	}
	if err == nil {
		err = tx.Commit(ctx, destination.StateRecord{State: []byte(state), PrevHash: "h-" + state})
	}
	if err != nil {
		tx.Rollback()
	}
	return err
}

var addExtra = []destination.SchemaChange{{Kind: destination.AddColumn, Table: destination.Table{Name: "t"}, Column: destination.Column{Name: "extra", Type: contract.Boolean}}}

// A transaction is all or nothing: when a batch fails to merge, the schema
// change, the batches before it and the state are all rolled back, and the
// destination can still commit afterwards.
func TestTxIsAtomic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	d := open(t, path)
	defer d.Close()
	if err := commit(ctx, d, `{"n":1}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}}); err != nil {
		t.Fatal(err)
	}
	// A batch whose n is text that is no number: the merge's cast fails.
	bad := batch([]any{int64(2), "not a number"})
	bad.Columns = []destination.Column{{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.String}}
	freshBad := batch([]any{int64(4), "not a number either"})
	freshBad.Columns = bad.Columns
	freshBad.Fresh = []bool{true}
	fresh := batch([]any{int64(5), int64(50)})
	fresh.Fresh = []bool{true}
	for i, bs := range [][]*destination.Batch{
		{batch([]any{int64(1), int64(10)}), bad},
		{fresh, freshBad},
		{fresh, batch([]any{int64(1), int64(10)}), bad},
	} {
		if err := commit(ctx, d, `{"n":2}`, addExtra, bs...); err == nil {
			t.Fatalf("case %d: a bad batch was committed", i)
		}
	}
	ts, err := d.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || len(ts[0].Columns) != 2 || !ts[0].Empty {
		t.Errorf("describe after failed transactions: %+v", ts)
	}
	rec, err := d.ReadState(ctx)
	if err != nil || string(rec.State) != `{"n":1}` {
		t.Errorf("state %v %v", rec, err)
	}
	// The destination still works.
	if err := commit(ctx, d, `{"n":3}`, addExtra, batch([]any{int64(3), int64(30)})); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got := query(t, path, `SELECT id || ':' || n || ':' || coalesce(extra::VARCHAR, 'NULL') FROM s.t`); len(got) != 1 || got[0] != "3:30:NULL" {
		t.Errorf("rows %v", got)
	}
	d = open(t, path)
	rec, err = d.ReadState(ctx)
	if err != nil || string(rec.State) != `{"n":3}` || rec.PrevHash != `h-{"n":3}` {
		t.Errorf("state %+v %v", rec, err)
	}
	if ts, err := d.Describe(ctx); err != nil || len(ts) != 1 || ts[0].Empty || len(ts[0].PrimaryKey) != 1 || ts[0].PrimaryKey[0] != "id" {
		t.Errorf("describe: %+v %v", ts, err)
	}
}

// DuckDB rejects, at commit, an ALTER TABLE after an UPDATE of the same
// table in one transaction. A schema change after a merge must still
// commit, with the merged rows and the change both in place.
func TestSchemaChangeAfterMerge(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	d := open(t, path)
	defer d.Close()
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}},
		batch([]any{int64(1), int64(10)}, []any{int64(2), int64(20)})); err != nil {
		t.Fatal(err)
	}
	tx, err := d.Begin(ctx, synced.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return tx.Write(ctx, batch([]any{int64(1), int64(11)}, []any{int64(3), int64(30)})) },
		func() error {
			return tx.Apply(ctx, []destination.SchemaChange{
				addExtra[0],
				{Kind: destination.WidenColumn, Table: destination.Table{Name: "t"}, Column: destination.Column{Name: "n", Type: contract.String}},
			})
		},
		func() error {
			b := batch([]any{int64(2), "twenty-one"}, []any{int64(4), "forty"})
			b.Columns = []destination.Column{{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.String}, {Name: "extra", Type: contract.Boolean}}
			b.Values = append(b.Values, []any{true, nil})
			return tx.Write(ctx, b)
		},
		// A second change in the same transaction, after another merge.
		func() error {
			return tx.Apply(ctx, []destination.SchemaChange{{Kind: destination.AddColumn, Table: destination.Table{Name: "t"}, Column: destination.Column{Name: "later", Type: contract.Long}}})
		},
		func() error { return tx.Commit(ctx, destination.StateRecord{State: []byte(`{"n":2}`)}) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	d.Close()
	got := query(t, path, `SELECT id || ':' || n || ':' || coalesce(extra::VARCHAR, 'NULL') || ':' || coalesce(later::VARCHAR, 'NULL') || ':' || (_sluice_synced > '2024-01-01 00:30:00+00') FROM s.t ORDER BY id`)
	want := []string{"1:11:NULL:NULL:true", "2:twenty-one:true:NULL:true", "3:30:NULL:NULL:true", "4:forty:NULL:NULL:true"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rows\n got %v\nwant %v", got, want)
	}
	types := query(t, path, `SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 's' AND table_name = 't' ORDER BY ordinal_position`)
	if strings.Join(types, ", ") != "id BIGINT, n VARCHAR, _sluice_synced TIMESTAMP WITH TIME ZONE, _sluice_deleted BOOLEAN, extra BOOLEAN, later BIGINT" {
		t.Errorf("columns %v", types)
	}
}

// A column added after an update of its table (a rebuild) lands where a
// plain ALTER TABLE puts it, after the system columns, and a second
// sync's Describe and writes work on either table.
func TestColumnOrderSameAfterRebuild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	order := map[bool][]string{}
	for _, rebuilt := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("w-%v.db", rebuilt))
		d := open(t, path)
		if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}},
			batch([]any{int64(1), int64(10)}, []any{int64(2), int64(20)})); err != nil {
			t.Fatal(err)
		}
		var before []*destination.Batch
		if rebuilt {
			before = append(before, batch([]any{int64(1), int64(11)})) // replaces a row: the table is updated
		}
		tx, err := d.Begin(ctx, synced.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range before {
			if err := tx.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Apply(ctx, addExtra); err != nil {
			t.Fatal(err)
		}
		b := batch([]any{int64(3), int64(30)})
		b.Columns = append(slices.Clone(table.Columns), destination.Column{Name: "extra", Type: contract.Boolean})
		b.Values = append(b.Values, []any{true})
		if err := tx.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx, destination.StateRecord{State: []byte(`{"n":2}`)}); err != nil {
			t.Fatal(err)
		}
		// The next run reads the table back and writes to it again.
		d.Close()
		d = open(t, path)
		ts, err := d.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 1 || len(ts[0].Columns) != 3 || ts[0].Columns[2].Name != "extra" {
			t.Fatalf("rebuilt=%v: describe %+v", rebuilt, ts)
		}
		b = batch([]any{int64(2), int64(21)})
		b.Columns = ts[0].Columns
		b.Values = append(b.Values, []any{false})
		if err := commit(ctx, d, `{"n":3}`, nil, b); err != nil {
			t.Fatalf("rebuilt=%v: %v", rebuilt, err)
		}
		d.Close()
		order[rebuilt] = query(t, path, `SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 's' AND table_name = 't' ORDER BY ordinal_position`)
		got := query(t, path, `SELECT id || ':' || n || ':' || coalesce(extra::VARCHAR, 'NULL') || ':' || _sluice_deleted FROM s.t ORDER BY id`)
		want := []string{"1:10:NULL:false", "2:21:false:false", "3:30:true:false"}
		if rebuilt {
			want[0] = "1:11:NULL:false"
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("rebuilt=%v: rows\n got %v\nwant %v", rebuilt, got, want)
		}
	}
	want := "id BIGINT, n BIGINT, _sluice_synced TIMESTAMP WITH TIME ZONE, _sluice_deleted BOOLEAN, extra BOOLEAN"
	for _, rebuilt := range []bool{false, true} {
		if got := strings.Join(order[rebuilt], ", "); got != want {
			t.Errorf("rebuilt=%v: columns\n got %s\nwant %s", rebuilt, got, want)
		}
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

// Rows of a tracked table that the engine could not call fresh (its key
// filter's false positives) are looked up: the absent are inserted, the
// present replaced, and no key ends up twice.
func TestFalsePositivesAreLookedUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	d := open(t, path)
	defer d.Close()
	first := batch([]any{int64(1), int64(10)}, []any{int64(2), int64(20)})
	first.Fresh = []bool{true, true}
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}}, first); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := int64(2); i < 12; i++ {
		rows = append(rows, []any{i, i * 100})
	}
	second := batch(rows...)
	second.Fresh = make([]bool, len(rows)) // every one a "maybe"
	if err := commit(ctx, d, `{}`, nil, second); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got := query(t, path, `SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(n) FROM s.t`)
	// ids 1..11 once each; n: 10 for id 1, then 200..1100.
	if want := "11 11 " + fmt.Sprint(10+(2+11)*10*100/2); len(got) != 1 || got[0] != want {
		t.Errorf("rows %v, want %s", got, want)
	}
}

// The same within one transaction: the first batch's rows are still in the
// open appender, unflushed, when the second batch's keys are looked up.
func TestFalsePositivesInOneTransaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	d := open(t, path)
	defer d.Close()
	first := batch([]any{int64(1), int64(10)}, []any{int64(2), int64(20)})
	first.Fresh = []bool{true, true}
	// Key 2 is a "maybe" among new keys, few enough to be looked up.
	rows := [][]any{{int64(2), int64(200)}}
	for i := int64(3); i < 10; i++ {
		rows = append(rows, []any{i, i * 100})
	}
	second := batch(rows...)
	second.Fresh = []bool{false, true, true, true, true, true, true, true}
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: table}}, first, second); err != nil {
		t.Fatal(err)
	}
	d.Close()
	got := query(t, path, `SELECT string_agg(id || '=' || n, ' ' ORDER BY id) FROM s.t`)
	if want := "1=10 2=200 3=300 4=400 5=500 6=600 7=700 8=800 9=900"; len(got) != 1 || got[0] != want {
		t.Errorf("rows %v, want %s (key 2 once, replaced)", got, want)
	}
}
