//go:build duckdb_arrow

package duckdb

import (
	"bufio"
	"compress/gzip"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdbgo "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// In a build with the duckdb_arrow tag (duckdb-go's Arrow support, which
// `sluice debug`, `run` and `deploy` build connectors with), a fresh CSV
// load does not ask DuckDB to parse the file at all. Go reads it, cut into
// one part per thread (fileformat.CutCSV; a gzipped file is one part, read
// through Go's decompressor), with the connector's own CSV
// reader (fileformat.ReadCSVColumns: the same record splitting, trimming,
// NULLs and parsers as the rows it would upsert), each record numbered by
// its position, its values typed, column by column; the columns become
// Arrow arrays over the same memory, and DuckDB inserts them through an
// Arrow scan of a view registered on the sync's connection, inside the
// checkpoint's transaction, on every thread. The parts path (csvparts.go)
// spends a third of its time on text DuckDB parses again after sluice has
// parsed it; this path parses once. BENCHMARKS.md ("CSV through Arrow")
// has the figures.
//
// A value the reader would not read as its column's type stops the parts,
// and what was inserted is deleted: the load is declined and the rows are
// upserted, as a whole load that marks a row bad is. So is a record the
// reader refuses (ragged, not UTF-8, a damaged gzip stream): the rows
// upserted then meet it and say where it is in the file, which a part's
// reader cannot (its lines count from the part's start).

// arrowLoads says that this build loads CSV files through Arrow; tests
// turn it off to hold the path to the others.
var arrowLoads = true

// arrowBatchRows is the records per Arrow batch, DuckDB's vector size
// times eight: smaller batches cost more calls across cgo, larger ones
// more memory (each part holds one being filled and one queued).
const arrowBatchRows = 16384

// arrowView is the view the Arrow scan is registered as. DuckDB creates it
// in the connection's default schema, inside the checkpoint's transaction,
// which drops it again before the load returns: it is never committed.
const arrowView = "_sluice_csv_arrow"

// loadArrow loads a fresh CSV file through Arrow, from src as loadSource
// gives it typed. done is false, with nothing inserted, when the file is
// to be loaded otherwise: a DECIMAL column Arrow does not hold, or a
// gzipped file that does not open.
func (t *tx) loadArrow(ctx context.Context, tbl *destination.Table, f destination.FileLoad, src source) (res destination.FileLoadResult, done bool, err error) {
	for _, c := range f.Columns {
		if c.Name != "" && c.Type == contract.Decimal && (c.Precision < 1 || c.Precision > 38 || c.Scale < 0 || c.Scale > c.Precision) {
			return res, false, nil
		}
	}
	threads, err := t.threads(ctx)
	if err != nil {
		return res, false, err
	}
	file, err := os.Open(f.Path)
	if err != nil {
		return res, false, err
	}
	defer file.Close()
	parts, err := arrowParts(ctx, f, file, threads)
	if err != nil || parts == nil {
		return res, false, err
	}

	cols := make([]fileformat.Column, len(f.Columns))
	for i, c := range f.Columns {
		cols[i] = fileformat.Column(c)
	}
	feed := newArrowFeed(ctx, f.Columns)
	for _, p := range parts {
		feed.wg.Add(1)
		go feed.read(p.r, f.Path, f.CSV, p.first, p.want, cols)
	}
	go func() {
		feed.wg.Wait()
		close(feed.ch)
	}()

	err = t.d.conn.Raw(func(dc any) error {
		a, err := duckdbgo.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		feed.release, err = a.RegisterView(feed, arrowView)
		return err
	})
	var n int64
	if err == nil {
		// Statements of the transaction run after Raw has returned: one
		// run inside it would wait for the connection Raw holds.
		rows := "SELECT " + src.out + " FROM (SELECT " + src.values + " FROM " + arrowView + ")"
		n, err = t.insertRows(ctx, tbl, f, rows, src.columns)
		if _, derr := t.tx.ExecContext(context.WithoutCancel(ctx), `DROP VIEW IF EXISTS `+arrowView); err == nil {
			err = derr
		}
	}
	records, ferr := feed.close()
	if err != nil {
		return res, false, err
	}
	switch {
	case errors.Is(ferr, fileformat.ErrNotTyped):
		return t.declineNotTyped(ctx, tbl, f, src, ferr)
	case ferr != nil && ctx.Err() == nil && !errors.Is(ferr, errChanged):
		// The reader's own error (a ragged record, text not UTF-8, a
		// damaged gzip stream), its line counted from the part's start:
		// the rows upserted meet it again and say where it is.
		slog.Debug("a CSV file does not read", "file", f.Path, "error", ferr)
		return destination.FileLoadResult{Reason: unreadReason}, true, t.undoFresh(ctx, tbl, f, src)
	case ferr != nil:
		return res, false, ferr
	case n != records:
		slog.Warn("a CSV file read through Arrow did not insert its records as counted; loading it whole", "file", f.Path, "rows", n, "records", records)
		return res, false, t.undoFresh(ctx, tbl, f, src)
	}
	res, err = t.keepUnlessBad(ctx, tbl, f, src, n)
	if err == nil && res.Handled {
		slog.Debug("loaded a CSV file through Arrow", "file", f.Path, "parts", len(parts), "rows", n)
	}
	return res, true, err
}

// arrowPart is one part of a CSV file: its records, numbered from
// first+1; want is the records the cut counted in it (-1 for the last
// part).
type arrowPart struct {
	r           io.Reader
	first, want int64
}

// arrowParts cuts file into one part per thread (fileformat.CutCSV), or one
// for a gzipped file, which is read through Go's decompressor as the
// connector's reader reads it. A file with a carriage return that ends no
// line, where the cut would count lines otherwise than the reader, is one
// part, which the reader reads as it reads any file. It returns nil when
// the file is to be loaded otherwise: a gzipped file that does not open
// as one, whose error the rows upserted give.
func arrowParts(ctx context.Context, f destination.FileLoad, file *os.File, threads int) ([]arrowPart, error) {
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if f.CSV.Gzip {
		// The header is found in the text, which is then read again
		// from the start, past it: a gzip stream does not seek.
		body, err := gunzip(file)
		if err != nil {
			return nil, nil
		}
		cut, err := fileformat.CutCSV(ctx, body, math.MaxInt64, 1, f.CSV.Delimiter, f.CSV.Quote, f.CSV.Header)
		if err != nil {
			return nil, nil
		}
		if body, err = gunzip(file); err != nil {
			return nil, nil
		}
		if _, err := io.CopyN(io.Discard, body, cut.Body); err != nil {
			return nil, nil
		}
		return []arrowPart{{r: body, want: -1}}, nil
	}
	n := max(min(threads, maxCSVParts, int(size/minCSVPart)), 1)
	cut, err := fileformat.CutCSV(ctx, io.NewSectionReader(file, 0, size), size, n, f.CSV.Delimiter, f.CSV.Quote, f.CSV.Header)
	if errors.Is(err, fileformat.ErrNotNumbered) {
		cut, err = fileformat.CSVParts{Body: cut.Body}, nil // one part
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	bounds := append(append([]int64{cut.Body}, cut.Cuts...), size)
	parts := make([]arrowPart, len(bounds)-1)
	var first int64
	for i := range parts {
		parts[i] = arrowPart{r: io.NewSectionReader(file, bounds[i], bounds[i+1]-bounds[i]), first: first, want: -1}
		if i < len(cut.Records) {
			parts[i].want = cut.Records[i]
			first += cut.Records[i]
		}
	}
	return parts, nil
}

// gunzip reads file's text from its start.
func gunzip(file *os.File) (io.Reader, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(io.NewSectionReader(file, 0, math.MaxInt64), 1<<20))
	if err != nil {
		return nil, err
	}
	return zr, nil
}

// unreadReason says why a load the reader failed was undone.
const unreadReason = "the file does not read: the rows are upserted instead, and the reader says what is wrong and where"

// errChanged is a part that did not hold the records the cut counted in
// it: the file changed while it loaded.
var errChanged = errors.New("changed while it loaded")

// arrowFeed reads the parts of one CSV file and hands their batches to
// DuckDB's Arrow scan (it is the array.RecordReader the view scans).
type arrowFeed struct {
	schema  *arrow.Schema
	types   []arrow.DataType // by file column; nil where the column is not loaded
	ch      chan arrow.RecordBatch
	cur     arrow.RecordBatch
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	release func()

	mu      sync.Mutex
	records int64
	err     error // the first part's error
}

// newArrowFeed makes the feed of a file of columns: the view has
// _sluice_rn, then c<i> for each column loaded, as loadSource names them.
func newArrowFeed(ctx context.Context, columns []destination.Column) *arrowFeed {
	fields := []arrow.Field{{Name: "_sluice_rn", Type: arrow.PrimitiveTypes.Int64}}
	types := make([]arrow.DataType, len(columns))
	for i, c := range columns {
		if c.Name == "" {
			continue
		}
		types[i] = arrowType(c)
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: types[i], Nullable: true})
	}
	ctx, cancel := context.WithCancel(ctx)
	return &arrowFeed{
		schema: arrow.NewSchema(fields, nil),
		types:  types,
		ch:     make(chan arrow.RecordBatch, 2),
		ctx:    ctx,
		cancel: cancel,
	}
}

