package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/connectors/postgres"
)

var (
	flagPGSRows   = flag.Int64("pgsource-rows", 1_000_000, "TestPGSourceReport: rows in the PostgreSQL table")
	flagPGSReps   = flag.Int("pgsource-reps", 3, "TestPGSourceReport: runs of each scenario; the median is reported")
	flagPGSKeep   = flag.Bool("pgsource-keep", false, "TestPGSourceReport: keep the generated PostgreSQL table for the next run")
	flagPGSCkpt   = flag.Int64("pgsource-checkpoint", 0, "TestPGSourceReport: the connector's checkpoint_rows (0: its default, 100,000)")
	flagPGSSchema = flag.String("pgsource-schema", "sluice_bench_pgsource", "TestPGSourceReport: the PostgreSQL schema of the generated table")
)

func pgsURL(t *testing.T) string {
	u := os.Getenv("SLUICE_POSTGRES_URL")
	if u == "" {
		t.Skip("SLUICE_POSTGRES_URL is not set: set it to a PostgreSQL URL, such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL source benchmark")
	}
	return u
}

// TestPGSourceQuick checks, on a few rows, that the raw path and the
// connector (both read methods) load the same data.
func TestPGSourceQuick(t *testing.T) {
	url := pgsURL(t)
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	schema := "sluice_bench_q" + hex.EncodeToString(b)
	t.Cleanup(func() { PGSourceDrop(context.Background(), url, schema) })
	const rows = 20_000
	if _, err := PGSourceGenerate(ctx, url, schema, rows); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.db")
	if _, n, err := PGSourceRaw(ctx, url, schema, raw, false, Config{}); err != nil || n != rows {
		t.Fatalf("raw: %d rows, %v", n, err)
	}
	want, err := PGSourceSummary(ctx, raw, Table)
	if err != nil {
		t.Fatal(err)
	}
	// Gen's rows, as the other scenarios load them, checksum alike.
	gen := filepath.Join(dir, "gen.db")
	if _, err := RawLoad(ctx, gen, rows, Keyed, Config{}); err != nil {
		t.Fatal(err)
	}
	if s, err := PGSourceSummary(ctx, gen, Table); err != nil || s != want {
		t.Errorf("generated in PostgreSQL %+v, by Gen %+v (%v)", want, s, err)
	}
	for _, m := range []postgres.ReadMethod{postgres.ReadCopy, postgres.ReadQuery} {
		p := filepath.Join(dir, fmt.Sprintf("sluice%d.db", m))
		if _, err := PGSourceSluice(ctx, url, schema, p, m, 7_000, Config{}); err != nil {
			t.Fatal(err)
		}
		if s, err := PGSourceSummary(ctx, p, PGSourceDest(schema)); err != nil || s != want {
			t.Errorf("read method %d: %+v, want %+v (%v)", m, s, want, err)
		}
	}
}

// pgsScenario is one measured run, in a process of its own so that its peak
// RSS is its own.
type pgsScenario struct {
	name string
	mode string // what the child runs
}

var pgsScenarios = []pgsScenario{
	{"raw: COPY binary -> appender", "raw"},
	{"raw: COPY binary ORDER BY id -> appender", "raw-ordered"},
	{"sluice: postgres connector (COPY) -> engine", "sluice-copy"},
	{"sluice: postgres connector (query) -> engine", "sluice-query"},
	{"raw: generated rows -> appender (bench.go's raw keyed)", "raw-gen"},
}

type pgsResult struct {
	secs  float64
	cpu   float64 // the child's user + system CPU seconds: less affected by other load than wall time
	rssKB int64
}

