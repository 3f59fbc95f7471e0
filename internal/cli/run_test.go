//go:build unix

package cli_test

// `run` end to end: a real connector program (testdata/crashconn,
// testdata/failconn) synced into DuckDB and, with SLUICE_POSTGRES_URL, into
// PostgreSQL, as a scheduler would start it.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func buildTestConn(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a connector")
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build the test connector: %v\n%s", err, out)
	}
	return bin
}

type runOutput struct {
	code  int
	lines []map[string]any // stderr, one JSON object per line
	raw   string
}

// last returns the last line whose msg is msg.
func (o runOutput) last(msg string) map[string]any {
	for i := len(o.lines) - 1; i >= 0; i-- {
		if o.lines[i]["msg"] == msg {
			return o.lines[i]
		}
	}
	return nil
}

func runProd(t *testing.T, bin, dir string, env []string, args ...string) runOutput {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := runOutput{raw: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		out.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if stdout.Len() > 0 {
		t.Errorf("run wrote to stdout: %s", stdout.String())
	}
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", sc.Text())
			continue
		}
		for _, k := range []string{"time", "level", "msg", "component"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line without %q: %s", k, sc.Text())
			}
		}
		out.lines = append(out.lines, m)
	}
	return out
}

// checkSummary checks the final line of a run.
func checkSummary(t *testing.T, o runOutput, outcome string, minOps float64) map[string]any {
	t.Helper()
	if len(o.lines) == 0 {
		t.Fatalf("no output")
	}
	sum := o.lines[len(o.lines)-1]
	if outcome == "failed" {
		sum = o.last("sync summary")
	}
	if sum == nil || sum["msg"] != "sync summary" || sum["outcome"] != outcome {
		t.Fatalf("summary %v, want outcome %s\n%s", sum, outcome, o.raw)
	}
	if ops, _ := sum["operations"].(float64); ops < minOps {
		t.Errorf("summary operations %v, want at least %v", sum["operations"], minOps)
	}
	return sum
}

// TestRun builds the test connectors once for its cases.
func TestRun(t *testing.T) {
	crash := buildTestConn(t, "crashconn")
	fail := buildFailConn(t)
	t.Run("duckdb", func(t *testing.T) { testRunIntoDuckDB(t, crash) })
	t.Run("no destination", func(t *testing.T) { testRunNeedsADestination(t, crash) })
	t.Run("failure", func(t *testing.T) { testRunFailure(t, fail) })
	t.Run("postgres", func(t *testing.T) { testRunIntoPostgres(t, crash) })
}

func testRunIntoDuckDB(t *testing.T, bin string) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "prod.db")
	o := runProd(t, bin, dir, nil, "--destination", "duckdb:"+wh)
	if o.code != 0 {
		t.Fatalf("exit %d\n%s", o.code, o.raw)
	}
	sum := checkSummary(t, o, "success", 600)
	if tables, _ := sum["tables"].([]any); len(tables) != 4 { // never_written has no operations
		t.Errorf("summary tables %v", sum["tables"])
	}
	if start := o.last("sync started"); start == nil || start["state"] != "none (first sync)" || start["schema"] != "crash" {
		t.Errorf("start line %v", start)
	}
	if o.last("schema change") == nil {
		t.Errorf("no schema change logged")
	}
	// No state file: the destination holds the state.
	if _, err := os.Stat(filepath.Join(dir, "files")); !os.IsNotExist(err) {
		t.Errorf("run made a files folder: %v", err)
	}
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var state string
	err = db.QueryRow(`SELECT (SELECT count(*) FROM crash.accounts), (SELECT state::VARCHAR FROM crash._sluice_state)`).Scan(&n, &state)
	db.Close()
	if err != nil || n == 0 || !strings.Contains(state, `"pos":600`) {
		t.Fatalf("warehouse: %d accounts, state %s, %v", n, state, err)
	}
	// The next run resumes from the destination's state: nothing left.
	o = runProd(t, bin, dir, []string{"SLUICE_DESTINATION=duckdb:" + wh})
	if o.code != 0 {
		t.Fatalf("second run: exit %d\n%s", o.code, o.raw)
	}
	sum = checkSummary(t, o, "success", 0)
	if sum["operations"] != 0.0 {
		t.Errorf("second run: %v operations, want 0", sum["operations"])
	}
	if start := o.last("sync started"); start == nil || !strings.Contains(start["state"].(string), `"pos":600`) {
		t.Errorf("second run started from %v", start)
	}
}

