package files

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/internal/contract"
	"github.com/sluicedata/sluice/internal/s3test"
)

// modes runs a test with the fast path and without it.
var modes = []string{"true", "false"}

func TestFullSync(t *testing.T) {
	for _, fast := range modes {
		t.Run("fast_path="+fast, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			writeFile(t, filepath.Join(root, "users.csv"), "id,name,joined\n1,ann,2024-01-02\n2,\"bo, b\",2024-02-03\n1,ann again,2024-03-04\n")
			writeFile(t, filepath.Join(root, "orders", "day=2024-03-01", "a.csv"), "order_id,amount\n10,1.50\n11,2.25\n")
			writeFile(t, filepath.Join(root, "orders", "day=2024-03-02", "a.csv"), "order_id,amount\n12,3.00\n")
			duckExec(t, "COPY (SELECT i AS id, 'n' || i AS name FROM range(5) t(i)) TO '"+filepath.Join(root, "items.parquet")+"'")
			writeFile(t, filepath.Join(root, "notes.txt"), "not a table")
			db := filepath.Join(dir, "w.db")
			r := syncDir(t, db, cfgFor(root, "fast_path", fast, "primary_key", `{"users": "id"}`), syncOpts{})
			if r.err != nil {
				t.Fatal(r.err)
			}
			want := map[string]engine.Counts{"users": {Upserts: 3}, "orders": {Upserts: 3}, "items": {Upserts: 5}}
			if !mapsEqual(r.counts, want) {
				t.Errorf("counts %+v, want %+v", r.counts, want)
			}
			c := openWarehouse(t, db)
			defer c.Close()
			wantRows := map[string][]string{
				"users": {
					"_file=users.csv | _line=2 | _sluice_deleted=false | id=2 | joined=2024-02-03 | name=bo, b",
					"_file=users.csv | _line=3 | _sluice_deleted=false | id=1 | joined=2024-03-04 | name=ann again",
				},
				"orders": {
					"_file=orders/day=2024-03-01/a.csv | _line=1 | _sluice_deleted=false | amount=1.50 | day=2024-03-01 | order_id=10",
					"_file=orders/day=2024-03-01/a.csv | _line=2 | _sluice_deleted=false | amount=2.25 | day=2024-03-01 | order_id=11",
					"_file=orders/day=2024-03-02/a.csv | _line=1 | _sluice_deleted=false | amount=3.00 | day=2024-03-02 | order_id=12",
				},
			}
			for table, rows := range wantRows {
				if got := dump(t, c, table); !slices.Equal(got, rows) {
					t.Errorf("table %s:\n%s\nwant\n%s", table, strings.Join(got, "\n"), strings.Join(rows, "\n"))
				}
			}
			if got := query(t, c, `SELECT count(*) || ' ' || sum(id) || ' ' || max(_line) FROM files.items WHERE NOT _sluice_deleted`); got != "5 10 5" {
				t.Errorf("items: count, sum(id), max(_line) = %s, want 5 10 5", got)
			}
			if got := strings.Join(columnTypes(t, c, "orders"), " "); got != "_file:VARCHAR _line:BIGINT _sluice_deleted:BOOLEAN _sluice_synced:TIMESTAMP WITH TIME ZONE amount:DECIMAL(38,2) day:DATE order_id:BIGINT" {
				t.Errorf("orders columns: %s", got)
			}
			// The state records each file.
			users := stateFile(t, r.state, "users", "users.csv")
			st, _ := os.Stat(filepath.Join(root, "users.csv"))
			if users["size"] != float64(st.Size()) || users["mtime"] != mtime(st.ModTime()) || users["rows"] != float64(3) || users["done"] != true {
				t.Errorf("state of users.csv: %v", users)
			}
		})
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// stateFile returns a file's entry in a committed state.
func stateFile(t testing.TB, state map[string]any, table, key string) map[string]any {
	t.Helper()
	tables, _ := state["tables"].(map[string]any)
	ts, _ := tables[table].(map[string]any)
	files, _ := ts["files"].(map[string]any)
	f, _ := files[key].(map[string]any)
	if f == nil {
		b, _ := json.Marshal(state)
		t.Fatalf("state has no entry for %s/%s: %s", table, key, b)
	}
	return f
}

func TestIncremental(t *testing.T) {
	for _, fast := range modes {
		t.Run("fast_path="+fast, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			writeFile(t, filepath.Join(root, "logs", "a.csv"), "n,msg\n1,a1\n2,a2\n")
			writeFile(t, filepath.Join(root, "logs", "b.csv"), "n,msg\n1,b1\n2,b2\n3,b3\n")
			writeFile(t, filepath.Join(root, "logs", "c.csv"), "n,msg\n1,c1\n")
			db := filepath.Join(dir, "w.db")
			cfg := cfgFor(root, "fast_path", fast)
			if r := syncDir(t, db, cfg, syncOpts{}); r.err != nil || r.counts["logs"].Upserts != 6 {
				t.Fatalf("first sync: %v, counts %+v", r.err, r.counts)
			}

			// One file added, one changed (shorter: its third row goes),
			// one removed, one untouched.
			writeFile(t, filepath.Join(root, "logs", "d.csv"), "n,msg\n1,d1\n2,d2\n")
			writeFile(t, filepath.Join(root, "logs", "b.csv"), "n,msg\n1,B1\n2,B2\n")
			touch(t, filepath.Join(root, "logs", "b.csv"), 2e9)
			if err := os.Remove(filepath.Join(root, "logs", "c.csv")); err != nil {
				t.Fatal(err)
			}
			r := syncDir(t, db, cfg, syncOpts{})
			if r.err != nil {
				t.Fatal(r.err)
			}
			// d.csv's two rows and b.csv's two are read; a.csv is not;
			// b.csv's third row and c.csv's row are deleted.
			if got, want := r.counts["logs"], (engine.Counts{Upserts: 4, Deletes: 2}); got != want {
				t.Errorf("second sync: %+v, want %+v", got, want)
			}
			c := openWarehouse(t, db)
			want := []string{
				"_file=logs/a.csv | _line=1 | _sluice_deleted=false | msg=a1 | n=1",
				"_file=logs/a.csv | _line=2 | _sluice_deleted=false | msg=a2 | n=2",
				"_file=logs/b.csv | _line=1 | _sluice_deleted=false | msg=B1 | n=1",
				"_file=logs/b.csv | _line=2 | _sluice_deleted=false | msg=B2 | n=2",
				"_file=logs/b.csv | _line=3 | _sluice_deleted=true | msg=b3 | n=3",
				"_file=logs/c.csv | _line=1 | _sluice_deleted=true | msg=c1 | n=1",
				"_file=logs/d.csv | _line=1 | _sluice_deleted=false | msg=d1 | n=1",
				"_file=logs/d.csv | _line=2 | _sluice_deleted=false | msg=d2 | n=2",
			}
			if got := dump(t, c, "logs"); !slices.Equal(got, want) {
				t.Errorf("after the second sync:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			c.Close()
			tables := r.state["tables"].(map[string]any)
			files := tables["logs"].(map[string]any)["files"].(map[string]any)
			if _, ok := files["logs/c.csv"]; ok || len(files) != 3 {
				t.Errorf("state files after the removal: %v", files)
			}

			// Nothing changed: nothing is read or written.
			r = syncDir(t, db, cfg, syncOpts{})
			if r.err != nil || len(r.counts) != 0 {
				t.Errorf("third sync: %v, counts %+v, want none", r.err, r.counts)
			}

			// A changed file comes back: its removed line revives.
			writeFile(t, filepath.Join(root, "logs", "b.csv"), "n,msg\n1,B1\n2,B2\n3,B3\n")
			touch(t, filepath.Join(root, "logs", "b.csv"), 4e9)
			if r = syncDir(t, db, cfg, syncOpts{}); r.err != nil || r.counts["logs"] != (engine.Counts{Upserts: 3}) {
				t.Fatalf("fourth sync: %v, counts %+v", r.err, r.counts)
			}
			c = openWarehouse(t, db)
			defer c.Close()
			if got := query(t, c, `SELECT msg || ' ' || _sluice_deleted FROM files.logs WHERE _file = 'logs/b.csv' AND _line = 3`); got != "B3 false" {
				t.Errorf("b.csv line 3 after it came back: %s", got)
			}
		})
	}
}

// TestKeyedRemoved: a keyed table keeps the rows of a removed file, and a
// later file's row wins for a key.
func TestKeyedRemoved(t *testing.T) {
	for _, fast := range modes {
		t.Run("fast_path="+fast, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			writeFile(t, filepath.Join(root, "people", "1.csv"), "id,name\n1,ann\n2,bob\n")
			writeFile(t, filepath.Join(root, "people", "2.csv"), "id,name\n2,bobby\n3,cy\n")
			db := filepath.Join(dir, "w.db")
			cfg := cfgFor(root, "fast_path", fast, "primary_key", `{"people": "id"}`)
			if r := syncDir(t, db, cfg, syncOpts{}); r.err != nil {
				t.Fatal(r.err)
			}
			if err := os.Remove(filepath.Join(root, "people", "1.csv")); err != nil {
				t.Fatal(err)
			}
			r := syncDir(t, db, cfg, syncOpts{})
			if r.err != nil || len(r.counts) != 0 {
				t.Fatalf("second sync: %v, counts %+v", r.err, r.counts)
			}
			c := openWarehouse(t, db)
			defer c.Close()
			want := []string{
				"_file=people/1.csv | _line=1 | _sluice_deleted=false | id=1 | name=ann",
				"_file=people/2.csv | _line=1 | _sluice_deleted=false | id=2 | name=bobby",
				"_file=people/2.csv | _line=2 | _sluice_deleted=false | id=3 | name=cy",
			}
			if got := dump(t, c, "people"); !slices.Equal(got, want) {
				t.Errorf("people:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// crashCorpus is a folder whose sync takes many checkpoints: a large file,
// small files, a Parquet file and a keyed table.
func crashCorpus(t testing.TB, root string) {
	var b strings.Builder
	b.WriteString("id,v,when\n")
	for i := 1; i <= 250; i++ {
		fmt.Fprintf(&b, "%d,v%d,2024-01-%02d\n", i, i, i%28+1)
	}
	writeFile(t, filepath.Join(root, "big.csv"), b.String())
	for i := 0; i < 4; i++ {
		writeFile(t, filepath.Join(root, "small", fmt.Sprintf("p=%d", i), "f.csv"), fmt.Sprintf("id,w\n%d,a\n%d,b\n", i, i+100))
	}
	writeFile(t, filepath.Join(root, "keyed.csv"), "k,v\n1,a\n2,b\n1,c\n3,d\n")
	duckExec(t, "COPY (SELECT i AS id, i * 1.5 AS x FROM range(120) t(i)) TO '"+filepath.Join(root, "pq.parquet")+"' (ROW_GROUP_SIZE 50)")
}

// TestCrashResume stops a sync at many points, by an error from Ops or by
// cancelling its context, then runs it again: the warehouse must equal an
// uninterrupted run's, rows and deletion flags alike.
func TestCrashResume(t *testing.T) {
	for _, fast := range modes {
		t.Run("fast_path="+fast, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			crashCorpus(t, root)
			cfg := cfgFor(root, "fast_path", fast, "primary_key", `{"keyed": "k"}`, "checkpoint_rows", "40")
			ref := filepath.Join(dir, "ref.db")
			if r := syncDir(t, ref, cfg, syncOpts{}); r.err != nil {
				t.Fatal(r.err)
			}
			tables := []string{"big", "small", "keyed", "pq"}
			rc := openWarehouse(t, ref)
			want := map[string][]string{}
			for _, tb := range tables {
				want[tb] = dump(t, rc, tb)
			}
			rc.Close()
			// Stop points spread over the run's operations (upserts,
			// deletes, file loads), and a context cancelled.
			total := syncDir(t, filepath.Join(dir, "count.db"), cfg, syncOpts{}).ops
			var stops []syncOpts
			for _, k := range []int64{1, 2, 3, total / 7, total / 3, total / 2, total - 2, total - 1, total} {
				if k >= 1 {
					stops = append(stops, syncOpts{failAfter: k})
				}
			}
			stops = append(stops, syncOpts{cancelAfter: max(total/4, 1)}, syncOpts{cancelAfter: total})
			for i, stop := range stops {
				db := filepath.Join(dir, fmt.Sprintf("crash%d.db", i))
				r := syncDir(t, db, cfg, stop)
				if r.err == nil {
					t.Fatalf("stop %+v of %d operations: the sync did not fail", stop, total)
				}
				// A second interruption before the resume.
				syncDir(t, db, cfg, syncOpts{failAfter: max(total/5, 1)})
				if r := syncDir(t, db, cfg, syncOpts{}); r.err != nil {
					t.Fatalf("stop %+v: resume: %v", stop, r.err)
				}
				c := openWarehouse(t, db)
				for _, tb := range tables {
					if got := dump(t, c, tb); !slices.Equal(got, want[tb]) {
						t.Errorf("stop %+v: table %s after the resume:\n%s\nuninterrupted:\n%s", stop, tb, strings.Join(diff(got, want[tb]), "\n"), strings.Join(diff(want[tb], got), "\n"))
					}
				}
				c.Close()
			}
		})
	}
}

// TestCheckpointInsideFile: a sync that stops inside a large file resumes
// after the rows it committed, and does not upsert them again.
func TestCheckpointInsideFile(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	crashCorpus(t, root)
	db := filepath.Join(dir, "w.db")
	cfg := cfgFor(root, "fast_path", "false", "tables", "big", "checkpoint_rows", "40")
	r := syncDir(t, db, cfg, syncOpts{failAfter: 100})
	if r.err == nil {
		t.Fatal("the sync did not fail")
	}
	big := stateFile(t, r.state, "big", "big.csv")
	if big["rows"] != float64(80) || big["done"] != false {
		t.Fatalf("state after the failure: %v, want 80 rows committed, not done", big)
	}
	r = syncDir(t, db, cfg, syncOpts{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.counts["big"].Upserts; got != 170 {
		t.Errorf("the resume upserted %d rows, want the 170 after the 80 committed", got)
	}
	c := openWarehouse(t, db)
	defer c.Close()
	if got := query(t, c, `SELECT count(*) || ' ' || count(DISTINCT _line) FROM files.big WHERE NOT _sluice_deleted`); got != "250 250" {
		t.Errorf("rows, distinct lines: %s", got)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeFile(t, filepath.Join(root, "customers.csv"), "id,name\n1,a\n")
	writeFile(t, filepath.Join(root, "orders.csv"), "id,total\n1,2\n")
	db := filepath.Join(dir, "w.db")
	for _, c := range []struct {
		name string
		cfg  contract.Config
		want []string
	}{
		{"no root", contract.Config{}, []string{`"root"`, "mandatory"}},
		{"missing root", cfgFor(filepath.Join(dir, "nowhere")), []string{filepath.Join(dir, "nowhere"), "does not exist"}},
		{"unknown key", cfgFor(root, "tabels", "x"), []string{`unknown key "tabels"`, "tables"}},
		{"missing table", cfgFor(root, "tables", "customer"), []string{`"customer"`, "closest: customers"}},
		{"bad key json", cfgFor(root, "primary_key", "id"), []string{"primary_key", "JSON object"}},
		{"key for an unlisted table", cfgFor(root, "tables", "orders", "primary_key", `{"customers": "id"}`), []string{`"customers"`, "not among the tables"}},
		{"key column missing", cfgFor(root, "primary_key", `{"orders": "order_id"}`), []string{`"order_id"`, "id, total"}},
		{"bad boolean", cfgFor(root, "fast_path", "yes please"), []string{"fast_path", "not a boolean"}},
		{"bad checkpoint_rows", cfgFor(root, "checkpoint_rows", "0"), []string{"checkpoint_rows", "at least 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := syncDir(t, db, c.cfg, syncOpts{})
			if r.err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not say %q", r.err, w)
				}
			}
		})
	}
}

// TestRaggedCSV: a file that does not parse fails the sync naming the file
// and the line; what the checkpoints before it committed stays, and a fixed
// file completes the table.
func TestRaggedCSV(t *testing.T) {
	for _, fast := range modes {
		t.Run("fast_path="+fast, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			writeFile(t, filepath.Join(root, "t", "a.csv"), "id,v\n1,x\n2,y\n")
			// The ragged line comes after the rows the reader sniffs.
			var b strings.Builder
			b.WriteString("id,v\n")
			for i := 1; i <= 1100; i++ {
				fmt.Fprintf(&b, "%d,v%d\n", i, i)
			}
			good := b.String()
			writeFile(t, filepath.Join(root, "t", "b.csv"), good+"1101,y,z\n1102,w\n")
			db := filepath.Join(dir, "w.db")
			cfg := cfgFor(root, "fast_path", fast, "checkpoint_rows", "500")
			r := syncDir(t, db, cfg, syncOpts{})
			if r.err == nil {
				t.Fatal("no error for a ragged line")
			}
			for _, w := range []string{"b.csv", "line 1102", "3 fields where the first record has 2"} {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not say %q", r.err, w)
				}
			}
			// Row by row, checkpoints every 500 rows committed a.csv and
			// 998 rows of b.csv; the fast path loads b.csv whole or not
			// at all, in the transaction that also held a.csv. Through
			// Arrow (a build with duckdb_arrow) it declines the file,
			// whose rows are then upserted: row by row.
			want := "0"
			if fast == "false" || slices.ContainsFunc(r.declined, func(s string) bool { return strings.HasPrefix(s, "b.csv: the file does not read") }) {
				want = "1000"
			}
			c := openWarehouse(t, db)
			got := query(t, c, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'files' AND table_name = 't'`)
			if got == "1" {
				got = query(t, c, `SELECT count(*) FROM files.t`)
			}
			c.Close()
			if got != want {
				t.Errorf("committed rows: %s, want %s", got, want)
			}
			writeFile(t, filepath.Join(root, "t", "b.csv"), good+"1101,y\n")
			touch(t, filepath.Join(root, "t", "b.csv"), 2e9)
			if r := syncDir(t, db, cfg, syncOpts{}); r.err != nil {
				t.Fatal(r.err)
			}
			c = openWarehouse(t, db)
			defer c.Close()
			if got := query(t, c, `SELECT count(*) || ' ' || max(_line) FILTER (WHERE _file = 't/b.csv') FROM files.t WHERE NOT _sluice_deleted`); got != "1103 1101" {
				t.Errorf("after the fix: rows, last line of b.csv: %s", got)
			}
		})
	}
}

// TestWidening: a CSV column that meets text after the sample widens to
// STRING in the warehouse, and the next run keeps it.
func TestWidening(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	var b strings.Builder
	b.WriteString("id,v\n")
	for i := 1; i <= 1200; i++ {
		fmt.Fprintf(&b, "%d,%d\n", i, i)
	}
	b.WriteString("1201,n/a\n")
	writeFile(t, filepath.Join(root, "w", "1.csv"), b.String())
	db := filepath.Join(dir, "w.db")
	cfg := cfgFor(root)
	r := syncDir(t, db, cfg, syncOpts{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.declined) != 1 || !strings.Contains(r.declined[0], "does not read") {
		t.Errorf("declined: %q", r.declined)
	}
	writeFile(t, filepath.Join(root, "w", "2.csv"), "id,v\n1,5\n")
	if r := syncDir(t, db, cfg, syncOpts{}); r.err != nil {
		t.Fatalf("second run: %v", r.err)
	}
	c := openWarehouse(t, db)
	defer c.Close()
	if got := query(t, c, `SELECT string_agg(v, ',' ORDER BY _file, _line) FILTER (WHERE _line IN (1, 1201)) FROM files.w`); got != "1,n/a,5" {
		t.Errorf("values: %s", got)
	}
	if got := strings.Join(columnTypes(t, c, "w"), " "); !strings.Contains(got, "v:VARCHAR") {
		t.Errorf("columns: %s", got)
	}
}

func TestS3(t *testing.T) {
	root, opts := s3test.Start(t)
	ctx := context.Background()
	st, err := filestore.Open(ctx, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(key, content string) {
		t.Helper()
		w, err := st.Create(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	put("raw/users.csv", "id,name\n1,ann\n2,bo\n")
	put("raw/events/day=2024-03-01/a.csv", "n,what\n1,open\n")
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	cfg := cfgFor(root+"/raw", "endpoint", opts.Endpoint, "region", opts.Region, "path_style", "true",
		"access_key_id", opts.AccessKeyID, "secret_access_key", opts.SecretAccessKey, "primary_key", `{"users": "id"}`)
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	r := syncDir(t, db, cfg, syncOpts{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.loads != 0 || r.counts["users"].Upserts != 2 || r.counts["events"].Upserts != 1 {
		t.Errorf("loads %d, counts %+v: want S3 files upserted row by row", r.loads, r.counts)
	}
	if e := stateFile(t, r.state, "users", "users.csv"); e["etag"] == "" || e["etag"] == nil {
		t.Errorf("state of users.csv has no ETag: %v", e)
	}
	// Incremental by ETag and size.
	put("raw/users.csv", "id,name\n1,ann\n2,bob\n")
	r2 := syncDir(t, db, cfg, syncOpts{})
	if r2.err != nil || r2.counts["users"].Upserts != 2 || r2.counts["events"].Upserts != 0 {
		t.Errorf("second sync: %v, counts %+v", r2.err, r2.counts)
	}
	// Errors: a missing table, and a wrong secret.
	bad := syncDir(t, db, cfgFor(root+"/raw", "endpoint", opts.Endpoint, "region", opts.Region, "path_style", "true",
		"access_key_id", opts.AccessKeyID, "secret_access_key", opts.SecretAccessKey, "tables", "user"), syncOpts{})
	if bad.err == nil || !strings.Contains(bad.err.Error(), "closest: users") {
		t.Errorf("missing table: %v", bad.err)
	}
	wrong := opts.SecretAccessKey + "x"
	denied := syncDir(t, filepath.Join(dir, "w2.db"), cfgFor(root+"/raw", "endpoint", opts.Endpoint, "region", opts.Region, "path_style", "true",
		"access_key_id", opts.AccessKeyID, "secret_access_key", wrong), syncOpts{})
	if denied.err == nil {
		t.Fatal("a wrong secret key: no error")
	}

	c := openWarehouse(t, db)
	defer c.Close()
	if got := dump(t, c, "users"); !slices.Equal(got, []string{
		"_file=users.csv | _line=1 | _sluice_deleted=false | id=1 | name=ann",
		"_file=users.csv | _line=2 | _sluice_deleted=false | id=2 | name=bob",
	}) {
		t.Errorf("users: %q", got)
	}
	// The secret is nowhere: errors, logs, state, warehouse.
	var everything strings.Builder
	for _, tb := range []string{"users", "events"} {
		everything.WriteString(strings.Join(dump(t, c, tb), "\n"))
	}
	everything.WriteString(query(t, c, `SELECT string_agg(state::VARCHAR, ' ') FROM files._sluice_state`))
	state, _ := json.Marshal(r2.state)
	everything.Write(state)
	everything.WriteString(bad.err.Error() + denied.err.Error() + logs.String())
	for _, secret := range []string{opts.SecretAccessKey, wrong} {
		if strings.Contains(everything.String(), secret) {
			t.Errorf("the secret access key appears in the outputs")
		}
	}
	if got := Secrets(cfg); !slices.Equal(got, []string{opts.SecretAccessKey}) {
		t.Errorf("Secrets: %d values, want the secret access key", len(got))
	}
}

// plainOps is Ops without any optional capability.
type plainOps struct{ e *engine.Engine }

func (p plainOps) Upsert(t string, r map[string]any) error { return p.e.Upsert(t, r) }
func (p plainOps) Update(t string, r map[string]any) error { return p.e.Update(t, r) }
func (p plainOps) Delete(t string, r map[string]any) error { return p.e.Delete(t, r) }
func (p plainOps) Truncate(t string) error                 { return p.e.Truncate(t) }
func (p plainOps) Checkpoint(s any) error                  { return p.e.Checkpoint(s) }

// TestWithoutCapabilities: over Ops with neither ColumnDeclarer nor
// FileLoader the connector still syncs, with types inferred from values.
func TestWithoutCapabilities(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeFile(t, filepath.Join(root, "t.csv"), "id,name,amount\n1,a,1.50\n2,b,2.25\n")
	ctx := context.Background()
	dest, err := duckdb.Open(ctx, filepath.Join(dir, "w.db"), Name, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	c, cfg := Connector(), cfgFor(root)
	declared, err := c.Schema(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(dest, engine.Options{})
	if err := e.Start(ctx, declared, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, cfg, contract.State{}, plainOps{e}); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.TableCounts(); len(got) != 1 || got[0].Upserts != 2 {
		t.Errorf("counts: %+v", got)
	}
}