// read reads one part, numbering its records from first+1; want is the
// records the cut counted in it (-1 for the last part).
func (f *arrowFeed) read(r io.Reader, name string, d contract.CSVDialect, first, want int64, cols []fileformat.Column) {
	defer f.wg.Done()
	got, err := fileformat.ReadCSVColumns(f.ctx, r, name, d.Delimiter, d.Quote, first, cols, arrowBatchRows, func(b *fileformat.CSVBatch) error {
		rec := f.batch(b)
		select {
		case f.ch <- rec:
			return nil
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	})
	if err == nil && want >= 0 && got != want {
		err = fmt.Errorf("%s %w: %d records from record %d, %d when it was cut", name, errChanged, got, first+1, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if f.err == nil {
			f.err = err
			f.cancel() // the other parts stop; the scan ends
		}
		return
	}
	f.records += got
}

// close ends the feed once DuckDB's statement is over, and returns the
// records read, or the first part's error.
func (f *arrowFeed) close() (int64, error) {
	f.cancel()
	for rec := range f.ch {
		// A statement that stopped early left batches queued.
		rec.Release()
	}
	if f.release != nil {
		f.release()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.records, f.err
}

// The array.RecordReader that DuckDB's Arrow scan reads. It ends when every
// part has been read or one has failed; the failure is not the scan's, so
// that the transaction's statement succeeds and the rows can be deleted.

func (f *arrowFeed) Retain()                        {}
func (f *arrowFeed) Release()                       {}
func (f *arrowFeed) Schema() *arrow.Schema          { return f.schema }
func (f *arrowFeed) Err() error                     { return nil }
func (f *arrowFeed) Record() arrow.RecordBatch      { return f.cur }
func (f *arrowFeed) RecordBatch() arrow.RecordBatch { return f.cur }
func (f *arrowFeed) Next() bool {
	if f.cur != nil {
		f.cur.Release()
		f.cur = nil
	}
	if f.ctx.Err() != nil {
		return false
	}
	rec, ok := <-f.ch
	f.cur = rec
	return ok
}

// arrowType is the Arrow type a column's values are handed to DuckDB as;
// each converts to the column's SQLType exactly.
func arrowType(c destination.Column) arrow.DataType {
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

// batch makes b an Arrow record batch. Positions, 64-bit values, doubles
// and text are handed over as they are; booleans, dates and decimals are
// rearranged into Arrow's layout.
func (f *arrowFeed) batch(b *fileformat.CSVBatch) arrow.RecordBatch {
	n := b.Len
	arrays := make([]arrow.Array, 0, len(f.schema.Fields()))
	arrays = append(arrays, array.NewInt64Data(array.NewData(arrow.PrimitiveTypes.Int64, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(b.Positions))}, nil, 0, 0)))
	for i, typ := range f.types {
		if typ == nil {
			continue
		}
		d := &b.Cols[i]
		valid, nulls := validity(d.Null)
		var buffers []*memory.Buffer
		switch typ.ID() {
		case arrow.BOOL:
			bits := make([]byte, (n+7)/8)
			for k, v := range d.Ints {
				if v == 1 {
					bits[k/8] |= 1 << (k % 8)
				}
			}
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bits)}
		case arrow.DATE32:
			days := make([]int32, n)
			for k, v := range d.Ints {
				days[k] = int32(v)
			}
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bytesOf(days))}
		case arrow.DECIMAL128:
			halves := make([]int64, 2*n)
			for k := range n {
				halves[2*k], halves[2*k+1] = d.Ints[k], d.Hi[k]
			}
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bytesOf(halves))}
		case arrow.FLOAT64:
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bytesOf(d.Floats))}
		case arrow.STRING:
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bytesOf(d.Offsets)), memory.NewBufferBytes(d.Text)}
		default: // INT64, TIMESTAMP
			buffers = []*memory.Buffer{valid, memory.NewBufferBytes(bytesOf(d.Ints))}
		}
		arrays = append(arrays, array.MakeFromData(array.NewData(typ, n, buffers, nil, nulls, 0)))
	}
	return array.NewRecordBatch(f.schema, arrays, int64(n))
}

// validity is Arrow's validity bitmap of a column whose NULLs are null,
// nil when it has none, and how many it has.
func validity(null []bool) (*memory.Buffer, int) {
	nulls := 0
	for _, v := range null {
		if v {
			nulls++
		}
	}
	if nulls == 0 {
		return nil, 0
	}
	bits := make([]byte, (len(null)+7)/8)
	for k, v := range null {
		if !v {
			bits[k/8] |= 1 << (k % 8)
		}
	}
	return memory.NewBufferBytes(bits), nulls
}

// bytesOf views s's memory as bytes, for Arrow to take as it is.
func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}
