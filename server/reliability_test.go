package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/riverqueue/river"
)

// TestRestartLosesNothing stops a server in the middle of a sync and starts
// another on the same data folder: connections, destinations, schedules,
// API keys, run history, logs and state are all there, and the interrupted
// sync runs again.
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	h.duckDest("local")
	failFile := filepath.Join(t.TempDir(), "failed")
	h.deploy("keep", "local", map[string]string{"rows": "2", "api_token": "secret-token-1"}, "30 3 * * *")
	h.must("POST", "/api/connections/keep/sync", nil, 202, nil)
	h.waitRuns("keep", "the first run", func(r []Run) bool { return finished(r, RunSucceeded) == 1 })
	var state1 StateView
	h.must("GET", "/api/connections/keep/state", nil, 200, &state1)

	// The second run hangs until the server stops.
	h.must("PATCH", "/api/connections/keep", map[string]any{"configuration": map[string]string{
		"rows": "2", "api_token": Mask, "fail_file": failFile, "fail_mode": "hang"}}, 200, nil)
	h.must("POST", "/api/connections/keep/sync", nil, 202, nil)
	waitPID(t, failFile+".pid")
	before := h.connection("keep")
	beforeRuns := h.runs("keep")
	firstLogs := h.logs(beforeRuns[1].ID)
	h.stop()

	h.start()
	after := h.connection("keep") // the old API key works: keys survive too
	if after.Schedule != "30 3 * * *" || after.Destination != "local" || after.Binary == nil ||
		after.Binary.SHA256 != before.Binary.SHA256 || after.Configuration["api_token"] != Mask ||
		after.Configuration["fail_mode"] != "hang" || after.NextRunAt == nil || after.NextRunAt.Hour() != 3 || after.NextRunAt.Minute() != 30 {
		t.Errorf("connection after restart: %+v (binary %+v)", after, after.Binary)
	}
	if logText(h.logs(beforeRuns[1].ID)) != logText(firstLogs) {
		t.Errorf("the first run's logs changed across the restart")
	}
	runs := h.waitRuns("keep", "the interrupted run to run again", func(r []Run) bool {
		return len(r) == 3 && r[0].Status == RunSucceeded
	})
	if r := runs[1]; r.Status != RunFailed || !strings.Contains(r.Error, "the server is shutting down") {
		t.Errorf("interrupted run: %+v", r)
	}
	if r := runs[2]; r.ID != beforeRuns[1].ID || r.Status != RunSucceeded || !slices.Equal(r.Tables, beforeRuns[1].Tables) {
		t.Errorf("first run after restart: %+v, before: %+v", r, beforeRuns[1])
	}
	var state2 StateView
	h.must("GET", "/api/connections/keep/state", nil, 200, &state2)
	if compact(state1.State) != `{"events":{"run":1},"items":{"rows":2}}` || compact(state2.State) != `{"events":{"run":2},"items":{"rows":2}}` {
		t.Errorf("state before %s, after the restart and a run %s", state1.State, state2.State)
	}
}

// noOverlap checks that the runs are successful and one after another.
func noOverlap(t *testing.T, runs []Run, lockFile string) {
	t.Helper()
	if _, err := os.Stat(lockFile + ".overlap"); err == nil {
		t.Errorf("the connector saw two runs at once")
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	for i, r := range runs {
		if r.Status != RunSucceeded {
			t.Errorf("run %d: %s %s", r.ID, r.Status, r.Error)
		}
		if i > 0 && r.StartedAt.Before(*runs[i-1].FinishedAt) {
			t.Errorf("run %d started at %s, before run %d ended at %s", r.ID, r.StartedAt, runs[i-1].ID, runs[i-1].FinishedAt)
		}
	}
}

// TestRunsNeverOverlap triggers a connection several times at once; then
// bypasses River's unique jobs (as a job rescued from a worker that is in
// fact alive would): the connection's lock still keeps runs apart.
func TestRunsNeverOverlap(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	h := startServer(t, cfg)
	h.duckDest("local")
	lock := filepath.Join(t.TempDir(), "lock")
	h.deploy("busy", "local", map[string]string{"lock_file": lock, "sleep_ms": "1500"}, "manual")

	var wg sync.WaitGroup
	results := make([]TriggerResult, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.must("POST", "/api/connections/busy/sync", nil, 202, &results[i])
		}()
	}
	wg.Wait()
	queued := 0
	for _, r := range results {
		if r.Queued {
			queued++
		}
	}
	if queued < 1 || queued > 2 {
		t.Errorf("4 triggers at once queued %d runs, want 1 or 2: %+v", queued, results)
	}
	// One more during the run: it queues one run after it.
	h.waitRuns("busy", "the first run to start", func(r []Run) bool { return len(r) >= 1 })
	var during TriggerResult
	h.must("POST", "/api/connections/busy/sync", nil, 202, &during)
	runs := h.waitRuns("busy", "every queued run to end", func(r []Run) bool {
		return len(r) >= 2 && finished(r, RunRunning) == 0 && h.idle("busy")
	})
	noOverlap(t, runs, lock)

	// Two jobs of the same connection inserted without uniqueness.
	n := len(runs)
	for range 2 {
		if _, err := h.srv.jobs.Insert(context.Background(), syncArgs{ConnectionID: h.connID("busy"), Trigger: "manual"},
			&river.InsertOpts{Queue: queueSync}); err != nil {
			t.Fatal(err)
		}
	}
	runs = h.waitRuns("busy", "both extra runs to end", func(r []Run) bool {
		return len(r) == n+2 && finished(r, RunRunning) == 0
	})
	noOverlap(t, runs, lock)
}

func (h *harness) idle(conn string) bool {
	jobs, err := h.srv.pendingJobs(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return jobs[h.connID(conn)] == nil
}

func (h *harness) connID(conn string) int64 {
	c, err := h.srv.st.connByName(context.Background(), conn)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.id
}

// TestSchedule: interval schedules run by themselves; pause stops them.
func TestSchedule(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.TickInterval = 200 * 1e6
	h := startServer(t, cfg)
	h.duckDest("local")
	h.deploy("ticking", "local", nil, "1s")
	runs := h.waitRuns("ticking", "two scheduled runs", func(r []Run) bool { return finished(r, RunSucceeded) >= 2 })
	for _, r := range runs {
		if r.Trigger != "schedule" {
			t.Errorf("run %d trigger %q, want schedule", r.ID, r.Trigger)
		}
	}
	var c Connection
	h.must("POST", "/api/connections/ticking/pause", nil, 200, &c)
	if !c.Paused || c.NextRunAt != nil {
		t.Errorf("paused connection: %+v", c)
	}
	status, b := h.call("POST", "/api/connections/ticking/sync", nil)
	if status != 409 || !strings.Contains(string(b), "paused") {
		t.Errorf("sync of a paused connection: %d %s", status, b)
	}
	h.must("POST", "/api/connections/ticking/resume", nil, 200, &c)
	if c.Paused || c.NextRunAt == nil {
		t.Errorf("resumed connection: %+v", c)
	}
}
