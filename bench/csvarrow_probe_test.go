//go:build duckdb_arrow

package bench

// TestCSVArrowProbe measures a design for the CSV load, not the load
// itself: fileformat.ReadCSVColumns reads the file in two halves into
// batches, rows numbered and values typed as OpenCSV types them; their
// slices become Arrow arrays, and DuckDB inserts them through an Arrow
// scan (duckdb-go's RegisterView, which needs the duckdb_arrow build tag),
// against DuckDB's own read_csv, alternated. The halves are cut at the
// line end nearest the middle, which is a record boundary only in a file
// without quoted line ends, such as the benchmark's. BENCHMARKS.md, "This
// session's machine, and DuckDB fed Arrow", has the figures.
//
//	SLUICE_BENCH=1 SLUICE_FILES_DIR=/tmp/sluice-files go test -tags duckdb_arrow ./bench -run TestCSVArrowProbe -v
//
// (the file comes from TestFilesReport; SLUICE_FILES_REPS=0 makes it
// without measuring).

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdbgo "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// arrowType is the Arrow type fileformat.ColumnData's values of c go in.
func arrowType(c fileformat.Column) arrow.DataType {
	switch c.Type {
	case contract.Boolean:
		return arrow.FixedWidthTypes.Boolean
	case contract.Long:
		return arrow.PrimitiveTypes.Int64
	case contract.NaiveDate:
		return arrow.FixedWidthTypes.Date32
	case contract.NaiveDateTime:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case contract.UTCDateTime:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case contract.Decimal:
		return &arrow.Decimal128Type{Precision: int32(c.Precision), Scale: int32(c.Scale)}
	case contract.Double:
		return arrow.PrimitiveTypes.Float64
	}
	return arrow.BinaryTypes.String
}

