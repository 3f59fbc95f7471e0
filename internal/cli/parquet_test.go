package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/internal/contract"
)

// typedSet is an unpartitioned dataset with a column of each kind; its
// writer keeps what it is given.
type typedSet struct {
	rows    []contract.Row
	written []contract.Row
}

var typedSchema = []contract.Column{
	{Name: "id", Type: contract.Long},
	{Name: "amount", Type: contract.Decimal, Precision: 10, Scale: 2},
	{Name: "price", Type: contract.Double},
	{Name: "ok", Type: contract.Boolean},
	{Name: "at", Type: contract.UTCDateTime},
	{Name: "day", Type: contract.NaiveDate},
	{Name: "raw", Type: contract.Binary},
	{Name: "doc", Type: contract.JSON},
	{Name: "name", Type: contract.String},
}

func newTypedSet() *typedSet {
	paris := time.FixedZone("CET", 3600)
	return &typedSet{rows: []contract.Row{
		{"id": int64(1), "amount": contract.DecimalText("12.50"), "price": 0.1, "ok": true,
			"at": time.Date(2024, 3, 1, 10, 30, 0, 123456000, paris), "day": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
			"raw": []byte{0, 255, 'A'}, "doc": map[string]any{"a": 1, "b": []any{"x"}}, "name": "Ada, \"AL\"\n'quoted'"},
		{"id": json.Number("12345678901234567"), "amount": nil, "price": -2.5, "ok": false},
		// A column that is not in the schema is kept, and typed from its
		// values; a string in a LONG column is cast.
		{"id": "3", "note": "late"},
	}}
}

func (s *typedSet) Info() contract.DatasetInfo { return contract.DatasetInfo{Name: "typed"} }

func (s *typedSet) ReadSchema(context.Context, contract.Config) ([]contract.Column, error) {
	return typedSchema, nil
}

