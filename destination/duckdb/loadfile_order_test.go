package duckdb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestCSVLoadNumbersByPosition: a fresh CSV load on two threads or more
// numbers every row by its position in the file, whether the file is read
// whole, its numbered rows materialized (materializeRows), or cut into
// parts numbered by sluice (loadInParts). The file is
// large enough that DuckDB reads it in many buffers and inserts on every
// thread, every row carries its own position, and some rows hold quoted
// line ends, so that a record's position is not its physical line and a
// cut that ignored quotes would split a record.
func TestCSVLoadNumbersByPosition(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	if testing.Short() {
		t.Skip("writes a 600,000-row file")
	}
	const rows = 600_000
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
			// A line end in quotes every so often, and one where a
			// cut would fall on a file of this size.
			note = fmt.Sprintf("\"row\n%d, \"\"quoted\"\"\"", i)
		}
		if i >= rows/2-3 && i <= rows/2+3 {
			note = fmt.Sprintf("\"%s\n\n%d\n\"", strings.Repeat("x", 4000), i)
		}
		fmt.Fprintf(w, "%d,%s,%d.5\n", i, note, i%97)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, arrow := range fastPaths() {
		for _, c := range []struct {
			name    string
			minPart int64
			threads string // "" for the sync's default, widened for the load
			parts   int
		}{
			{"whole", 1 << 40, "", 1},
			{"two parts", 1 << 20, "", 2},
			{"three parts", 1 << 20, "3", 3},
		} {
			t.Run(pathName(arrow)+" "+c.name, func(t *testing.T) {
				defer func(m int64) { minCSVPart = m }(minCSVPart)
				minCSVPart = c.minPart
				useArrow(t, arrow)
				loadNumbered(t, path, rows, Settings{Threads: c.threads}, c.parts)
			})
		}
	}
}

// fastPaths lists the ways this build has to load a fresh CSV file fast:
// without Arrow (in numbered parts, or whole and materialized), and
// through Arrow where the build has it (csvarrow.go).
func fastPaths() []bool {
	if arrowLoads {
		return []bool{false, true}
	}
	return []bool{false}
}

func pathName(arrow bool) string {
	if arrow {
		return "arrow"
	}
	return "sql"
}

// useArrow sets whether t's loads go through Arrow.
func useArrow(t *testing.T, on bool) {
	old := arrowLoads
	t.Cleanup(func() { arrowLoads = old })
	arrowLoads = on
}

