//go:build duckdb_arrow

package duckdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestArrowLoadDeclines: a file the connector's reader would not read as
// its columns say, in the first part or a later one, is declined with the
// reason, nothing it inserted is left, no view is left, and the
// transaction goes on: a good file then loads in it and commits.
func TestArrowLoadDeclines(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	for _, c := range []struct {
		name, body, reason string
	}{
		// Late in their parts (of about 50,000 records), so that batches
		// went in before: the undo has rows to delete.
		{"ragged in the last part", plainRows(100_000, 99_000, "99000,ragged,1.5,extra\n"), unreadReason},
		{"not UTF-8 in the first part", plainRows(100_000, 45_000, "45000,caf\xe9,1.5\n"), unreadReason},
		{"gzip cut short", gzipped(plainRows(100_000, 0, ""), 200_000), unreadReason},
		{"not a DOUBLE in the last part", plainRows(100_000, 99_500, "99500,row,n/a\n"), badReason},
		{"not a LONG in the first part", plainRows(100_000, 48_000, "x48000,row,1.5\n"), badReason},
	} {
		t.Run(c.name, func(t *testing.T) {
			useArrow(t, true)
			d, tx, load := smallLoad(t, c.body)
			load.CSV.Gzip = strings.HasPrefix(c.name, "gzip")
			ctx := context.Background()
			res, err := tx.LoadFile(ctx, load)
			if err != nil {
				t.Fatal(err)
			}
			if res.Handled || !strings.HasPrefix(res.Reason, c.reason) {
				t.Fatalf("load: %+v, want it declined: %q", res, c.reason)
			}
			var left, views int64
			if err := tx.tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM s.big), (SELECT count(*) FROM duckdb_views() WHERE view_name = '`+arrowView+`')`).Scan(&left, &views); err != nil {
				t.Fatal(err)
			}
			if left != 0 || views != 0 {
				t.Fatalf("%d rows and %d views left after the decline", left, views)
			}
			good := filepath.Join(t.TempDir(), "good.csv")
			if err := os.WriteFile(good, []byte(plainRows(20_000, 0, "")), 0o644); err != nil {
				t.Fatal(err)
			}
			load.Path, load.CSV.Gzip = good, false
			if res, err := tx.LoadFile(ctx, load); err != nil || !res.Handled || res.Rows != 20_000 {
				t.Fatalf("a good file after the decline: %+v, %v", res, err)
			}
			if err := tx.Commit(ctx, destination.StateRecord{State: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			var n, wrong int64
			if err := d.db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE _line <> pos OR note <> 'row ' || pos) FROM s.big`).Scan(&n, &wrong); err != nil {
				t.Fatal(err)
			}
			if n != 20_000 || wrong != 0 {
				t.Fatalf("committed: %d rows, %d wrong; want 20000, 0", n, wrong)
			}
		})
	}
}

