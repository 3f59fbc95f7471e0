package fileformat

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicedata/sluice/internal/contract"
)

// pqPartSink collects the parts SplitParquet writes.
type pqPartSink struct {
	parts  []*bytes.Buffer
	closed []bool
}

type pqSinkWriter struct {
	s *pqPartSink
	i int
}

func (w pqSinkWriter) Write(p []byte) (int, error) { return w.s.parts[w.i].Write(p) }
func (w pqSinkWriter) Close() error {
	if w.s.closed[w.i] {
		return errors.New("closed twice")
	}
	w.s.closed[w.i] = true
	return nil
}

func (s *pqPartSink) next(part int) (io.WriteCloser, error) {
	if part != len(s.parts)+1 {
		return nil, fmt.Errorf("part %d asked after %d", part, len(s.parts))
	}
	s.parts = append(s.parts, new(bytes.Buffer))
	s.closed = append(s.closed, false)
	return pqSinkWriter{s, len(s.parts) - 1}, nil
}

func pqSplit(t testing.TB, b []byte, opts ParquetSplitOptions) [][]byte {
	t.Helper()
	var sink pqPartSink
	n, err := SplitParquet(context.Background(), bytes.NewReader(b), int64(len(b)), opts, sink.next)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(sink.parts) {
		t.Fatalf("SplitParquet said %d parts, wrote %d", n, len(sink.parts))
	}
	var out [][]byte
	for i, p := range sink.parts {
		if !sink.closed[i] {
			t.Fatalf("part %d not closed", i+1)
		}
		out = append(out, p.Bytes())
	}
	return out
}

// readParts reads the parts in order with OpenParquet, checking that each
// has the given columns.
func readParts(t testing.TB, parts [][]byte, cols []Column) [][]any {
	t.Helper()
	var all [][]any
	for i, p := range parts {
		c, rows := readParquetBytes(t, p, fmt.Sprintf("part %d", i+1))
		if !reflect.DeepEqual(c, cols) {
			t.Fatalf("part %d columns:\n got %v\nwant %v", i+1, c, cols)
		}
		all = append(all, rows...)
	}
	return all
}