func arrowSchema(cols []fileformat.Column) *arrow.Schema {
	fields := []arrow.Field{{Name: "_line", Type: arrow.PrimitiveTypes.Int64}}
	for _, c := range cols {
		fields = append(fields, arrow.Field{Name: c.Name, Type: arrowType(c), Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// bytesOf views s's memory as bytes: Arrow takes the slices as they are.
func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// bitmap packs one bit per record, set where set(i).
func bitmap(n int, set func(int) bool) ([]byte, int) {
	b := make([]byte, (n+7)/8)
	unset := 0
	for i := range n {
		if set(i) {
			b[i/8] |= 1 << (i % 8)
		} else {
			unset++
		}
	}
	return b, unset
}

// arrowBatch hands b's columns to Arrow, its slices as Arrow's buffers
// (a date's days and a decimal's halves rearranged first).
func arrowBatch(schema *arrow.Schema, cols []fileformat.Column, b *fileformat.CSVBatch) arrow.RecordBatch {
	n := b.Len
	arrays := make([]arrow.Array, 0, len(cols)+1)
	arrays = append(arrays, array.MakeFromData(array.NewData(arrow.PrimitiveTypes.Int64, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(b.Positions))}, nil, 0, 0)))
	for i, c := range cols {
		d := b.Cols[i]
		valid, nulls := bitmap(n, func(k int) bool { return !d.Null[k] })
		var data []byte
		var buffers []*memory.Buffer
		switch c.Type {
		case contract.Boolean:
			data, _ = bitmap(n, func(k int) bool { return d.Ints[k] == 1 })
		case contract.NaiveDate:
			days := make([]int32, n)
			for k, v := range d.Ints {
				days[k] = int32(v)
			}
			data = bytesOf(days)
		case contract.Decimal:
			halves := make([]int64, 2*n)
			for k := range n {
				halves[2*k], halves[2*k+1] = d.Ints[k], d.Hi[k]
			}
			data = bytesOf(halves)
		case contract.Double:
			data = bytesOf(d.Floats)
		case contract.Long, contract.NaiveDateTime, contract.UTCDateTime:
			data = bytesOf(d.Ints)
		default:
			buffers = []*memory.Buffer{memory.NewBufferBytes(valid), memory.NewBufferBytes(bytesOf(d.Offsets)), memory.NewBufferBytes(d.Text)}
		}
		if buffers == nil {
			buffers = []*memory.Buffer{memory.NewBufferBytes(valid), memory.NewBufferBytes(data)}
		}
		arrays = append(arrays, array.MakeFromData(array.NewData(arrowType(c), n, buffers, nil, nulls, 0)))
	}
	return array.NewRecordBatch(schema, arrays, int64(n))
}

// batchReader hands DuckDB the batches the producers send.
type batchReader struct {
	schema *arrow.Schema
	ch     <-chan arrow.RecordBatch
	cur    arrow.RecordBatch
}

func (r *batchReader) Retain()                        {}
func (r *batchReader) Release()                       {}
func (r *batchReader) Schema() *arrow.Schema          { return r.schema }
func (r *batchReader) Err() error                     { return nil }
func (r *batchReader) Record() arrow.RecordBatch      { return r.cur }
func (r *batchReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *batchReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	rec, ok := <-r.ch
	r.cur = rec
	return ok
}

// arrowLoad loads file into table items of the DuckDB file db through
// Arrow, as a sync's load would run it (two threads, 64MB, insertion
// order not kept, in a transaction).
func arrowLoad(ctx context.Context, file, db string) (time.Duration, error) {
	start := time.Now()
	c, err := duckdbgo.NewConnector(db+"?threads=2&memory_limit=64MB&preserve_insertion_order=false", nil)
	if err != nil {
		return 0, err
	}
	sdb := sql.OpenDB(c)
	defer sdb.Close()
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	fh, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	head := make([]byte, 64<<10)
	if _, err := fh.ReadAt(head, 0); err != nil {
		return 0, err
	}
	body := int64(bytes.IndexByte(head, '\n') + 1)
	mid := fi.Size() / 2
	if _, err := fh.ReadAt(head, mid); err != nil {
		return 0, err
	}
	mid += int64(bytes.IndexByte(head, '\n') + 1)
	// The first half's records, as fileformat.CutCSV counts them.
	var records int64
	buf := make([]byte, 1<<20)
	for r := io.NewSectionReader(fh, body, mid-body); ; {
		n, err := r.Read(buf)
		records += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err != nil {
			break
		}
	}
	rows, err := fileformat.OpenCSV(io.NewSectionReader(fh, 0, fi.Size()), file, fileformat.Options{})
	if err != nil {
		return 0, err
	}
	cols := rows.Columns()
	rows.Close()
	schema := arrowSchema(cols)
	const batch = 16384
	ch := make(chan arrow.RecordBatch, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range [][3]int64{{body, mid - body, 1}, {mid, fi.Size() - mid, 1 + records}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = fileformat.ReadCSVColumns(ctx, io.NewSectionReader(fh, p[0], p[1]), file, ',', '"', p[2]-1, cols, batch, func(b *fileformat.CSVBatch) error {
				ch <- arrowBatch(schema, cols, b)
				return nil
			})
		}()
	}
	go func() { wg.Wait(); close(ch) }()
	// As a sync's load would run: inside the checkpoint's transaction,
	// the view registered on the transaction's connection.
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// Raw only to register the view: a statement of tx run inside Raw
	// would wait for the connection Raw holds.
	var release func()
	err = conn.Raw(func(dc any) error {
		a, err := duckdbgo.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		release, err = a.RegisterView(&batchReader{schema: schema, ch: ch}, "probe_src")
		return err
	})
	if err == nil {
		defer release()
		for _, q := range []string{
			createItems(cols),
			`INSERT INTO items SELECT *, 'items.csv', now(), false FROM probe_src`,
			`DROP VIEW probe_src`,
		} {
			if _, err = tx.ExecContext(ctx, q); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = tx.Commit()
	}
	for range ch {
		// DuckDB stopped early: let the producers end.
	}
	wg.Wait()
	if err == nil {
		err = errors.Join(errs...)
	}
	return time.Since(start), err
}

func TestCSVArrowProbe(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" || os.Getenv("SLUICE_FILES_DIR") == "" {
		t.Skip("a probe: set SLUICE_BENCH=1 and SLUICE_FILES_DIR (see BENCHMARKS.md)")
	}
	file := filepath.Join(os.Getenv("SLUICE_FILES_DIR"), "csv-10000000", "items.csv")
	if _, err := os.Stat(file); err != nil {
		t.Skipf("no %s: run TestFilesReport first (SLUICE_FILES_REPS=0 makes the files only)", file)
	}
	ctx := context.Background()
	var arrowBest, duckBest time.Duration
	for rep := range 3 {
		for _, arrowRun := range []bool{true, false} {
			dir := t.TempDir()
			db := filepath.Join(dir, "w.db")
			var d time.Duration
			var err error
			if arrowRun {
				d, err = arrowLoad(ctx, file, db)
			} else {
				d, err = DuckDBLoad(ctx, file, db, Config{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if arrowRun {
				if arrowBest == 0 || d < arrowBest {
					arrowBest = d
				}
				if rep == 0 {
					checkArrowLoad(t, ctx, db, file)
				}
			} else if duckBest == 0 || d < duckBest {
				duckBest = d
			}
			t.Logf("rep %d arrow=%v: %.2f s", rep, arrowRun, d.Seconds())
			os.RemoveAll(dir)
		}
	}
	t.Logf("best: arrow %.2f s, DuckDB's own %.2f s: ratio %.2f", arrowBest.Seconds(), duckBest.Seconds(), duckBest.Seconds()/arrowBest.Seconds())
}

// createItems is the table the files connector makes for cols.
func createItems(cols []fileformat.Column) string {
	defs := []string{"_line BIGINT"}
	for _, c := range cols {
		defs = append(defs, quote(c.Name)+" "+duckdb.SQLType(destination.Column{Name: c.Name, Type: c.Type, Precision: c.Precision, Scale: c.Scale}))
	}
	return "CREATE TABLE items (" + strings.Join(defs, ", ") + ", _file VARCHAR, _sluice_synced TIMESTAMPTZ, _sluice_deleted BOOLEAN)"
}

// checkArrowLoad compares the loaded rows with DuckDB's own reading of the
// file, and each _line with its record's position (id + 1 in this file).
func checkArrowLoad(t *testing.T, ctx context.Context, db, file string) {
	t.Helper()
	sdb, err := sql.Open("duckdb", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var rows, differ, badLine int64
	q := `SELECT (SELECT count(*) FROM items),
		(SELECT count(*) FROM (SELECT id, name, email, country, amount::DOUBLE, quantity, active, created_at FROM items
			EXCEPT ALL SELECT * FROM read_csv(?))),
		(SELECT count(*) FROM items WHERE _line <> id + 1)`
	if err := sdb.QueryRowContext(ctx, q, file).Scan(&rows, &differ, &badLine); err != nil {
		t.Fatal(err)
	}
	if rows != 10_000_000 || differ != 0 || badLine != 0 {
		t.Fatalf("the Arrow load: %d rows, %d not as read_csv reads them, %d with a wrong _line", rows, differ, badLine)
	}
}
