package duckdb_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination/duckdb"
)

// TestHoldLock is not a test: TestLockedWarehouse runs the test binary with
// it to hold a warehouse open from another process, as a DuckDB CLI would.
func TestHoldLock(t *testing.T) {
	path := os.Getenv("SLUICE_TEST_HOLD_LOCK")
	if path == "" {
		t.Skip("helper process for TestLockedWarehouse")
	}
	db, err := duckdb.OpenDB(context.Background(), path, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	os.Stdout.WriteString("holding\n")
	time.Sleep(30 * time.Second) // killed by the parent long before
}

// holdInHelper runs the test binary's helper test (which prints "holding"
// once it holds what it holds) with env, and kills it when t ends.
func holdInHelper(t *testing.T, helper, env string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "holding\n" {
		t.Fatalf("%s did not take hold: %q", helper, line)
	}
}

func TestLockedWarehouse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warehouse.db")
	holdInHelper(t, "TestHoldLock", "SLUICE_TEST_HOLD_LOCK="+path)
	_, err := duckdb.Open(context.Background(), path, "s", duckdb.Settings{})
	var locked *duckdb.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("want a LockedError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{path, "open in another program", "PID", "close that program"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "See also") {
		t.Errorf("error %q carries DuckDB's link", msg)
	}
}
