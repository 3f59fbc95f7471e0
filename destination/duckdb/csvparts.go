package duckdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// A build with the duckdb_arrow tag, as sluice builds connectors, loads a
// fresh CSV file through Arrow instead (csvarrow.go); this is the way
// without it.
//
// A fresh CSV load must give each row its position in the file. DuckDB
// numbers rows (row_number() OVER ()) on one thread only, and its parallel
// CSV reader gives no position, so sluice numbers the records itself: the
// file is cut at record boundaries into one part per thread
// (fileformat.CutCSV, which also counts the records before each cut), and
// a goroutine per part copies it into a pipe with each record's position
// as a first field (fileformat.NumberTypedCSV). read_csv reads the pipes,
// a thread each, and the rows go straight into the table on every thread:
// nothing is materialized or spilled. DuckDB cannot read a byte range of a
// file, hence the pipes, named by their /dev/fd paths: only where opening
// that path opens the pipe (Linux).
//
// The copy also reads every value of a typed column as fileformat does,
// and writes it in a form DuckDB's typed reader reads alike, so DuckDB
// parses those columns as their types: no text per value, no conversion
// in SQL (about 4 of the load's 20 CPU-seconds on 10M rows, BENCHMARKS.md).
// A value fileformat would not read as its type stops the copies, and the
// load is undone and declined, as a whole load marking it bad would be.
//
// The load is checked after the INSERT: the rows must be as many as the
// records numbered, numbered 1 to n, and hold as many values in each typed
// column as the copies wrote. A reader that split records otherwise than
// the copy, or took a value for NULL (DuckDB does, without an error, with
// a TIMESTAMPTZ it does not read), fails that check, and the rows are then
// deleted and loaded whole (loadInParts); so does a part with a carriage
// return that ends no line (fileformat.ErrNotNumbered).

// maxCSVParts bounds the parts (pipes and goroutines) of one load.
const maxCSVParts = 8

// minCSVPart is the smallest part worth a pipe and a goroutine: a smaller
// file is read whole. A variable so that tests can cut small files.
var minCSVPart int64 = 8 << 20

// csvPartsFit reports whether f may be loaded in parts here: a plain CSV
// file of two parts or more, on Linux.
func csvPartsFit(f destination.FileLoad) bool {
	if runtime.GOOS != "linux" || f.CSV.Gzip {
		return false
	}
	fi, err := os.Stat(f.Path)
	return err == nil && fi.Size() >= 2*minCSVPart
}

// csvFeed is the pipes feeding the numbered parts of one CSV file to DuckDB.
type csvFeed struct {
	paths   []string   // the parts' /dev/fd paths, in file order
	reads   []*os.File // the pipes' read ends, held open until the load ends
	file    *os.File
	records int64   // all the parts' records, once the copies are done
	values  []int64 // the values not NULL of each typed column (fileformat.CSVNumbered)
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error // the first copy's error other than DuckDB having stopped reading
	cancel  context.CancelFunc
}

