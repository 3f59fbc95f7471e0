package duckdb

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestWidenForLoad: a Parquet load at the sync's defaults runs on two
// threads with a larger memory_limit, and the sync's settings come back
// after it; settings a user chose are left alone.
func TestWidenForLoad(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	ctx := context.Background()
	settings := func(tx *tx) (threads, limit string) {
		t.Helper()
		if err := tx.tx.QueryRowContext(ctx, `SELECT current_setting('threads')::VARCHAR, current_setting('memory_limit')`).Scan(&threads, &limit); err != nil {
			t.Fatal(err)
		}
		return threads, limit
	}
	_, tx := openTestTx(t, Settings{})
	before, beforeLimit := settings(tx)
	restore, err := tx.widenForLoad(ctx, loadMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	if th, lim := settings(tx); th != loadThreads || lim == beforeLimit {
		t.Errorf("during the load: threads %s, memory_limit %s; want %s threads and a limit above %s", th, lim, loadThreads, beforeLimit)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if th, lim := settings(tx); th != before || lim != beforeLimit || th != syncThreads {
		t.Errorf("after the load: threads %s, memory_limit %s; want %s and %s again", th, lim, before, beforeLimit)
	}

	_, mine := openTestTx(t, Settings{Threads: "2", MemoryLimit: "96MB"})
	th, lim := settings(mine)
	restore, err = mine.widenForLoad(ctx, loadMemoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	if th2, lim2 := settings(mine); th2 != th || lim2 != lim {
		t.Errorf("a user's settings changed for the load: threads %s → %s, memory_limit %s → %s", th, th2, lim, lim2)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
}

// openTestTx opens a warehouse in a temporary folder, schema "s", and
// begins a transaction; both are closed when the test ends.
func openTestTx(t *testing.T, s Settings) (*DB, *tx) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "w.db"), "s", s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	dtx, err := d.Begin(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dtx.Rollback() })
	return d, dtx.(*tx)
}
