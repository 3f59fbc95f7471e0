package duckdb

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestCSVLoadNumbersByPosition: a fresh CSV load on two threads, its rows
// materialized before the INSERT (materializeRows), numbers every row by
// its position in the file. The file is large enough that DuckDB reads it
// in many buffers and inserts on both threads, every row carries its own
// position, and some rows hold quoted line ends, so that a record's
// position is not its physical line.
func TestCSVLoadNumbersByPosition(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	if testing.Short() {
		t.Skip("writes a 600,000-row file")
	}
	const rows = 600_000
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "big.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "pos,note,v")
	for i := 1; i <= rows; i++ {
		note := fmt.Sprintf("row %d", i)
		if i%1000 == 0 {
			note = fmt.Sprintf("\"row\n%d, \"\"quoted\"\"\"", i)
		}
		fmt.Fprintf(w, "%d,%s,%d.5\n", i, note, i%97)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	tbl := destination.Table{
		Name:       "big",
		PrimaryKey: []string{"_file", "_line"},
		Columns: []destination.Column{
			{Name: "_file", Type: contract.String}, {Name: "_line", Type: contract.Long},
			{Name: "pos", Type: contract.Long}, {Name: "note", Type: contract.String}, {Name: "v", Type: contract.Double},
		},
	}
	d, tx := openTestTx(t, Settings{})
	if err := tx.Apply(ctx, []destination.SchemaChange{{Kind: destination.CreateTable, Table: tbl}}); err != nil {
		t.Fatal(err)
	}
	load := destination.FileLoad{
		Table:  "big",
		Path:   path,
		Format: contract.FileCSV,
		CSV:    contract.CSVDialect{Delimiter: ',', Quote: '"', Header: true},
		Columns: []destination.Column{
			{Name: "pos", Type: contract.Long}, {Name: "note", Type: contract.String}, {Name: "v", Type: contract.Double},
		},
		Constants: []destination.FileConstant{{Column: destination.Column{Name: "_file", Type: contract.String}, Value: "big.csv"}},
		RowNumber: "_line",
	}

	// The load takes the materialized path: two threads while it runs.
	restore, err := tx.widenForLoad(ctx, loadMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	target, err := d.target("big")
	if err != nil {
		t.Fatal(err)
	}
	src, reason, err := tx.loadSource(ctx, target, load)
	if err != nil || reason != "" {
		t.Fatalf("loadSource: %q, %v", reason, err)
	}
	if err := tx.materializeRows(ctx, &src); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src.rows, "MATERIALIZED") {
		t.Errorf("two threads, and the rows are not materialized: %s", src.rows)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}

	res, err := tx.LoadFile(ctx, load)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Handled || res.Rows != rows {
		t.Fatalf("load: %+v, want %d rows handled", res, rows)
	}
	var n, wrong, lines int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE _line IS DISTINCT FROM pos), count(DISTINCT _line) FROM s.big`).Scan(&n, &wrong, &lines); err != nil {
		t.Fatal(err)
	}
	if n != rows || wrong != 0 || lines != rows {
		t.Errorf("%d rows, %d with _line other than their position, %d distinct _line; want %d, 0, %d", n, wrong, lines, rows, rows)
	}
	var note string
	if err := tx.tx.QueryRowContext(ctx, `SELECT note FROM s.big WHERE _line = 5000`).Scan(&note); err != nil {
		t.Fatal(err)
	}
	if note != "row\n5000, \"quoted\"" {
		t.Errorf("line 5000: note %q", note)
	}
}

// A CSV file materializes only while its spill stays within spillLimit,
// a gzipped one counted at spillGzipFactor times its size; a file that
// cannot be read does not.
func TestSpillFits(t *testing.T) {
	dir := t.TempDir()
	sized := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		path string
		gzip bool
		want bool
	}{
		{sized("small.csv", 1<<20), false, true},
		{sized("limit.csv", spillLimit), false, true},
		{sized("over.csv", spillLimit+1), false, false},
		{sized("small.csv.gz", spillLimit/spillGzipFactor), true, true},
		{sized("big.csv.gz", spillLimit/spillGzipFactor+1), true, false},
		{filepath.Join(dir, "missing.csv"), false, false},
	} {
		f := destination.FileLoad{Path: c.path, CSV: contract.CSVDialect{Gzip: c.gzip}}
		if got := spillFits(f); got != c.want {
			t.Errorf("%s (gzip %v): spillFits %v, want %v", filepath.Base(c.path), c.gzip, got, c.want)
		}
	}
}