// feedCSV cuts f into up to parts parts and starts their copies
// (fileformat.NumberTypedCSV). It returns nil, without error, when f is to
// be read whole: it has no cut, or a carriage return that ends no line
// where the cut reads (fileformat.ErrNotNumbered). The caller must close
// the feed once DuckDB is done reading.
func feedCSV(ctx context.Context, f destination.FileLoad, parts int) (feed *csvFeed, err error) {
	file, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	feed = &csvFeed{file: file, cancel: cancel, values: make([]int64, len(f.Columns))}
	defer func() {
		if err != nil || feed.paths == nil {
			feed.close()
			feed = nil
		}
	}()
	fi, err := file.Stat()
	if err != nil {
		return feed, err
	}
	parts = min(parts, maxCSVParts, int(fi.Size()/minCSVPart))
	if parts < 2 {
		return feed, nil
	}
	cut, err := fileformat.CutCSV(ctx, io.NewSectionReader(file, 0, fi.Size()), fi.Size(), parts, f.CSV.Delimiter, f.CSV.Quote, f.CSV.Header)
	if errors.Is(err, fileformat.ErrNotNumbered) || len(cut.Cuts) == 0 {
		return feed, nil
	}
	if err != nil {
		return feed, fmt.Errorf("%s: %w", f.Path, err)
	}
	cols := make([]fileformat.Column, len(f.Columns))
	for i, c := range f.Columns {
		cols[i] = fileformat.Column(c)
	}
	bounds := append(append([]int64{cut.Body}, cut.Cuts...), fi.Size())
	pipes := make([]*os.File, 0, len(bounds)-1)
	defer func() {
		if err != nil {
			for _, w := range pipes {
				w.Close()
			}
		}
	}()
	for i := 0; i+1 < len(bounds); i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return feed, fmt.Errorf("a pipe for part %d of %s: %w", i+1, f.Path, err)
		}
		feed.reads = append(feed.reads, r)
		pipes = append(pipes, w)
	}
	first := int64(0)
	for i, w := range pipes {
		off, n := bounds[i], bounds[i+1]-bounds[i]
		want := int64(-1)
		if i < len(cut.Records) {
			want = cut.Records[i]
		}
		feed.wg.Add(1)
		go func(first int64) {
			defer feed.wg.Done()
			defer w.Close()
			done, err := fileformat.NumberTypedCSV(ctx, io.NewSectionReader(file, off, n), w, f.CSV.Delimiter, f.CSV.Quote, first, cols)
			got := done.Records
			switch {
			case errors.Is(err, syscall.EPIPE):
				// DuckDB stopped reading: its statement says why.
			case errors.Is(err, fileformat.ErrNotTyped) || errors.Is(err, fileformat.ErrNotNumbered):
				feed.fail(err)
			case err != nil:
				feed.fail(fmt.Errorf("%s, bytes %d to %d: %w", f.Path, off, off+n, err))
			case want >= 0 && got != want:
				// The file changed since it was cut.
				feed.fail(fmt.Errorf("%s changed while it loaded: %d records from byte %d, %d when it was cut", f.Path, got, off, want))
			default:
				feed.mu.Lock()
				if want < 0 {
					feed.records = first + got
				}
				for i, v := range done.Values {
					feed.values[i] += v
				}
				feed.mu.Unlock()
			}
		}(first)
		first += want
	}
	for _, r := range feed.reads {
		feed.paths = append(feed.paths, "/dev/fd/"+strconv.Itoa(int(r.Fd())))
	}
	return feed, nil
}

// fail keeps the first copy's error, and stops the other copies: the load
// is undone or fails.
func (f *csvFeed) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		f.cancel()
	}
}

// close ends the feed after DuckDB's statement: the read ends are closed,
// so that a copy DuckDB stopped reading ends, and the copies are waited
// for. It returns the records numbered, or a copy's error: the rows DuckDB
// read are then not the file's.
func (f *csvFeed) close() (int64, error) {
	for _, r := range f.reads {
		r.Close()
	}
	f.wg.Wait()
	f.cancel()
	f.file.Close()
	return f.records, f.err
}

// partsRows is src.rows reading the numbered parts of f through feed.
func partsRows(src source, f destination.FileLoad, feed *csvFeed) string {
	cols := make([]string, len(f.Columns)+1)
	cols[0] = "'_sluice_rn': 'BIGINT'"
	for i := range f.Columns {
		typ := "VARCHAR"
		if c := f.Columns[i]; c.Name != "" && c.Type != contract.String {
			typ = SQLType(c)
		}
		cols[i+1] = fmt.Sprintf("'c%d': '%s'", i, typ)
	}
	paths := make([]string, len(feed.paths))
	for i, p := range feed.paths {
		paths[i] = sqlString(p)
	}
	// A row DuckDB could not read is skipped rather than failing the
	// transaction: the check of the row numbers then sees it missing,
	// and the file is loaded whole.
	scan := "SELECT * FROM " + readCSV(f, "["+strings.Join(paths, ", ")+"]", false, cols, "ignore_errors = true")
	return "SELECT " + src.out + " FROM (SELECT " + src.values + " FROM (" + scan + "))"
}