func testRunNeedsADestination(t *testing.T, bin string) {
	o := runProd(t, bin, t.TempDir(), []string{"SLUICE_DESTINATION="})
	if o.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", o.code, o.raw)
	}
	if f := o.last("sync failed"); f == nil || f["level"] != "SEVERE" || !strings.Contains(f["error"].(string), "--destination") || !strings.Contains(f["error"].(string), "SLUICE_DESTINATION") {
		t.Errorf("failure line %v", f)
	}
	o = runProd(t, bin, t.TempDir(), nil, "--destination", "nosuch://x")
	if f := o.last("sync failed"); o.code != 1 || f == nil || !strings.Contains(f["error"].(string), "unknown scheme") {
		t.Errorf("unknown scheme: exit %d, %v", o.code, f)
	}
}

// A connector that fails after a checkpoint: exit 1, the error as JSON with
// the secret masked, the checkpoint kept in the destination, and the logs
// there too.
func testRunFailure(t *testing.T, bin string) {
	dir := failDir(t, "error")
	wh := filepath.Join(dir, "prod.db")
	o := runProd(t, bin, dir, nil, "--destination", "duckdb:"+wh)
	if o.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", o.code, o.raw)
	}
	if strings.Contains(o.raw, failSecret) {
		t.Errorf("the secret appears in the output:\n%s", o.raw)
	}
	f := o.last("sync failed")
	if f == nil || !strings.Contains(f["error"].(string), "the source refused key ***") || f["committed"] != true {
		t.Errorf("failure line %v", f)
	}
	checkSummary(t, o, "failed", 7)
	var info map[string]any
	for _, l := range o.lines {
		if l["component"] == "connector" {
			info = l
		}
	}
	if info == nil || info["level"] != "INFO" || info["msg"] != "starting with key ***" {
		t.Errorf("connector log line %v", info)
	}
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, logs int
	var state string
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM fail.item), (SELECT state::VARCHAR FROM fail._sluice_state), (SELECT count(*) FROM fail._sluice_log WHERE message = 'starting with key ***')`).Scan(&n, &state, &logs); err != nil {
		t.Fatal(err)
	}
	if n != 3 || state != `{"after":3}` || logs != 1 {
		t.Errorf("destination: %d items, state %s, %d log rows; want the first checkpoint and the log", n, state, logs)
	}
}

// The same connector into PostgreSQL, with a password in the URL that no
// line may show.
func testRunIntoPostgres(t *testing.T, bin string) {
	pg := os.Getenv("SLUICE_POSTGRES_URL")
	if pg == "" {
		t.Skip("set SLUICE_POSTGRES_URL to run sluice run against PostgreSQL")
	}
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	const password = "pw-run-test-not-shown"
	u.User = url.UserPassword(u.User.Username(), password)
	schema := "run_" + strings.ReplaceAll(filepath.Base(t.TempDir()), "-", "_")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
		c.Close(ctx)
	})
	for i, wantOps := range []float64{600, 0} {
		o := runProd(t, bin, t.TempDir(), nil, "--destination", u.String(), "--schema", schema)
		if o.code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, o.code, o.raw)
		}
		sum := checkSummary(t, o, "success", wantOps)
		if i == 1 && sum["operations"] != 0.0 {
			t.Errorf("second run: %v operations, want 0", sum["operations"])
		}
		if strings.Contains(o.raw, password) {
			t.Errorf("the password appears in the output:\n%s", o.raw)
		}
		if start := o.last("sync started"); start == nil || !strings.Contains(start["destination"].(string), ":***@") {
			t.Errorf("start line %v", start)
		}
	}
	var n int
	var state string
	if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM "`+schema+`".accounts), (SELECT state::text FROM "`+schema+`"._sluice_state)`).Scan(&n, &state); err != nil {
		t.Fatal(err)
	}
	if n == 0 || !strings.Contains(state, `"pos":600`) {
		t.Errorf("PostgreSQL: %d accounts, state %s", n, state)
	}
}
