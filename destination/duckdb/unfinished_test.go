package duckdb_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination/duckdb"
)

// freshHeaders returns the first 12 KiB of a new DuckDB file: what its
// creation writes before anything else.
func freshHeaders(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fresh.db")
	db, err := duckdb.OpenDB(context.Background(), path, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 3*4096 || string(b[8:12]) != "DUCK" {
		t.Fatalf("a new DuckDB file is %d bytes starting %q: the headers this test cuts are not where it expects", len(b), b[:min(len(b), 16)])
	}
	return b[:3*4096]
}

// TestUnfinishedWarehouse: a warehouse file cut short while DuckDB created
// it (a run killed in its first milliseconds) is created anew; anything
// that could hold data is left alone, with an error that says what to do.
func TestUnfinishedWarehouse(t *testing.T) {
	ctx := context.Background()
	headers := freshHeaders(t)
	for _, n := range []int{0, 100, 4096, 8192, 3*4096 - 1} {
		path := filepath.Join(t.TempDir(), "warehouse.db")
		if err := os.WriteFile(path, headers[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			// Left by an earlier run (the empty one is fresh: the
			// wait for a creator in the act is taken).
			old := time.Now().Add(-time.Minute)
			os.Chtimes(path, old, old)
		}
		d, err := duckdb.Open(ctx, path, "s", duckdb.Settings{})
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", n, err)
		}
		d.Close()
		db, err := duckdb.OpenDB(ctx, path, duckdb.Settings{})
		if err != nil {
			t.Fatalf("%d bytes of headers, reopened: %v", n, err)
		}
		var tables int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 's'`).Scan(&tables); err != nil || tables == 0 {
			t.Errorf("%d bytes of headers: the new warehouse holds %d tables of schema s (%v)", n, tables, err)
		}
		db.Close()
	}

	refused := func(t *testing.T, path string, body []byte) {
		t.Helper()
		_, err := duckdb.Open(ctx, path, "s", duckdb.Settings{})
		if err == nil {
			t.Fatal("opened")
		}
		for _, want := range []string{path, "damaged", "move it aside", "sluice reset"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
			t.Errorf("the file was changed: %d bytes, had %d", len(got), len(body))
		}
	}
	t.Run("with a log", func(t *testing.T) {
		// Not a creation cut short: keep it.
		path := filepath.Join(t.TempDir(), "warehouse.db")
		os.WriteFile(path, headers[:4096], 0o644)
		os.WriteFile(path+".wal", []byte("committed?"), 0o644)
		refused(t, path, headers[:4096])
		if b, _ := os.ReadFile(path + ".wal"); string(b) != "committed?" {
			t.Errorf("the log was changed: %q", b)
		}
	})
	t.Run("not DuckDB", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "warehouse.db")
		body := bytes.Repeat([]byte("not a database\n"), 2000)
		os.WriteFile(path, body, 0o644)
		refused(t, path, body)
	})
}
