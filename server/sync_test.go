package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluicedata/sluice/destination/duckdb"
)

// queryWarehouse runs a query on a DuckDB file no run holds.
func queryWarehouse(t *testing.T, path, q string) [][]string {
	t.Helper()
	db, err := duckdb.OpenDB(context.Background(), path, duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSyncEndToEnd deploys the test connector, runs it, and checks the
// run's record, its logs, the warehouse, and the state through the API.
func TestSyncEndToEnd(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	wh := h.duckDest("local")
	res := h.deploy("shop", "local", map[string]string{"rows": "5", "api_token": "tok-very-secret-123", "log_lines": "3"}, "manual")
	if !res.Created || res.Connection.Binary == nil || res.Connection.Status != "never_run" {
		t.Fatalf("deploy result: %+v", res)
	}
	if got := res.Connection.Configuration["api_token"]; got != Mask {
		t.Errorf("configuration api_token shown as %q, want the mask", got)
	}

	var tr TriggerResult
	h.must("POST", "/api/connections/shop/sync", nil, 202, &tr)
	if !tr.Queued {
		t.Fatalf("trigger: %+v", tr)
	}
	runs := h.waitRuns("shop", "a finished run", func(r []Run) bool { return len(r) == 1 && r[0].Status != RunRunning })
	r := runs[0]
	if r.Status != RunSucceeded || r.Trigger != "manual" || r.Attempt != 1 || r.FinishedAt == nil {
		t.Fatalf("run: %+v", r)
	}
	want := []TableCounts{{Table: "events", Upserts: 1}, {Table: "items", Upserts: 5}}
	if !slices.Equal(r.Tables, want) || r.Rows != 6 {
		t.Errorf("run counts %+v (rows %d), want %+v", r.Tables, r.Rows, want)
	}
	if r.Binary != res.Connection.Binary.SHA256 {
		t.Errorf("run binary %s, want %s", r.Binary, res.Connection.Binary.SHA256)
	}

	text := logText(h.logs(r.ID))
	if !strings.Contains(text, "testconn: line i=2") {
		t.Errorf("logs lack the connector's lines:\n%s", text)
	}
	if strings.Contains(text, "tok-very-secret-123") {
		t.Errorf("logs show the secret:\n%s", text)
	}
	if !strings.Contains(text, "testconn: using token ***") {
		t.Errorf("logs lack the masked secret line:\n%s", text)
	}

	rows := queryWarehouse(t, wh, `SELECT id, value, _sluice_deleted FROM shop.items ORDER BY id`)
	if len(rows) != 5 || rows[4][0] != "5" || rows[4][1] != "v5" || rows[4][2] != "false" {
		t.Errorf("warehouse items: %v", rows)
	}

	var sv StateView
	h.must("GET", "/api/connections/shop/state", nil, 200, &sv)
	if sv.Source != "destination" || compact(sv.State) != `{"events":{"run":1},"items":{"rows":5}}` {
		t.Errorf("state: %+v %s", sv, sv.State)
	}
	c := h.connection("shop")
	if c.Status != RunSucceeded || c.LastRun == nil || c.LastRun.ID != r.ID {
		t.Errorf("connection after the run: %+v", c)
	}

	// A state set through the API is the next run's start.
	h.must("PUT", "/api/connections/shop/state", map[string]any{"state": map[string]any{"events": map[string]any{"run": 41}}}, 200, &sv)
	h.must("POST", "/api/connections/shop/sync", nil, 202, nil)
	h.waitRuns("shop", "the second run", func(r []Run) bool { return len(r) == 2 && r[0].Status == RunSucceeded })
	if got := queryWarehouse(t, wh, `SELECT max(run) FROM shop.events`); got[0][0] != "42" {
		t.Errorf("after setting the state, the run numbered %v, want 42", got)
	}
}

// TestResync checks both re-sync forms: chosen tables (soft-deleted, their
// state keys cleared) and all (state cleared).
func TestResync(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	wh := h.duckDest("local")
	h.deploy("shop", "local", map[string]string{"rows": "4"}, "manual")
	h.must("POST", "/api/connections/shop/sync", nil, 202, nil)
	h.waitRuns("shop", "first run", func(r []Run) bool { return finished(r, RunSucceeded) == 1 })

	// Re-sync "items": its rows are soft-deleted, then the run delivers
	// ids 1..2 again (the configuration now says 2 rows): 3 and 4 stay
	// deleted. The state's "items" key goes, "events" stays: the run
	// number goes on.
	h.must("PATCH", "/api/connections/shop", map[string]any{"configuration": map[string]string{"rows": "2"}}, 200, nil)
	var tr TriggerResult
	h.must("POST", "/api/connections/shop/resync", map[string]any{"tables": []string{"items"}}, 202, &tr)
	runs := h.waitRuns("shop", "re-sync run", func(r []Run) bool { return finished(r, RunSucceeded) == 2 })
	if runs[0].Trigger != "resync" {
		t.Errorf("re-sync run trigger %q", runs[0].Trigger)
	}
	if !strings.Contains(logText(h.logs(runs[0].ID)), "re-sync of tables [items]: rows soft-deleted, their state keys cleared") {
		t.Errorf("re-sync log:\n%s", logText(h.logs(runs[0].ID)))
	}
	got := queryWarehouse(t, wh, `SELECT id, _sluice_deleted FROM shop.items ORDER BY id`)
	want := [][]string{{"1", "false"}, {"2", "false"}, {"3", "true"}, {"4", "true"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items after re-sync: %v, want %v", got, want)
	}
	if got := queryWarehouse(t, wh, `SELECT max(run) FROM shop.events`); got[0][0] != "2" {
		t.Errorf("events after a re-sync of items only: max run %v, want 2", got)
	}
	if c := h.connection("shop"); c.ResyncPending != nil {
		t.Errorf("re-sync still pending: %+v", c.ResyncPending)
	}

	// Re-sync all: the state starts over, so the run number does too.
	h.must("POST", "/api/connections/shop/resync", nil, 202, nil)
	h.waitRuns("shop", "full re-sync run", func(r []Run) bool { return finished(r, RunSucceeded) == 3 })
	if got := queryWarehouse(t, wh, `SELECT count(*), max("at") = (SELECT "at" FROM shop.events WHERE run = 1) FROM shop.events`); got[0][0] != "2" || got[0][1] != "true" {
		t.Errorf("events after a full re-sync: %v (run 1 rewritten, 2 kept)", got)
	}

	// Re-sync all with truncate: every table's rows are soft-deleted,
	// and those delivered again revive.
	h.must("POST", "/api/connections/shop/resync", map[string]any{"truncate": true}, 202, nil)
	h.waitRuns("shop", "truncating re-sync run", func(r []Run) bool { return finished(r, RunSucceeded) == 4 })
	got = queryWarehouse(t, wh, `SELECT 'items', id, _sluice_deleted FROM shop.items UNION ALL SELECT 'events', run, _sluice_deleted FROM shop.events ORDER BY 1, 2`)
	want = [][]string{{"events", "1", "false"}, {"events", "2", "true"}, {"items", "1", "false"}, {"items", "2", "false"}, {"items", "3", "true"}, {"items", "4", "true"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a truncating re-sync: %v, want %v", got, want)
	}

	// A table name that is not one: 400 naming it.
	status, b := h.call("POST", "/api/connections/shop/resync", map[string]any{"tables": []string{"Bad Name"}})
	if status != 400 || !strings.Contains(string(b), `"field": "tables[0]"`) {
		t.Errorf("bad table: %d %s", status, b)
	}
}

// TestFailedRunsAreRetried: a connector that exits non-zero, panics, or is
// killed is marked failed, and retried with backoff until it succeeds.
func TestFailedRunsAreRetried(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	h.duckDest("local")
	for _, mode := range []string{"exit", "panic", "error", "hang"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := &harness{t: t, srv: h.srv, web: h.web, key: h.key, cfg: h.cfg}
			name := "fail_" + mode
			failFile := filepath.Join(t.TempDir(), "failed")
			h.deploy(name, "local", map[string]string{"fail_file": failFile, "fail_mode": mode}, "manual")
			h.must("POST", "/api/connections/"+name+"/sync", nil, 202, nil)
			if mode == "hang" {
				// Kill the connector process from outside, as the
				// kernel's OOM killer would.
				var pid int
				deadline := waitDeadline()
				for pid == 0 {
					if b, err := os.ReadFile(failFile + ".pid"); err == nil {
						pid, _ = strconv.Atoi(string(b))
					}
					deadline.check(t, "the hanging connector's pid")
				}
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			runs := h.waitRuns(name, "a failed run then a successful retry", func(r []Run) bool {
				return len(r) == 2 && r[0].Status == RunSucceeded
			})
			failed, retry := runs[1], runs[0]
			if failed.Status != RunFailed || failed.Attempt != 1 || failed.Error == "" {
				t.Fatalf("first run: %+v", failed)
			}
			wantErr := map[string]string{
				"exit":  "the connector exited with status 3: testconn: exiting with status 3",
				"panic": "deliberate panic",
				"error": "testconn: deliberate error",
				"hang":  "the connector was killed (signal: killed)",
			}[mode]
			if !strings.Contains(failed.Error, wantErr) {
				t.Errorf("error %q does not say %q", failed.Error, wantErr)
			}
			if retry.Trigger != "retry" || retry.Attempt != 2 {
				t.Errorf("retry: %+v", retry)
			}
			// Backoff: the retry waited at least RetryBase after the
			// failure.
			if gap := retry.StartedAt.Sub(*failed.FinishedAt); gap < h.cfg.RetryBase {
				t.Errorf("retry started %s after the failure, before the %s backoff", gap, h.cfg.RetryBase)
			}
		})
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

type deadline struct{ at int }

// waitDeadline bounds a polling loop (a hung test's safety net).
func waitDeadline() *deadline { return &deadline{} }

func (d *deadline) check(t *testing.T, what string) {
	t.Helper()
	d.at++
	if d.at > 90*20 {
		t.Fatalf("gave up waiting for %s", what)
	}
	sleepPoll()
}