// TestArrowLoadEdges: a file of a header only loads no row; a file with a
// carriage return that ends no line, where the cut would count lines
// otherwise than the reader, is read in one part, as the reader reads it
// (the CR is part of the value); a gzipped file is read in one part, and
// one that is not gzip after all is not for Arrow.
func TestArrowLoadEdges(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	ctx := context.Background()
	useArrow(t, true)

	_, tx, load := smallLoad(t, "pos,note,v")
	res, err := tx.LoadFile(ctx, load)
	if err != nil || !res.Handled || res.Rows != 0 {
		t.Fatalf("a header only: %+v, %v", res, err)
	}

	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d, tx, load := smallLoad(t, plainRows(20_000, 1_000, "1000,row\r1000,85.5\n"))
	res, err = tx.LoadFile(ctx, load)
	if err != nil || !res.Handled || res.Rows != 20_000 {
		t.Fatalf("a lone CR: %+v, %v", res, err)
	}
	if !strings.Contains(logged.String(), "through Arrow") || !strings.Contains(logged.String(), "parts=1 ") {
		t.Errorf("a lone CR: the load logged %q, want one part through Arrow", logged.String())
	}
	var note string
	if err := tx.tx.QueryRowContext(ctx, `SELECT note FROM s.big WHERE _line = 1000`).Scan(&note); err != nil || note != "row\r1000" {
		t.Fatalf("a lone CR: note %q, %v", note, err)
	}

	// Gzipped: one part, past a header that holds a quoted line end.
	d, tx, load = smallLoad(t, gzipped("\"pos\",\"no\nte\",v\n"+strings.TrimPrefix(plainRows(20_000, 0, ""), "pos,note,v\n"), -1))
	load.CSV.Gzip = true
	logged.Reset()
	res, err = tx.LoadFile(ctx, load)
	if err != nil || !res.Handled || res.Rows != 20_000 {
		t.Fatalf("gzipped: %+v, %v", res, err)
	}
	if !strings.Contains(logged.String(), "through Arrow") || !strings.Contains(logged.String(), "parts=1 ") {
		t.Errorf("gzipped: the load logged %q, want one part through Arrow", logged.String())
	}
	checkPlain(t, tx, 20_000)

	// Not gzip after all: not for Arrow (done false, nothing inserted).
	_, tx, load = smallLoad(t, plainRows(100, 0, ""))
	load.CSV.Gzip = true
	target, src := bigSource(t, d, tx, load, true)
	if _, done, err := tx.loadArrow(ctx, target, load, src); err != nil || done {
		t.Fatalf("not gzip: done %t, %v; want not done", done, err)
	}
	var left int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM s.big`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left, %v", left, err)
	}
}

// gzipped is text compressed, its first keep bytes only when keep >= 0.
func gzipped(text string, keep int) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(text))
	zw.Close()
	if keep >= 0 {
		b.Truncate(keep)
	}
	return b.String()
}

// checkPlain checks the rows of s.big that a load of plainRows(rows, 0,
// "") left.
func checkPlain(t *testing.T, tx *tx, rows int64) {
	t.Helper()
	var n, wrong int64
	if err := tx.tx.QueryRowContext(context.Background(), `SELECT count(*), count(*) FILTER (WHERE _line <> pos OR note <> 'row ' || pos OR v <> pos % 97 + 0.5) FROM s.big`).Scan(&n, &wrong); err != nil {
		t.Fatal(err)
	}
	if n != rows || wrong != 0 {
		t.Fatalf("%d rows, %d wrong; want %d, 0", n, wrong, rows)
	}
}

// TestArrowFeedStopsUnread: a feed whose scan stops early (DuckDB's
// statement failed) or never starts still ends when closed: its parts stop
// sending, and close says they were stopped.
func TestArrowFeedStopsUnread(t *testing.T) {
	var b bytes.Buffer
	for i := range 100_000 {
		fmt.Fprintf(&b, "%d,row %d\n", i, i)
	}
	columns := []destination.Column{{Name: "a", Type: contract.Long}, {Name: "b", Type: contract.String}}
	cols := []fileformat.Column{{Name: "a", Type: contract.Long}, {Name: "b", Type: contract.String}}
	for _, read := range []int{0, 3} {
		before := runtime.NumGoroutine()
		feed := newArrowFeed(context.Background(), columns)
		for range 2 {
			feed.wg.Add(1)
			go feed.read(bytes.NewReader(b.Bytes()), "f.csv", contract.CSVDialect{Delimiter: ',', Quote: '"'}, 0, -1, cols)
		}
		go func() { feed.wg.Wait(); close(feed.ch) }()
		for range read {
			if !feed.Next() || feed.RecordBatch().NumRows() != arrowBatchRows {
				t.Fatal("no full batch")
			}
		}
		closed := make(chan error, 1)
		go func() { _, err := feed.close(); closed <- err }()
		select {
		case err := <-closed:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%d batches read: close gave %v, want the parts stopped", read, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d batches read: close still waits after 30 s", read)
		}
		// The parts' goroutines end.
		for i := 0; runtime.NumGoroutine() > before && i < 1000; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("%d batches read: %d goroutines, %d before", read, n, before)
		}
	}
}