func pqSameRows(t testing.TB, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

func pqInfo(t testing.TB, b []byte) ParquetMeta {
	t.Helper()
	m, err := ParquetInfo(bytes.NewReader(b), int64(len(b)), "part")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSplitParquetAtRowGroups(t *testing.T) {
	b := pgFile(t, 2000, 200) // 10 row groups
	orig := pqInfo(t, b)
	if len(orig.RowGroups) != 10 {
		t.Fatalf("%d row groups", len(orig.RowGroups))
	}
	cols, want := readParquetBytes(t, b, "pg.parquet")
	// Room for three row groups, not four.
	partSize := orig.RowGroups[0].CompressedBytes*3 + orig.RowGroups[0].CompressedBytes/2
	parts := pqSplit(t, b, ParquetSplitOptions{PartSize: partSize})
	if len(parts) != 4 {
		t.Fatalf("%d parts, want 4 (3+3+3+1 row groups)", len(parts))
	}
	// Each part holds whole row groups, the same ones, in order.
	g := 0
	for i, p := range parts {
		m := pqInfo(t, p)
		for _, rg := range m.RowGroups {
			if rg.Rows != orig.RowGroups[g].Rows || rg.CompressedBytes != orig.RowGroups[g].CompressedBytes {
				t.Fatalf("part %d: row group %+v, want the original's %d: %+v", i+1, rg, g, orig.RowGroups[g])
			}
			g++
		}
		if int64(len(p)) > partSize+64<<10 {
			t.Fatalf("part %d is %d bytes for a part size of %d", i+1, len(p), partSize)
		}
	}
	if g != 10 {
		t.Fatalf("parts hold %d row groups, want 10", g)
	}
	pqSameRows(t, readParts(t, parts, cols), want)

	// The copy reads the footer, then each part's row groups in one read.
	r := &pqCountingReaderAt{r: bytes.NewReader(b)}
	if _, err := SplitParquet(context.Background(), r, int64(len(b)), ParquetSplitOptions{PartSize: partSize}, new(pqPartSink).next); err != nil {
		t.Fatal(err)
	}
	if n := r.calls.Load(); n != 5 {
		t.Fatalf("%d reads, want 5 (the footer and one per part)", n)
	}

	// A part size below one row group: one row group per part, no re-chunk
	// for a row group of one row.
	one := pgFile(t, 3, 1)
	parts = pqSplit(t, one, ParquetSplitOptions{PartSize: 1})
	if len(parts) != 3 {
		t.Fatalf("%d parts for 3 one-row groups", len(parts))
	}
	_, want = readParquetBytes(t, one, "one.parquet")
	pqSameRows(t, readParts(t, parts, pgColumns), want)
}

func TestSplitParquetRechunk(t *testing.T) {
	b := pgFile(t, 5000, 5000) // one row group
	orig := pqInfo(t, b)
	if len(orig.RowGroups) != 1 {
		t.Fatalf("%d row groups", len(orig.RowGroups))
	}
	cols, want := readParquetBytes(t, b, "pg.parquet")
	partSize := orig.RowGroups[0].CompressedBytes / 3
	parts := pqSplit(t, b, ParquetSplitOptions{PartSize: partSize})
	if len(parts) != 4 {
		t.Fatalf("%d parts, want 4", len(parts))
	}
	var rows int64
	for i, p := range parts {
		m := pqInfo(t, p)
		if m.Rows != 1250 {
			t.Fatalf("part %d: %d rows, want 1250", i+1, m.Rows)
		}
		rows += m.Rows
	}
	pqSameRows(t, readParts(t, parts, cols), want)

	// Row groups before and after the big one are copied around it.
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pgRow](&buf)
	for _, n := range []int{100, 4000, 100} {
		batch := make([]pgRow, n)
		for i := range batch {
			batch[i] = pgRowOf(int(rows) + i)
		}
		rows += int64(n)
		if _, err := w.Write(batch); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b = buf.Bytes()
	orig = pqInfo(t, b)
	partSize = orig.RowGroups[1].CompressedBytes/2 + 1
	parts = pqSplit(t, b, ParquetSplitOptions{PartSize: partSize})
	var counts []int64
	for _, p := range parts {
		counts = append(counts, pqInfo(t, p).Rows)
	}
	if !reflect.DeepEqual(counts, []int64{100, 2000, 2000, 100}) {
		t.Fatalf("part rows %v, want [100 2000 2000 100]", counts)
	}
	_, want = readParquetBytes(t, b, "pg.parquet")
	pqSameRows(t, readParts(t, parts, cols), want)
}

func TestSplitParquetRename(t *testing.T) {
	b := pgFile(t, 600, 200)
	_, want := readParquetBytes(t, b, "pg.parquet")
	names := make([]string, len(pgColumns))
	renamed := make([]Column, len(pgColumns))
	for i, c := range pgColumns {
		names[i] = "c_" + strings.ToUpper(c.Name)
		renamed[i] = c
		renamed[i].Name = names[i]
	}
	for _, partSize := range []int64{1 << 30, pqInfo(t, b).RowGroups[0].CompressedBytes / 3} { // copied; re-chunked
		parts := pqSplit(t, b, ParquetSplitOptions{PartSize: partSize, Names: names})
		pqSameRows(t, readParts(t, parts, renamed), want)
	}

	// Key/value metadata is kept, except the entries that spell the old
	// names when the columns are renamed.
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pgRow](&buf, parquet.KeyValueMetadata("ARROW:schema", "old names"), parquet.KeyValueMetadata("pandas", "{}"), parquet.KeyValueMetadata("origin", "test"))
	if _, err := w.Write([]pgRow{pgRowOf(1)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	kv := func(part []byte) map[string]string {
		f, err := parquet.OpenFile(bytes.NewReader(part), int64(len(part)))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, e := range f.Metadata().KeyValueMetadata {
			m[e.Key] = e.Value
		}
		return m
	}
	if got := kv(pqSplit(t, buf.Bytes(), ParquetSplitOptions{PartSize: 1 << 20})[0]); !reflect.DeepEqual(got, map[string]string{"ARROW:schema": "old names", "pandas": "{}", "origin": "test"}) {
		t.Fatalf("metadata without a rename: %v", got)
	}
	if got := kv(pqSplit(t, buf.Bytes(), ParquetSplitOptions{PartSize: 1 << 20, Names: names})[0]); !reflect.DeepEqual(got, map[string]string{"origin": "test"}) {
		t.Fatalf("metadata with a rename: %v", got)
	}

	for _, tc := range []struct {
		names []string
		want  string
	}{
		{names[:3], "3 names given for 18 columns"},
		{append(append([]string{}, names[:17]...), names[0]), "would both be named"},
		{append([]string{""}, names[1:]...), "is empty"},
	} {
		_, err := SplitParquet(context.Background(), bytes.NewReader(b), int64(len(b)), ParquetSplitOptions{PartSize: 1 << 20, Names: tc.names}, new(pqPartSink).next)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("names %v: error %v, want %q", tc.names, err, tc.want)
		}
	}
}

// duckRows reads Parquet files with DuckDB, each row as text, in order.
func duckRows(t testing.TB, db *sql.DB, files []string) []string {
	t.Helper()
	list := "['" + strings.Join(files, "','") + "']"
	q := `SELECT * FROM read_parquet(` + list + `)`
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		// fmt prints maps sorted and big numbers exactly.
		out = append(out, fmt.Sprintf("%v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func duckSchema(t testing.TB, db *sql.DB, file string) string {
	t.Helper()
	return strings.Join(duckColumns(t, db, file), ", ")
}

// duckColumns is how DuckDB describes a file's columns: "name TYPE".
func duckColumns(t testing.TB, db *sql.DB, file string) []string {
	t.Helper()
	rows, err := db.Query(`DESCRIBE SELECT * FROM read_parquet('` + file + `')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals[0], " ", vals[1]))
	}
	return out
}

func pqWriteFiles(t testing.TB, parts [][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, p := range parts {
		f := filepath.Join(dir, fmt.Sprintf("part-%03d.parquet", i+1))
		if err := os.WriteFile(f, p, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// DuckDB reads the parts (copied, re-chunked, renamed) as it reads the
// original: same types, same values, same order.
func TestSplitParquetDuckDB(t *testing.T) {
	db := openDuck(t)
	b := duckTypesFile(t, db)
	orig := pqWriteFiles(t, [][]byte{b})
	wantRows := duckRows(t, db, orig)
	wantSchema := duckSchema(t, db, orig[0])
	cols, want := readParquetBytes(t, b, "duck.parquet")
	m := pqInfo(t, b)
	for _, tc := range []struct {
		name     string
		partSize int64
		parts    int
	}{
		{"copied", max(m.RowGroups[0].CompressedBytes, m.RowGroups[1].CompressedBytes, m.RowGroups[2].CompressedBytes) + 1, 3},
		{"rechunked", m.RowGroups[0].CompressedBytes / 2, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := pqSplit(t, b, ParquetSplitOptions{PartSize: tc.partSize})
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			files := pqWriteFiles(t, parts)
			for _, f := range files {
				if got := duckSchema(t, db, f); got != wantSchema {
					t.Fatalf("%s: DuckDB sees\n%s\nwant\n%s", f, got, wantSchema)
				}
			}
			if got := duckRows(t, db, files); !reflect.DeepEqual(got, wantRows) {
				t.Fatalf("DuckDB reads other rows from the parts: first %q, want %q", got[0], wantRows[0])
			}
			pqSameRows(t, readParts(t, parts, cols), want)
		})
	}

	t.Run("renamed", func(t *testing.T) {
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = "n_" + c.Name
		}
		parts := pqSplit(t, b, ParquetSplitOptions{PartSize: m.RowGroups[0].CompressedBytes / 2, Names: names})
		files := pqWriteFiles(t, parts)
		schema := duckSchema(t, db, files[0])
		want := "n_" + strings.Join(duckColumns(t, db, orig[0]), ", n_")
		if schema != want {
			t.Fatalf("DuckDB sees\n%s\nwant\n%s", schema, want)
		}
		if got := duckRows(t, db, files); !reflect.DeepEqual(got, wantRows) {
			t.Fatal("DuckDB reads other rows from the renamed parts")
		}
	})
}

func TestSplitParquetEmptyFile(t *testing.T) {
	db := openDuck(t)
	b := duckParquet(t, db, `SELECT 1::INTEGER AS a, 'x' AS s FROM range(0)`, 2048)
	parts := pqSplit(t, b, ParquetSplitOptions{PartSize: 1 << 20, Names: []string{"A", "S"}})
	if len(parts) != 1 {
		t.Fatalf("%d parts", len(parts))
	}
	cols, rows := readParquetBytes(t, parts[0], "part")
	if len(rows) != 0 || !reflect.DeepEqual(cols, []Column{{Name: "A", Type: contract.Int}, {Name: "S", Type: contract.String}}) {
		t.Fatalf("columns %v, %d rows", cols, len(rows))
	}
	if got := duckSchema(t, db, pqWriteFiles(t, parts)[0]); got != "A INTEGER, S VARCHAR" {
		t.Fatalf("DuckDB sees %s", got)
	}
}

type pqFailingWriter struct {
	after int
	n     int
}

func (w *pqFailingWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n > w.after {
		return 0, errInjected
	}
	return len(p), nil
}
func (w *pqFailingWriter) Close() error { return nil }

type pqFailingCloser struct{ bytes.Buffer }

func (w *pqFailingCloser) Close() error { return errInjected }

func TestSplitParquetErrors(t *testing.T) {
	b := pgFile(t, 1000, 100)
	ctx := context.Background()
	run := func(ctx context.Context, r io.ReaderAt, size, partSize int64, next func(int) (io.WriteCloser, error)) (int, error) {
		return SplitParquet(ctx, r, size, ParquetSplitOptions{PartSize: partSize}, next)
	}
	size := int64(len(b))

	if _, err := run(ctx, bytes.NewReader(b), size, 0, new(pqPartSink).next); err == nil || !strings.Contains(err.Error(), "PartSize") {
		t.Fatalf("part size 0: %v", err)
	}
	if _, err := run(ctx, bytes.NewReader(b[:size/2]), size/2, 1<<20, new(pqPartSink).next); err == nil || !strings.Contains(err.Error(), "no Parquet footer") {
		t.Fatalf("truncated: %v", err)
	}
	_, err := run(ctx, bytes.NewReader(b), size, 1<<20, func(int) (io.WriteCloser, error) { return nil, errInjected })
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "part 1") {
		t.Fatalf("next fails: %v", err)
	}
	for _, partSize := range []int64{pqInfo(t, b).RowGroups[0].CompressedBytes + 1, 1} { // copy; re-chunk
		_, err = run(ctx, bytes.NewReader(b), size, partSize, func(int) (io.WriteCloser, error) { return &pqFailingWriter{after: 1}, nil })
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "writing part 1") {
			t.Fatalf("part size %d, write fails: %v", partSize, err)
		}
		_, err = run(ctx, bytes.NewReader(b), size, partSize, func(int) (io.WriteCloser, error) { return new(pqFailingCloser), nil })
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "closing part 1") {
			t.Fatalf("part size %d, close fails: %v", partSize, err)
		}
		// The source fails after its footer was read.
		_, err = run(ctx, &pqFailingReaderAt{r: bytes.NewReader(b), after: 1}, size, partSize, new(pqPartSink).next)
		if !errors.Is(err, errInjected) {
			t.Fatalf("part size %d, read fails: %v", partSize, err)
		}
		// Cancelled after the first part.
		cctx, cancel := context.WithCancel(ctx)
		var sink pqPartSink
		n, err := run(cctx, bytes.NewReader(b), size, partSize, func(p int) (io.WriteCloser, error) {
			if p == 2 {
				cancel()
			}
			return sink.next(p)
		})
		if !errors.Is(err, context.Canceled) || n != 2 || !sink.closed[0] || sink.closed[1] {
			t.Fatalf("part size %d, cancelled: %d parts, %v, closed %v", partSize, n, err, sink.closed)
		}
		cancel()
	}
	// Damaged data pages in a re-chunked row group: an error, not a panic.
	bad := append([]byte(nil), b...)
	for i := 4; i < 3000; i++ {
		bad[i] = 0xff
	}
	if _, err := run(ctx, bytes.NewReader(bad), size, 1, new(pqPartSink).next); err == nil {
		t.Fatal("damaged pages re-chunked without error")
	}
}

type pqDiscardCloser struct{}

func (pqDiscardCloser) Write(p []byte) (int, error) { return len(p), nil }
func (pqDiscardCloser) Close() error                { return nil }

// go test -run '^$' -bench BenchmarkSplitParquet -benchtime 3x ./fileformat
func BenchmarkSplitParquet(b *testing.B) {
	for _, bc := range []struct {
		name     string
		rowGroup int
	}{
		{"copy", 128_000},      // 8 row groups: parts of whole row groups
		{"rechunk", 1_000_000}, // one row group, re-chunked by rows
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := benchParquet(b, 1_000_000, bc.rowGroup)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for range b.N {
				n, err := SplitParquet(context.Background(), bytes.NewReader(data), int64(len(data)), ParquetSplitOptions{PartSize: int64(len(data)) / 4},
					func(int) (io.WriteCloser, error) {
						return pqDiscardCloser{}, nil
					})
				if err != nil || n < 4 {
					b.Fatalf("%d parts, %v", n, err)
				}
			}
		})
	}
}
