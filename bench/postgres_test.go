package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	flagPGRows  = flag.Int64("pg-rows", 200_000, "TestPostgresBenchReport: rows each run loads")
	flagPGReps  = flag.Int("pg-reps", 3, "TestPostgresBenchReport: runs of each scenario; the median is reported")
	flagPGBatch = flag.Int("pg-batch", 0, "engine.Options.BatchRows for the PostgreSQL runs (0: the engine's default)")
	flagPGPair  = flag.String("pg-pair", "", "TestPostgresBenchReport: run only the pairs whose name contains this (\"initial\", \"upsert\")")
)

func pgURL(t *testing.T) string {
	u := os.Getenv("SLUICE_POSTGRES_URL")
	if u == "" {
		t.Skip("set SLUICE_POSTGRES_URL=postgres://user@host:5432/db?sslmode=disable to run the PostgreSQL benchmarks")
	}
	return u
}

// pgScenario is one timed run in a fresh schema; populated runs start from
// a table holding [0, rows), made untimed.
type pgScenario struct {
	name      string
	populated bool
	run       func(ctx context.Context, url, schema string, rows int64) (time.Duration, error)
}

type pgPair struct {
	name             string
	raw, sdk         pgScenario
	wantRows, wantV1 func(int64) int64
}

var pgPairs = []pgPair{
	{
		name: "initial load",
		raw:  pgScenario{name: "raw CopyFrom, no key", run: PGRawLoad},
		sdk: pgScenario{name: "sluice, keyed", run: func(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
			return PGSluiceLoad(ctx, url, schema, rows, *flagPGBatch)
		}},
		wantRows: func(n int64) int64 { return n }, wantV1: func(int64) int64 { return 0 },
	},
	{
		// The same load against the limit for sluice's table shape
		// (primary key, system columns): see PGRawLoadKeyed.
		name: "initial load, same keyed table",
		raw:  pgScenario{name: "raw CopyFrom, then key", run: PGRawLoadKeyed},
		sdk: pgScenario{name: "sluice, keyed", run: func(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
			return PGSluiceLoad(ctx, url, schema, rows, *flagPGBatch)
		}},
		wantRows: func(n int64) int64 { return n }, wantV1: func(int64) int64 { return 0 },
	},
	{
		name: "upsert, populated",
		raw:  pgScenario{name: "raw COPY temp + ON CONFLICT", populated: true, run: PGRawUpsert},
		sdk: pgScenario{name: "sluice upsert", populated: true, run: func(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
			return PGSluiceUpsert(ctx, url, schema, rows, *flagPGBatch)
		}},
		wantRows: func(n int64) int64 { return n + n/2 }, wantV1: func(n int64) int64 { return n },
	},
}

// runPG runs s once in a new schema and checks what it left.
func runPG(ctx context.Context, url string, s pgScenario, rows int64, wantRows, wantV1 int64) (wall, cpu time.Duration, err error) {
	schema := PGSchema()
	defer DropPGSchema(context.WithoutCancel(ctx), url, schema)
	if s.populated {
		if err := PGPopulate(ctx, url, schema, rows); err != nil {
			return 0, 0, fmt.Errorf("populate: %w", err)
		}
	}
	cpu0 := processCPU()
	wall, err = s.run(ctx, url, schema, rows)
	cpu = processCPU() - cpu0
	if err != nil {
		return 0, 0, err
	}
	n, v1, err := PGSummary(ctx, url, schema)
	if err != nil {
		return 0, 0, err
	}
	if n != wantRows || v1 != wantV1 {
		return 0, 0, fmt.Errorf("%s left %d rows (%d at version 1), want %d (%d)", s.name, n, v1, wantRows, wantV1)
	}
	return wall, cpu, nil
}

// TestPostgresScenariosAgree runs each scenario on a few rows: raw and
// sluice must leave the same row counts and versions.
func TestPostgresScenariosAgree(t *testing.T) {
	url := pgURL(t)
	ctx := context.Background()
	const rows = 3000
	for _, p := range pgPairs {
		for _, s := range []pgScenario{p.raw, p.sdk} {
			if _, _, err := runPG(ctx, url, s, rows, p.wantRows(rows), p.wantV1(rows)); err != nil {
				t.Errorf("%s / %s: %v", p.name, s.name, err)
			}
		}
	}
}

// TestPostgresBenchReport runs each pair -pg-reps times, alternating which
// goes first, and prints the median rows/s and their ratio (goal 0.80). It
// runs only with SLUICE_BENCH=1 and a database:
//
//	SLUICE_BENCH=1 SLUICE_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./bench -run TestPostgresBenchReport -v -timeout 60m -pg-rows 1000000
func TestPostgresBenchReport(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("benchmark report: set SLUICE_BENCH=1 to run it (see BENCHMARKS.md)")
	}
	url := pgURL(t)
	ctx := context.Background()
	rows, reps := *flagPGRows, max(*flagPGReps, 1)
	fmt.Printf("\nsluice PostgreSQL benchmark: %d rows per run, %d runs each, GOMAXPROCS %d, %s, batch rows %d, loadavg %s\n",
		rows, reps, runtime.GOMAXPROCS(0), runtime.Version(), *flagPGBatch, loadavgPG())
	fmt.Printf("%-20s %-30s %12s %-16s %12s %6s %-9s %s\n", "pair", "raw", "rows/s", "sluice", "rows/s", "ratio", "goal 0.80", "client cpu s raw/sluice")
	for _, p := range pgPairs {
		if !strings.Contains(p.name, *flagPGPair) {
			continue
		}
		var raw, sdk, rawCPU, sdkCPU []float64
		for i := 0; i < reps; i++ {
			order := []pgScenario{p.raw, p.sdk}
			if i%2 == 1 {
				order = []pgScenario{p.sdk, p.raw}
			}
			for _, s := range order {
				d, c, err := runPG(ctx, url, s, rows, p.wantRows(rows), p.wantV1(rows))
				if err != nil {
					t.Fatalf("%s / %s: %v", p.name, s.name, err)
				}
				rate, cpu := float64(rows)/d.Seconds(), c.Seconds()
				if s.name == p.raw.name {
					raw, rawCPU = append(raw, rate), append(rawCPU, cpu)
				} else {
					sdk, sdkCPU = append(sdk, rate), append(sdkCPU, cpu)
				}
			}
		}
		r, s := medianPG(raw), medianPG(sdk)
		verdict := "met"
		if s/r < 0.80 {
			verdict = "MISSED"
		}
		fmt.Printf("%-20s %-30s %12.0f %-16s %12.0f %6.2f %-9s %.2f/%.2f\n", p.name, p.raw.name, r, p.sdk.name, s, s/r, verdict, medianPG(rawCPU), medianPG(sdkCPU))
		t.Logf("%s: raw %.0f, sluice %.0f rows/s", p.name, raw, sdk)
	}
	fmt.Printf("rows/s: median of the runs, wall clock from connecting to the commit; client cpu: this process's user+system seconds\n"+
		"in the same span (the server's are not in it). loadavg at end %s\n", loadavgPG())
}

func medianPG(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// processCPU is this process's user and system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavgPG() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return string(b[:min(len(b), 14)])
}
