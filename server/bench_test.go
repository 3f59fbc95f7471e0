package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkTriggerToRun times what the server adds to a sync: from the API
// call that triggers it to the run's start (a worker took the job, the
// connection's lock, and recorded the run) and to the run's end (the
// connector program ran: a few rows into a DuckDB file). It reports both
// per sync, on the embedded store and, with SLUICE_POSTGRES_URL, on
// PostgreSQL; "direct" is the limit: the same program run by hand, as the
// server runs it, with no server around it.
//
//	SLUICE_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./server -run '^$' -bench TriggerToRun -benchtime 20x
func BenchmarkTriggerToRun(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		dir := b.TempDir()
		cfg := filepath.Join(dir, "configuration.json")
		if err := os.WriteFile(cfg, []byte(`{"rows": "3"}`), 0o600); err != nil {
			b.Fatal(err)
		}
		wh := "duckdb:" + filepath.Join(dir, "wh.db")
		b.ResetTimer()
		for range b.N {
			cmd := exec.Command(testconn, "run", "--schema", "bench", "--configuration", cfg)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SLUICE_DESTINATION=" + wh}
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
	b.Run("sqlite", func(b *testing.B) { benchTrigger(b, testConfig(b.TempDir())) })
	b.Run("postgres", func(b *testing.B) {
		u := os.Getenv("SLUICE_POSTGRES_URL")
		if u == "" {
			b.Skip("SLUICE_POSTGRES_URL is not set: PostgreSQL store skipped")
		}
		cfg := testConfig(b.TempDir())
		cfg.DB = pgSchema(b, u)
		benchTrigger(b, cfg)
	})
}

func benchTrigger(b *testing.B, cfg Config) {
	h := startServer(b, cfg)
	h.duckDest("local")
	h.deploy("bench", "local", map[string]string{"rows": "3"}, "manual")
	var toStart, toEnd time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		var tr TriggerResult
		h.must("POST", "/api/connections/bench/sync", nil, 202, &tr)
		started := false
		for {
			runs := h.runs("bench")
			if len(runs) == i+1 {
				if !started {
					toStart += time.Since(t0)
					started = true
				}
				if runs[0].Status != RunRunning {
					if runs[0].Status != RunSucceeded {
						b.Fatalf("run %d: %+v", i+1, runs[0])
					}
					toEnd += time.Since(t0)
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(toStart.Milliseconds())/float64(b.N), "ms-to-start/op")
	b.ReportMetric(float64(toEnd.Milliseconds())/float64(b.N), "ms-to-end/op")
}
