package main

// The connector is exercised twice: through the Go API (sdk.OpenDataset),
// as a connector's own unit tests would, and as a built program, as a user
// runs it.

import (
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/examples/internal/progtest"
	"github.com/sluicedata/sluice/sdk"
)

var program string // the built connector

func TestMain(m *testing.M) { progtest.Main(m, "dataset-csv", &program) }

func rows(rs ...sdk.Row) iter.Seq2[sdk.Row, error] {
	return func(yield func(sdk.Row, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// wantFolder checks the folder holds exactly these files (no temporary
// ones left behind) with this content.
func wantFolder(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("folder %s:\n got %q\nwant %q", dir, got, want)
	}
}

func TestFolderGoAPI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h, err := sdk.OpenDataset(folder{}, sdk.Config{"folder": dir})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := h.Count(ctx, ""); n != 0 || err != nil {
		t.Errorf("Count of an empty folder = %d, %v", n, err)
	}

	// An empty folder has no schema: the first write's columns make it.
	res, err := h.Write(ctx, sdk.WriteOptions{Partition: "2024-03-01", Columns: []string{"id", "name"}},
		rows(sdk.Row{"id": 1, "name": "Ada"}, sdk.Row{"id": 2, "name": nil}))
	if err != nil || res.Rows != 2 {
		t.Fatalf("Write = %+v, %v", res, err)
	}
	_, err = h.Write(ctx, sdk.WriteOptions{Partition: "2024-03-01", Mode: sdk.Append}, rows(sdk.Row{"name": "Grace", "id": 3}))
	if err != nil {
		t.Fatal(err)
	}
	wantFolder(t, dir, map[string]string{"2024-03-01.csv": "id,name\n1,Ada\n2,\n3,Grace\n"})

	var got []sdk.Row
	if _, err := h.Read(ctx, sdk.ReadOptions{Partition: "2024-03-01"}, func(r sdk.Row) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []sdk.Row{{"id": "1", "name": "Ada"}, {"id": "2", "name": nil}, {"id": "3", "name": "Grace"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read = %v, want %v", got, want)
	}
	if n, err := h.Count(ctx, "2024-03-01"); n != 3 || err != nil {
		t.Errorf("Count = %d, %v", n, err)
	}
	if ok, err := h.PartitionExists(ctx, "2024-03-02"); ok || err != nil {
		t.Errorf("PartitionExists(2024-03-02) = %v, %v", ok, err)
	}
	if ps, err := h.Partitions(ctx); err != nil || len(ps) != 1 || ps[0].ID != "2024-03-01" {
		t.Errorf("Partitions = %v, %v", ps, err)
	}

	// A failed write, overwriting or appending, leaves the file as it was
	// and no temporary file behind.
	for _, mode := range []sdk.WriteMode{sdk.Overwrite, sdk.Append} {
		_, err := h.Write(ctx, sdk.WriteOptions{Partition: "2024-03-01", Mode: mode},
			rows(sdk.Row{"id": 9, "name": "ok"}, sdk.Row{"id": 10, "email": "x@y"}))
		if err == nil || !strings.Contains(err.Error(), `write row 2: column "email" is not one of the folder's columns (id, name)`) {
			t.Errorf("%s with a new column: %v", mode, err)
		}
	}
	_, err = h.Write(ctx, sdk.WriteOptions{Partition: "2024-03"}, rows())
	if !errors.Is(err, sdk.ErrBadPartitionID) {
		t.Errorf("write to a malformed id: %v", err)
	}
	wantFolder(t, dir, map[string]string{"2024-03-01.csv": "id,name\n1,Ada\n2,\n3,Grace\n"})

	semi := t.TempDir()
	h, err = sdk.OpenDataset(folder{}, sdk.Config{"folder": semi, "delimiter": "semicolon"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Write(ctx, sdk.WriteOptions{Partition: "2024-03-02"}, rows(sdk.Row{"a": "1,5"})); err != nil {
		t.Fatal(err)
	}
	wantFolder(t, semi, map[string]string{"2024-03-02.csv": "a\n1,5\n"})

	if _, err := sdk.OpenDataset(folder{}, sdk.Config{"delimiter": "pipe"}); err == nil ||
		!strings.Contains(err.Error(), `parameter "folder" (Folder of CSV files) is mandatory`) ||
		!strings.Contains(err.Error(), `parameter "delimiter" (Field delimiter): "pipe" is not one of the choices: comma, semicolon, tab`) {
		t.Errorf("bad configuration: %v", err)
	}
}

type result = progtest.Result

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return progtest.Run(t, program, dir, args...)
}

func TestFolderCommandLine(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	for name, content := range map[string]string{
		"configuration.json": `{"folder": "data"}`,
		"sales.csv":          "id,name,amount\n1,Ada,10.50\n2,,3\n",
		"more.jsonl":         `{"amount": 7, "id": 3, "name": "Linus"}` + "\n",
		"bad.csv":            "id,name,discount\n4,Ken,5\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"write", "--partition", "2024-03-01", "sales.csv"}, "wrote 2 rows to partition 2024-03-01 (OVERWRITE)\n"},
		{[]string{"write", "sales.csv", "--partition", "2024-03-02"}, "wrote 2 rows to partition 2024-03-02 (OVERWRITE)\n"},
		{[]string{"write", "--partition", "2024-03-02", "--append", "more.jsonl"}, "wrote 1 row to partition 2024-03-02 (APPEND)\n"},
		{[]string{"partitions"}, "2024-03-01\n2024-03-02\n"},
		{[]string{"count"}, "5\n"},
		{[]string{"count", "--partition", "2024-03-02"}, "3\n"},
		{[]string{"count", "--partition", "2024-03-03"}, "0\n"},
		{[]string{"read", "--partition", "2024-03-02", "--format", "csv"}, "id,name,amount\n1,Ada,10.50\n2,,3\n3,Linus,7\n"},
		{[]string{"read", "--limit", "2"}, "id  name  amount\n1   Ada   10.50\n2   NULL  3\n(2 rows)\n"},
	} {
		r := run(t, dir, tc.args...)
		if r.Code != 0 || r.Stdout != tc.out {
			t.Errorf("%q: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", tc.args, r.Code, r.Stdout, tc.out, r.Stderr)
		}
	}
	files := map[string]string{
		"2024-03-01.csv": "id,name,amount\n1,Ada,10.50\n2,,3\n",
		"2024-03-02.csv": "id,name,amount\n1,Ada,10.50\n2,,3\n3,Linus,7\n",
	}
	wantFolder(t, data, files)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"write", "--partition", "2024-03-01", "bad.csv"}, 1, `write: dataset "csv_folder": write row 1: column "discount" is not one of the folder's columns (id, name, amount)`},
		{[]string{"write", "--partition", "2024-03-01", "--append", "bad.csv"}, 1, `column "discount" is not one of the folder's columns`},
		{[]string{"write", "--partition", "2024-03", "sales.csv"}, 1, `write: malformed partition id "2024-03": dimension "day" (DAY) wants YYYY-MM-DD, got "2024-03"; for example "2024-03-01"`},
		{[]string{"write", "sales.csv"}, 1, `dataset "csv_folder" is partitioned (day (DAY)): name the partition to write, like "2024-03-01"`},
		{[]string{"read", "--partition", "2024-03-01|FR"}, 1, `read: malformed partition id "2024-03-01|FR": want one value (day), without "|", got 2; for example "2024-03-01"`},
		{[]string{"read", "--partition", "2024-03-09"}, 1, `read: dataset "csv_folder": read rows: open data/2024-03-09.csv: no such file or directory`},
	} {
		r := run(t, dir, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant %d and %q", tc.args, r.Code, r.Stderr, tc.code, tc.want)
		}
	}
	wantFolder(t, data, files) // the failed writes changed nothing

	r := run(t, dir, "describe")
	for _, want := range []string{
		"capabilities: read rows, read schema, write rows, list partitions, partition exists, records count\n",
		"write modes: OVERWRITE, APPEND\n",
		"schema:\n  id      STRING\n  name    STRING\n  amount  STRING\n",
	} {
		if r.Code != 0 || !strings.Contains(r.Stdout, want) {
			t.Errorf("describe lacks %q: exit %d, stdout:\n%s\nstderr:\n%s", want, r.Code, r.Stdout, r.Stderr)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, "count"); r.Code != 1 || !strings.Contains(r.Stderr, `parameter "folder" (Folder of CSV files) is mandatory: set "folder" in the configuration`) {
		t.Errorf("no folder: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
}

// Parquet files go in and out through the command line, typed values
// becoming the folder's text.
func TestFolderParquet(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(`{"folder": "data"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := duckdb.OpenDB(ctx, "", duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `COPY (SELECT * FROM (VALUES (1, 'Ada, "AL"', 10.50::DECIMAL(10,2)), (2, NULL, 3::DECIMAL(10,2)), (3, 'Linus', NULL))
		AS t(id, name, amount)) TO '`+filepath.Join(dir, "sales.parquet")+`' (FORMAT parquet)`)
	if err != nil {
		t.Fatal(err)
	}

	r := run(t, dir, "write", "--partition", "2024-03-01", "sales.parquet")
	if r.Code != 0 || r.Stdout != "wrote 3 rows to partition 2024-03-01 (OVERWRITE)\n" {
		t.Fatalf("write parquet: exit %d, stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	sales := "id,name,amount\n1,\"Ada, \"\"AL\"\"\",10.50\n2,,3.00\n3,Linus,\n"
	wantFolder(t, data, map[string]string{"2024-03-01.csv": sales})

	// Out to Parquet and back into another partition: the same rows.
	r = run(t, dir, "read", "--partition", "2024-03-01", "-o", "out.parquet")
	if r.Code != 0 || !strings.Contains(r.Stderr, "read 3 rows into out.parquet") {
		t.Fatalf("read -o out.parquet: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	r = run(t, dir, "write", "out.parquet", "--partition", "2024-03-02", "--append")
	if r.Code != 0 || r.Stdout != "wrote 3 rows to partition 2024-03-02 (APPEND)\n" {
		t.Fatalf("write out.parquet: exit %d, stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	wantFolder(t, data, map[string]string{"2024-03-01.csv": sales, "2024-03-02.csv": sales})

	// A file that is not Parquet: a clear error naming it, and no change.
	if err := os.WriteFile(filepath.Join(dir, "fake.parquet"), []byte("id,name,amount\n9,Ken,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, "write", "--partition", "2024-03-01", "fake.parquet")
	if r.Code != 1 || !strings.Contains(r.Stderr, "write: read Parquet file fake.parquet: ") {
		t.Errorf("write fake.parquet: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	wantFolder(t, data, map[string]string{"2024-03-01.csv": sales, "2024-03-02.csv": sales})
}