func (s *typedSet) ReadRows(_ context.Context, _ contract.ReadRequest, emit func(contract.Row) error) error {
	for _, r := range s.rows {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

type typedWriter struct {
	s    *typedSet
	rows []contract.Row
}

func (s *typedSet) OpenWriter(context.Context, contract.WriteRequest) (contract.Writer, error) {
	return &typedWriter{s: s}, nil
}

func (w *typedWriter) Write(_ context.Context, row contract.WriteRow) error {
	r := contract.Row{}
	for k, v := range row.Values {
		r[k] = v
	}
	for k, v := range row.Extra {
		r["extra."+k] = v
	}
	w.rows = append(w.rows, r)
	return nil
}

func (w *typedWriter) Close(context.Context) error { w.s.written = w.rows; return nil }
func (w *typedWriter) Abort(context.Context) error { return nil }

// queryParquet runs a query with DuckDB and returns its rows as text.
func queryParquet(t *testing.T, q string, args ...any) [][]string {
	t.Helper()
	ctx := context.Background()
	db, err := duckdb.OpenDB(ctx, "", duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		line := make([]string, len(cols))
		for i, v := range vals {
			line[i] = "NULL"
			if v.Valid {
				line[i] = v.String
			}
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantNames checks dir holds exactly these names: no temporary file left.
func wantNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestDatasetParquetRoundTrip(t *testing.T) {
	s := newTypedSet()
	dir := t.TempDir()
	out := filepath.Join(dir, "typed.parquet")
	r := runShop(t, s, `{}`, "read", "-o", out)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "read 3 rows into "+out) {
		t.Fatalf("read -o parquet: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	wantNames(t, dir, "typed.parquet")
	if fi, err := os.Stat(out); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644) {
		t.Errorf("typed.parquet: %v, %v; want mode 0644 like any export", fi.Mode(), err)
	}

	types := queryParquet(t, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))`, out)
	wantTypes := [][]string{
		{"id", "BIGINT"}, {"amount", "DECIMAL(10,2)"}, {"price", "DOUBLE"}, {"ok", "BOOLEAN"},
		{"at", "TIMESTAMP WITH TIME ZONE"}, {"day", "DATE"}, {"raw", "BLOB"}, {"doc", "JSON"},
		{"name", "VARCHAR"}, {"note", "VARCHAR"},
	}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("Parquet columns:\n%q\nwant:\n%q", types, wantTypes)
	}
	got := queryParquet(t, `SET TimeZone = 'UTC'; SELECT id::VARCHAR, amount::VARCHAR, price::VARCHAR, ok::VARCHAR, "at"::VARCHAR,
		day::VARCHAR, raw::VARCHAR, doc::VARCHAR, name, note FROM read_parquet(?)`, out)
	want := [][]string{
		{"1", "12.50", "0.1", "true", "2024-03-01 09:30:00.123456+00", "2024-03-01", `\x00\xFFA`, `{"a":1,"b":["x"]}`, "Ada, \"AL\"\n'quoted'", "NULL"},
		{"12345678901234567", "NULL", "-2.5", "false", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL"},
		{"3", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "late"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parquet rows:\n%q\nwant:\n%q", got, want)
	}

	// --limit and --format without -o: the file goes to the standard output.
	r = runShop(t, s, `{}`, "read", "--limit", "1", "--format", "parquet")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "PAR1") || !strings.HasSuffix(r.stdout, "PAR1") {
		t.Errorf("read --format parquet: exit %d, %d bytes of stdout, stderr:\n%s", r.code, len(r.stdout), r.stderr)
	}
	piped := filepath.Join(t.TempDir(), "piped.parquet")
	if err := os.WriteFile(piped, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := queryParquet(t, `SELECT count(*), min(id) FROM read_parquet(?)`, piped); !reflect.DeepEqual(got, [][]string{{"1", "1"}}) {
		t.Errorf("piped Parquet: %q", got)
	}

	// Back through write: each value gets the Go type a connector expects.
	r = runShop(t, s, `{}`, "write", out)
	if r.code != 0 || !strings.Contains(r.stdout, "wrote 3 rows to the dataset (OVERWRITE)") ||
		!strings.Contains(r.stdout, `column "note" is not in the schema: 3 values handed to the writer apart`) {
		t.Fatalf("write parquet: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if len(s.written) != 3 {
		t.Fatalf("written %d rows, want 3", len(s.written))
	}
	first := s.written[0]
	wantFirst := contract.Row{
		"id": int64(1), "amount": contract.DecimalText("12.50"), "price": 0.1, "ok": true,
		"at": time.Date(2024, 3, 1, 9, 30, 0, 123456000, time.UTC), "day": time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		"raw": []byte{0, 255, 'A'}, "name": "Ada, \"AL\"\n'quoted'", "extra.note": nil,
	}
	doc := first["doc"]
	delete(first, "doc")
	for k, v := range first {
		if tm, ok := v.(time.Time); ok {
			first[k] = tm.UTC()
		}
	}
	if !reflect.DeepEqual(first, wantFirst) {
		t.Errorf("first written row:\n%#v\nwant:\n%#v", first, wantFirst)
	}
	if b, err := json.Marshal(doc); err != nil || string(b) != `{"a":1,"b":["x"]}` {
		t.Errorf("doc written as %T %s (%v)", doc, b, err)
	}
	if got := s.written[2]; got["id"] != int64(3) || got["extra.note"] != "late" || got["amount"] != nil {
		t.Errorf("third written row: %#v", got)
	}

	// The same file from the standard input.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s.written = nil
	r = runShopIn(t, s, `{}`, string(b), "write", "--format", "parquet", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote 3 rows to the dataset (OVERWRITE)") || len(s.written) != 3 || s.written[2]["extra.note"] != "late" {
		t.Fatalf("write parquet from stdin: exit %d, %d rows, stdout:\n%s\nstderr:\n%s", r.code, len(s.written), r.stdout, r.stderr)
	}
}

func TestDatasetParquetErrors(t *testing.T) {
	// A failed read leaves neither the file nor a temporary one.
	dir := t.TempDir()
	out := filepath.Join(dir, "rows.parquet")
	r := runShop(t, newShop(), `{"login_code": "`+loginCode+`", "region": "us"}`, "read", "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "the US endpoint refused") {
		t.Errorf("failed export: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	wantNames(t, dir)

	// A value the column's type cannot take fails the export, naming the
	// file, and leaves nothing behind.
	s := newTypedSet()
	s.rows = append(s.rows, contract.Row{"id": "three"})
	r = runShop(t, s, `{}`, "read", "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "read: write Parquet file "+out+": ") || !strings.Contains(r.stderr, `'three'`) {
		t.Errorf("bad value: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	wantNames(t, dir)

	notParquet := filepath.Join(dir, "rows.parquet")
	if err := os.WriteFile(notParquet, []byte("id,name\n1,Ada\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shop := newShop()
	before := fmt.Sprint(shop.parts)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"write", "--partition", "2024-03-01|FR", notParquet}, 1, "write: read Parquet file " + notParquet + ": "},
		{[]string{"write", "--partition", "2024-03-01|FR", filepath.Join(dir, "missing.parquet")}, 1, "missing.parquet: no such file"},
		{[]string{"write", "--partition", "2024-03-01|FR", "--format", "parquet", "-"}, 1, "write: read Parquet file "},
		{[]string{"write", "--partition", "2024-03-01|FR", "--format", "xml", notParquet}, 2, `write: unknown format "xml"`},
	} {
		r := runShop(t, shop, shopCfg, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if got := fmt.Sprint(shop.parts); got != before || shop.closes != 0 {
		t.Errorf("failed writes changed the shop: %s, was %s (closes %d)", got, before, shop.closes)
	}
}