// TestPGSourceReport prints the PostgreSQL-to-DuckDB sync rate against the
// raw appender on the same rows, with each scenario's peak RSS:
//
//	SLUICE_BENCH=1 go test ./bench -run TestPGSourceReport -v -timeout 60m -pgsource-rows 10000000
func TestPGSourceReport(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") == "" {
		t.Skip("set SLUICE_BENCH=1 to run the PostgreSQL source report (minutes)")
	}
	url := pgsURL(t)
	ctx := context.Background()
	rows := *flagPGSRows
	start := time.Now()
	made, err := PGSourceGenerate(ctx, url, *flagPGSSchema, rows)
	if err != nil {
		t.Fatal(err)
	}
	if made {
		t.Logf("generated %d rows in PostgreSQL in %.1fs", rows, time.Since(start).Seconds())
	}
	if !*flagPGSKeep {
		t.Cleanup(func() { PGSourceDrop(context.Background(), url, *flagPGSSchema) })
	}
	results := map[string][]pgsResult{}
	for rep := 0; rep < *flagPGSReps; rep++ {
		for _, s := range pgsScenarios {
			r, err := runPGSChild(t, s.mode, rows)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			results[s.mode] = append(results[s.mode], r)
			t.Logf("run %d %-55s %6.2fs %9.0f rows/s  CPU %6.2fs  peak RSS %4d MB", rep+1, s.name, r.secs, float64(rows)/r.secs, r.cpu, r.rssKB/1024)
		}
	}
	med := func(mode string) pgsResult {
		rs := slices.Clone(results[mode])
		slices.SortFunc(rs, func(a, b pgsResult) int { return int((a.secs - b.secs) * 1e6) })
		return rs[len(rs)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d rows, median of %d runs\n", rows, *flagPGSReps)
	fmt.Fprintf(&b, "%-55s %9s %11s %9s %9s\n", "scenario", "seconds", "rows/s", "CPU s", "peak RSS")
	for _, s := range pgsScenarios {
		r := med(s.mode)
		fmt.Fprintf(&b, "%-55s %9.2f %11.0f %9.2f %6d MB\n", s.name, r.secs, float64(rows)/r.secs, r.cpu, r.rssKB/1024)
	}
	raw := med("raw")
	for _, m := range []string{"sluice-copy", "sluice-query"} {
		fmt.Fprintf(&b, "ratio %s / raw COPY: %.2f by wall time (goal 0.70), %.2f by CPU time\n", m, raw.secs/med(m).secs, raw.cpu/med(m).cpu)
	}
	fmt.Fprintf(&b, "ratio sluice-copy / raw COPY ORDER BY id: %.2f by wall time, %.2f by CPU time\n",
		med("raw-ordered").secs/med("sluice-copy").secs, med("raw-ordered").cpu/med("sluice-copy").cpu)
	t.Log(b.String())
}

// runPGSChild runs one scenario in a child test process and reads its
// result line.
func runPGSChild(t *testing.T, mode string, rows int64) (pgsResult, error) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPGSourceChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "SLUICE_PGSOURCE_CHILD="+mode, "SLUICE_PGSOURCE_DB="+filepath.Join(dir, "w.db"),
		"SLUICE_PGSOURCE_SCHEMA="+*flagPGSSchema, fmt.Sprintf("SLUICE_PGSOURCE_ROWS=%d", rows),
		fmt.Sprintf("SLUICE_PGSOURCE_CKPT=%d", *flagPGSCkpt))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgsResult{}, fmt.Errorf("%v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "PGSOURCE" {
			secs, err1 := strconv.ParseFloat(f[1], 64)
			rss, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				cpu := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
				return pgsResult{secs: secs, cpu: cpu, rssKB: rss}, nil
			}
		}
	}
	return pgsResult{}, fmt.Errorf("no result line in:\n%s", out)
}

// TestPGSourceChild is one scenario of TestPGSourceReport, in its own
// process; it prints "PGSOURCE seconds peak-RSS-KB".
func TestPGSourceChild(t *testing.T) {
	mode := os.Getenv("SLUICE_PGSOURCE_CHILD")
	if mode == "" {
		t.Skip("run by TestPGSourceReport")
	}
	url := pgsURL(t)
	ctx := context.Background()
	path := os.Getenv("SLUICE_PGSOURCE_DB")
	schema := os.Getenv("SLUICE_PGSOURCE_SCHEMA")
	rows, _ := strconv.ParseInt(os.Getenv("SLUICE_PGSOURCE_ROWS"), 10, 64)
	ckpt, _ := strconv.ParseInt(os.Getenv("SLUICE_PGSOURCE_CKPT"), 10, 64)
	var d time.Duration
	var err error
	summary := PGSourceDest(schema)
	switch mode {
	case "raw", "raw-ordered":
		var n int64
		d, n, err = PGSourceRaw(ctx, url, schema, path, mode == "raw-ordered", Config{})
		if err == nil && n != rows {
			err = fmt.Errorf("read %d rows, want %d", n, rows)
		}
		summary = Table
	case "raw-gen":
		d, err = RawLoad(ctx, path, rows, Keyed, Config{})
		summary = Table
	case "sluice-copy":
		d, err = PGSourceSluice(ctx, url, schema, path, postgres.ReadCopy, ckpt, Config{})
	case "sluice-query":
		d, err = PGSourceSluice(ctx, url, schema, path, postgres.ReadQuery, ckpt, Config{})
	default:
		err = fmt.Errorf("unknown scenario %q", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	rss := pgsPeakRSSKB()
	if s, err := PGSourceSummary(ctx, path, summary); err != nil || s.Rows != rows {
		t.Fatalf("the warehouse holds %d rows, want %d (%v)", s.Rows, rows, err)
	}
	fmt.Printf("PGSOURCE %.3f %d\n", d.Seconds(), rss)
}

// pgsPeakRSSKB reads the process's peak resident set (VmHWM).
func pgsPeakRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
