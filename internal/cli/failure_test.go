//go:build unix

package cli_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

const failSecret = "sk-live-9f8e7d6c"

// buildFailConn builds testdata/failconn once per test.
func buildFailConn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "failconn")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/failconn").CombinedOutput(); err != nil {
		t.Fatalf("build the test connector: %v\n%s", err, out)
	}
	return bin
}

func failDir(t *testing.T, mode string) string {
	dir := t.TempDir()
	cfg := `{"mode": "` + mode + `", "api_key": "` + failSecret + `"}`
	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// committedOnly checks that the warehouse and the state file hold the first
// checkpoint and nothing after it, and that the secret is nowhere in the
// warehouse.
func committedOnly(t *testing.T, dir string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, "files", "state.json")); err != nil || string(b) != `{"after":3}` {
		t.Errorf("state.json = %q, %v; want the first checkpoint", b, err)
	}
	db, err := sql.Open("duckdb", filepath.Join(dir, "files", "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, lost int
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (v = 'lost') FROM fail.item`).Scan(&n, &lost); err != nil {
		t.Fatal(err)
	}
	if n != 3 || lost != 0 {
		t.Errorf("item has %d rows, %d of them after the checkpoint; want the 3 committed ones", n, lost)
	}
	var leaks int
	if err := db.QueryRow(`SELECT count(*) FROM fail._sluice_log WHERE message LIKE '%' || ? || '%'`, failSecret).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Errorf("%d log rows hold the secret", leaks)
	}
}

func runFail(t *testing.T, bin, dir string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, "debug")
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestConnectorFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector")
	}
	bin := buildFailConn(t)
	for _, c := range []struct {
		mode string
		want []string
	}{
		{"panic", []string{"the connector's Update panicked", "assignment to entry in nil map", "main.update"}},
		{"error", []string{"the connector's Update returned an error", "the source refused key ***"}},
		{"bad-value", []string{`operation 8 (upsert into table "typed")`, `column "amount"`, `"12.3.4"`, "DECIMAL"}},
	} {
		t.Run(c.mode, func(t *testing.T) {
			dir := failDir(t, c.mode)
			stdout, stderr, code := runFail(t, bin, dir)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
			}
			for _, w := range append(c.want, "sync failed", "keep everything up to the last checkpoint") {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout+stderr, failSecret) {
				t.Errorf("the secret appears in the output:\n%s\n%s", stdout, stderr)
			}
			if !strings.Contains(stdout, "outcome: failed") {
				t.Errorf("no failed outcome in the summary:\n%s", stdout)
			}
			committedOnly(t, dir)
		})
	}
}

// Ctrl-C (SIGINT) cancels the sync's context: the run stops with a clear
// message, and the last checkpoint stays.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector")
	}
	bin := buildFailConn(t)
	dir := failDir(t, "wait")
	cmd := exec.Command(bin, "debug")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(errPipe)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if sc.Text() == "WAITING" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sync cancelled") {
		t.Errorf("no cancellation message:\n%s", stderr.String())
	}
	committedOnly(t, dir)
}

// A log call per row is rate limited on the console and in the warehouse,
// and what the limit dropped is counted.
func TestLogFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector")
	}
	bin := buildFailConn(t)
	dir := failDir(t, "flood")
	stdout, stderr, code := runFail(t, bin, dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Count(stderr, "\n")
	if lines > 1000 {
		t.Errorf("%d console lines for 100000 log calls: not rate limited", lines)
	}
	if strings.Contains(stderr, " FINE ") {
		t.Errorf("FINE records shown without --verbose")
	}
	if !strings.Contains(stderr, "log records dropped by the rate limit") {
		t.Errorf("no count of dropped records:\n%.2000s", stderr)
	}
	db, err := sql.Open("duckdb", filepath.Join(dir, "files", "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored, dropped int
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (message LIKE '%dropped by the rate limit%') FROM fail._sluice_log`).Scan(&stored, &dropped); err != nil {
		t.Fatal(err)
	}
	if stored < 2 || stored > 1000 || dropped == 0 {
		t.Errorf("_sluice_log holds %d records, %d dropped-count notes", stored, dropped)
	}
}
