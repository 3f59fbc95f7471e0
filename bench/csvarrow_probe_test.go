//go:build duckdb_arrow

package bench

// TestCSVArrowProbe measures a design for the CSV load, not the load
// itself: Go reads the file in two halves into Arrow record batches, rows
// numbered, and DuckDB inserts them through an Arrow scan (duckdb-go's
// RegisterView, which needs the duckdb_arrow build tag), against DuckDB's
// own read_csv, alternated. The reader here knows the benchmark's file
// (8 columns, no quotes, one datetime form): it shows what DuckDB costs
// when it gets typed columns instead of text, not what a full reader
// costs. BENCHMARKS.md, "CSV through Arrow", has the figures.
//
//	SLUICE_BENCH=1 SLUICE_FILES_DIR=/tmp/sluice-files go test -tags duckdb_arrow ./bench -run TestCSVArrowProbe -v
//
// (the file comes from TestFilesReport; SLUICE_FILES_REPS=0 makes it
// without measuring).

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"
)

var probeSchema = arrow.NewSchema([]arrow.Field{
	{Name: "_line", Type: arrow.PrimitiveTypes.Int64},
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "email", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "country", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "quantity", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "active", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "created_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// batchReader hands DuckDB the batches the producers send.
type batchReader struct {
	ch  <-chan arrow.RecordBatch
	cur arrow.RecordBatch
}

func (r *batchReader) Retain()                        {}
func (r *batchReader) Release()                       {}
func (r *batchReader) Schema() *arrow.Schema          { return probeSchema }
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

// civilDays is the days from 1970-01-01 to y-m-d.
func civilDays(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	doy := (153*((m+9)%12)+2)/5 + d - 1
	return int64(era*146097 + yoe*365 + yoe/4 - yoe/100 + doy - 719468)
}

func two(b []byte) int { return int(b[0]-'0')*10 + int(b[1]-'0') }

// probeMicros reads YYYY-MM-DD HH:MM:SS±hh.
func probeMicros(b []byte) (int64, error) {
	if len(b) != 22 {
		return 0, errors.New("not YYYY-MM-DD HH:MM:SS±hh: " + string(b))
	}
	d := civilDays(two(b)*100+two(b[2:]), two(b[5:]), two(b[8:]))
	s := int64(two(b[11:])*3600 + two(b[14:])*60 + two(b[17:]))
	off := int64(two(b[20:]) * 3600)
	if b[19] == '-' {
		off = -off
	}
	return (d*86400 + s - off) * 1e6, nil
}

// produce sends the records of part as batches, numbered from first.
func produce(part io.Reader, first int64, batch int, out chan<- arrow.RecordBatch) error {
	br := bufio.NewReaderSize(part, 1<<20)
	b := array.NewRecordBuilder(memory.DefaultAllocator, probeSchema)
	defer b.Release()
	line, n := first, 0
	var f [8][]byte
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 {
			l = bytes.TrimRight(l, "\r\n")
			for i := range 7 {
				j := bytes.IndexByte(l, ',')
				if j < 0 {
					return errors.New("line " + strconv.FormatInt(line+1, 10) + ": fewer than 8 fields")
				}
				f[i], l = l[:j], l[j+1:]
			}
			f[7] = l
			id, err1 := strconv.ParseInt(string(f[0]), 10, 64)
			amount, err2 := strconv.ParseFloat(string(f[4]), 64)
			qty, err3 := strconv.ParseInt(string(f[5]), 10, 64)
			ts, err4 := probeMicros(f[7])
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				return err
			}
			b.Field(0).(*array.Int64Builder).Append(line)
			b.Field(1).(*array.Int64Builder).Append(id)
			b.Field(2).(*array.StringBuilder).BinaryBuilder.Append(f[1])
			b.Field(3).(*array.StringBuilder).BinaryBuilder.Append(f[2])
			b.Field(4).(*array.StringBuilder).BinaryBuilder.Append(f[3])
			b.Field(5).(*array.Float64Builder).Append(amount)
			b.Field(6).(*array.Int64Builder).Append(qty)
			b.Field(7).(*array.BooleanBuilder).Append(f[6][0] == 't')
			b.Field(8).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
			line++
			if n++; n == batch {
				out <- b.NewRecordBatch()
				n = 0
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n > 0 {
		out <- b.NewRecordBatch()
	}
	return nil
}

// arrowLoad loads file into table items of the DuckDB file db through
// Arrow, as a sync's load would run it (two threads, 64MB, insertion
// order not kept, in a transaction).
func arrowLoad(ctx context.Context, file, db string) (time.Duration, error) {
	start := time.Now()
	c, err := duckdb.NewConnector(db+"?threads=2&memory_limit=64MB&preserve_insertion_order=false", nil)
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
	const batch = 16384
	ch := make(chan arrow.RecordBatch, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range [][3]int64{{body, mid - body, 1}, {mid, fi.Size() - mid, 1 + records}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = produce(io.NewSectionReader(fh, p[0], p[1]), p[2], batch, ch)
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
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		release, err = a.RegisterView(&batchReader{ch: ch}, "probe_src")
		return err
	})
	if err == nil {
		defer release()
		for _, q := range []string{
			`CREATE TABLE items (_line BIGINT, id BIGINT, name VARCHAR, email VARCHAR, country VARCHAR, amount DOUBLE, quantity BIGINT, active BOOLEAN,
				created_at TIMESTAMPTZ, _file VARCHAR, _sluice_synced TIMESTAMPTZ, _sluice_deleted BOOLEAN)`,
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
		(SELECT count(*) FROM (SELECT id, name, email, country, amount, quantity, active, created_at FROM items
			EXCEPT ALL SELECT * FROM read_csv(?))),
		(SELECT count(*) FROM items WHERE _line <> id + 1)`
	if err := sdb.QueryRowContext(ctx, q, file).Scan(&rows, &differ, &badLine); err != nil {
		t.Fatal(err)
	}
	if rows != 10_000_000 || differ != 0 || badLine != 0 {
		t.Fatalf("the Arrow load: %d rows, %d not as read_csv reads them, %d with a wrong _line", rows, differ, badLine)
	}
}
