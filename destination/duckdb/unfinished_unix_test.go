//go:build unix

package duckdb_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination/duckdb"
)

// TestHoldCreating is not a test: TestUnfinishedWarehouseHeld runs the test
// binary with it to hold a short file under DuckDB's lock, as a process
// creating the warehouse at that moment would.
func TestHoldCreating(t *testing.T) {
	path := os.Getenv("SLUICE_TEST_HOLD_CREATING")
	if path == "" {
		t.Skip("helper process for TestUnfinishedWarehouseHeld")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SLUICE_TEST_LOCK_LATE") != "" {
		// As DuckDB does, but slower: created, then locked.
		os.Stdout.WriteString("holding\n")
		time.Sleep(100 * time.Millisecond)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SLUICE_TEST_LOCK_LATE") == "" {
		os.Stdout.WriteString("holding\n")
	}
	time.Sleep(30 * time.Second) // killed by the parent long before
}

// TestUnfinishedWarehouseHeld: a short file that another process holds is
// being created: it is left to that process.
func TestUnfinishedWarehouseHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warehouse.db")
	body := []byte("creating")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	holdInHelper(t, "TestHoldCreating", "SLUICE_TEST_HOLD_CREATING="+path)
	if _, err := duckdb.Open(context.Background(), path, "s", duckdb.Settings{}); err == nil {
		t.Fatal("opened a file another process holds")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
		t.Errorf("the held file was changed: %q", got)
	}
}

// TestUnfinishedWarehouseJustCreated: a file another process has just
// created, and locks only after it, is left to that process.
func TestUnfinishedWarehouseJustCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warehouse.db")
	t.Setenv("SLUICE_TEST_LOCK_LATE", "1")
	holdInHelper(t, "TestHoldCreating", "SLUICE_TEST_HOLD_CREATING="+path)
	if _, err := duckdb.Open(context.Background(), path, "s", duckdb.Settings{}); err == nil {
		t.Fatal("opened a file another process is creating")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the file being created: %v", err)
	}
}