func loadNumbered(t *testing.T, path string, rows int64, s Settings, parts int) {
	ctx := context.Background()
	d, tx, load := openBig(t, path, s)
	if arrowLoads {
		// Through Arrow, in as many parts as DuckDB's threads.
		var logged bytes.Buffer
		defer slog.SetDefault(slog.Default())
		slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
		res, err := tx.LoadFile(ctx, load)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Handled || res.Rows != rows {
			t.Fatalf("load: %+v, want %d rows handled", res, rows)
		}
		if want := fmt.Sprintf("loaded a CSV file through Arrow\" file=%s parts=%d rows=%d\n", path, parts, rows); !strings.HasSuffix(logged.String(), want) {
			t.Errorf("the load logged %q, want it to end %q", logged.String(), want)
		}
		checkNumbered(t, tx, rows)
		return
	}

	// The load takes the path asked for: in parts, as many as DuckDB's
	// threads, or whole and materialized.
	restore, err := tx.widenForLoad(ctx, csvLoadMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	if parts > 1 {
		threads, err := tx.threads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		feed, err := feedCSV(ctx, load, threads)
		if err != nil {
			t.Fatal(err)
		}
		if feed == nil || len(feed.paths) != parts {
			t.Fatalf("feed %+v, want %d parts", feed, parts)
		}
		feed.close()
	} else {
		if csvPartsFit(load) {
			t.Fatal("the file is to be loaded whole, and csvPartsFit says parts")
		}
		_, src := bigSource(t, d, tx, load, false)
		if err := tx.materializeRows(ctx, &src); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(src.rows, "MATERIALIZED") {
			t.Errorf("two threads, and the rows are not materialized: %s", src.rows)
		}
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}

	// A load in parts that fails its check says so, and loads whole.
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	res, err := tx.LoadFile(ctx, load)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Handled || res.Rows != rows {
		t.Fatalf("load: %+v, want %d rows handled", res, rows)
	}
	if logged.Len() > 0 {
		t.Errorf("the load logged: %s", logged.String())
	}
	checkNumbered(t, tx, rows)
}

// checkNumbered checks the rows of s.big that loadNumbered loads.
func checkNumbered(t *testing.T, tx *tx, rows int64) {
	t.Helper()
	ctx := context.Background()
	var n, wrong, lines int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE _line IS DISTINCT FROM pos), count(DISTINCT _line) FROM s.big`).Scan(&n, &wrong, &lines); err != nil {
		t.Fatal(err)
	}
	if n != rows || wrong != 0 || lines != rows {
		t.Errorf("%d rows, %d with _line other than their position, %d distinct _line; want %d, 0, %d", n, wrong, lines, rows, rows)
	}
	for line, want := range map[int64]string{
		5000:       "row\n5000, \"quoted\"",
		rows / 2:   strings.Repeat("x", 4000) + fmt.Sprintf("\n\n%d\n", rows/2),
		rows/2 + 4: fmt.Sprintf("row %d", rows/2+4),
	} {
		var note string
		if err := tx.tx.QueryRowContext(ctx, `SELECT note FROM s.big WHERE _line = ?`, line).Scan(&note); err != nil {
			t.Fatal(err)
		}
		if note != want {
			t.Errorf("line %d: note %.40q, want %.40q", line, note, want)
		}
	}
}

// TestLoadInPartsFallsBack: rows loaded in parts that are not numbered 1 to
// n are deleted, and the file is then loaded whole, in the same
// transaction. The parts here are numbered one too high.
func TestLoadInPartsFallsBack(t *testing.T) {
	useArrow(t, false)
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	const rows = 20_000
	var b strings.Builder
	b.WriteString("pos,note,v\n")
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "%d,\"row\n%d\",%d.5\n", i, i, i%97)
	}
	ctx := context.Background()
	d, tx, load := smallLoad(t, b.String())
	restore, err := tx.widenForLoad(ctx, csvLoadMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	target, src := bigSource(t, d, tx, load, false)
	_, wrong := bigSource(t, d, tx, load, true)
	right := wrong.out
	wrong.out = strings.Replace(wrong.out, "_sluice_rn AS "+src.rn, "_sluice_rn + 1 AS "+src.rn, 1)
	if wrong.out == right {
		t.Fatalf("no row number in %s", right)
	}
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	if _, done, err := tx.loadInParts(ctx, target, load, wrong); err != nil || done {
		t.Fatalf("loadInParts: done %t, %v; want not done", done, err)
	}
	if !strings.Contains(logged.String(), "loading it whole") {
		t.Errorf("the fallback logged %q", logged.String())
	}
	var left int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM s.big`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left after the fallback, %v", left, err)
	}
	res, err := tx.insertFresh(ctx, target, load, src)
	if err != nil || !res.Handled || res.Rows != rows {
		t.Fatalf("whole load after the fallback: %+v, %v", res, err)
	}
	var n, bad int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE _line IS DISTINCT FROM pos OR note <> 'row' || chr(10) || pos) FROM s.big`).Scan(&n, &bad); err != nil {
		t.Fatal(err)
	}
	if n != rows || bad != 0 {
		t.Errorf("%d rows, %d not at their position; want %d, 0", n, bad, rows)
	}
}

// smallLoad writes body as big.csv, and opens a transaction that has the
// table big to load it into, in parts of 1 KiB and more.
func smallLoad(t *testing.T, body string) (*DB, *tx, destination.FileLoad) {
	t.Helper()
	m := minCSVPart
	t.Cleanup(func() { minCSVPart = m })
	minCSVPart = 1 << 10
	path := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return openBig(t, path, Settings{})
}

// openBig opens a transaction that has the table big, keyed by _file and
// _line, and returns the load of the file at path (pos,note,v) into it.
func openBig(t *testing.T, path string, s Settings) (*DB, *tx, destination.FileLoad) {
	t.Helper()
	d, tx := openTestTx(t, s)
	tbl := destination.Table{
		Name:       "big",
		PrimaryKey: []string{"_file", "_line"},
		Columns: []destination.Column{
			{Name: "_file", Type: contract.String}, {Name: "_line", Type: contract.Long},
			{Name: "pos", Type: contract.Long}, {Name: "note", Type: contract.String}, {Name: "v", Type: contract.Double},
		},
	}
	if err := tx.Apply(context.Background(), []destination.SchemaChange{{Kind: destination.CreateTable, Table: tbl}}); err != nil {
		t.Fatal(err)
	}
	return d, tx, destination.FileLoad{
		Table: "big", Path: path, Format: contract.FileCSV,
		CSV: contract.CSVDialect{Delimiter: ',', Quote: '"', Header: true},
		Columns: []destination.Column{
			{Name: "pos", Type: contract.Long}, {Name: "note", Type: contract.String}, {Name: "v", Type: contract.Double},
		},
		Constants: []destination.FileConstant{{Column: destination.Column{Name: "_file", Type: contract.String}, Value: "big.csv"}},
		RowNumber: "_line",
	}
}

// bigSource is the table big and the SELECT loading load into it, typed
// for a load in parts.
func bigSource(t *testing.T, d *DB, tx *tx, load destination.FileLoad, typed bool) (*destination.Table, source) {
	t.Helper()
	target, err := d.target("big")
	if err != nil {
		t.Fatal(err)
	}
	src, reason, err := tx.loadSource(context.Background(), target, load, typed)
	if err != nil || reason != "" {
		t.Fatalf("loadSource: %q, %v", reason, err)
	}
	return target, src
}

// plainRows is a CSV file of rows records "pos,row pos,pos%97.5", record at
// written as line instead.
func plainRows(rows, at int, line string) string {
	var b strings.Builder
	b.WriteString("pos,note,v\n")
	for i := 1; i <= rows; i++ {
		if i == at {
			b.WriteString(line)
			continue
		}
		fmt.Fprintf(&b, "%d,row %d,%d.5\n", i, i, i%97)
	}
	return b.String()
}

// TestLoadInPartsBadRecord: a record DuckDB cannot read in the last part
// fails the load with DuckDB's error naming the file, and the part's
// copy, which DuckDB stopped reading, ends.
func TestLoadInPartsBadRecord(t *testing.T) {
	useArrow(t, false)
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	_, tx, load := smallLoad(t, plainRows(20_000, 19_000, "19000,ragged,1.5,extra\n"))
	if !csvPartsFit(load) {
		t.Fatal("the file is not to be loaded in parts")
	}
	_, err := tx.LoadFile(context.Background(), load)
	if err == nil || !strings.Contains(err.Error(), load.Path) {
		t.Fatalf("load of a ragged file: %v", err)
	}
}

// TestLoadInPartsLoneCR: a carriage return that ends no line stops the
// copies, whether the cut finds it (in the first part, while that part is
// copied) or the last part's copy does; the rows loaded are deleted and
// the file goes to the whole load, which fails as it did before parts:
// DuckDB's strict reader refuses the file, and the files connector then
// reads it itself to say what is wrong.
func TestLoadInPartsLoneCR(t *testing.T) {
	useArrow(t, false)
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	for _, at := range []int{1_000, 19_000} {
		d, tx, load := smallLoad(t, plainRows(20_000, at, fmt.Sprintf("\r%d,row %d,85.5\n", at, at)))
		ctx := context.Background()
		restore, err := tx.widenForLoad(ctx, csvLoadMemoryLimit)
		if err != nil {
			t.Fatal(err)
		}
		target, src := bigSource(t, d, tx, load, true)
		if _, done, err := tx.loadInParts(ctx, target, load, src); err != nil || done {
			t.Fatalf("record %d: loadInParts: done %t, %v; want not done", at, done, err)
		}
		var left int64
		if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM s.big`).Scan(&left); err != nil || left != 0 {
			t.Fatalf("record %d: %d rows left, %v", at, left, err)
		}
		if err := restore(); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.LoadFile(ctx, load); err == nil || !strings.Contains(err.Error(), "DuckDB reading "+load.Path) {
			t.Fatalf("record %d: load: %v, want DuckDB's error on the whole file", at, err)
		}
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
