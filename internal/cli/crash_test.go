//go:build unix

package cli_test

// The crash test runs a real connector program (testdata/crashconn) with
// `debug`, kills it with SIGKILL at random points, restarts it until a run
// succeeds, and checks that the warehouse and the state file end up exactly
// as after a run that was never interrupted. The kills land
//
//   - anywhere, from outside, after a random delay (often inside a commit);
//   - inside Update, between two operations (CRASHCONN_KILL_AT=k, the
//     connector kills itself before its k-th operation);
//   - between a commit and the state file write
//     (SLUICE_TEST_CRASH_AFTER_COMMIT=n, a hook in debug.go's OnCommit).
//
// SLUICE_CRASH_SEED=n replays a seed; SLUICE_CRASH_ITERATIONS=n changes the
// number of interrupted syncs. It runs once per destination: DuckDB, and
// PostgreSQL when SLUICE_POSTGRES_URL names a database (each run of the
// connector then gets --destination and a schema of its own).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedata/sluice/destination/duckdb"
)

const crashSchema = "crash"

// crashDest is where the crash test's runs sync to: args are the extra
// arguments of run i (0 is the uninterrupted one), dump lists what run i
// left.
type crashDest struct {
	args func(run int) []string
	dump func(dir string, run int) ([]string, error)
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a connector many times")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the test connector")
	}
	bin := filepath.Join(t.TempDir(), "crashconn")
	build := exec.Command(goBin, "build", "-o", bin, "./testdata/crashconn")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test connector: %v\n%s", err, out)
	}
	t.Run("duckdb", func(t *testing.T) {
		crashRecovery(t, bin, crashDest{
			args: func(int) []string { return nil },
			dump: func(dir string, _ int) ([]string, error) { return dumpWarehouse(dir) },
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := os.Getenv("SLUICE_POSTGRES_URL")
		if pg == "" {
			t.Skip("set SLUICE_POSTGRES_URL to run the crash test against PostgreSQL")
		}
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("crash_%d_", time.Now().UnixNano()%1_000_000_000)
		schema := func(run int) string { return prefix + strconv.Itoa(run) }
		t.Cleanup(func() {
			rows, err := admin.Query(ctx, `SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)`, prefix)
			if err == nil {
				names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
				for _, n := range names {
					admin.Exec(ctx, `DROP SCHEMA "`+n+`" CASCADE`)
				}
			}
			admin.Close(ctx)
		})
		crashRecovery(t, bin, crashDest{
			args: func(run int) []string { return []string{"--destination", pg, "--schema", schema(run)} },
			dump: func(_ string, run int) ([]string, error) { return dumpPostgres(ctx, pg, schema(run)) },
		})
	})
}

func crashRecovery(t *testing.T, bin string, dest crashDest) {
	var err error

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CRASH_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SLUICE_CRASH_SEED: %v", err)
		}
	}
	iterations := 18
	if s := os.Getenv("SLUICE_CRASH_ITERATIONS"); s != "" {
		if iterations, err = strconv.Atoi(s); err != nil {
			t.Fatalf("SLUICE_CRASH_ITERATIONS: %v", err)
		}
	}
	t.Logf("seed %d (replay with SLUICE_CRASH_SEED=%d)", seed, seed)

	// The uninterrupted run.
	refDir := t.TempDir()
	start := time.Now()
	if res := runConnector(bin, refDir, dest.args(0), nil, 0); res.err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", res.err, res.out)
	}
	refDuration := time.Since(start)
	refRows, err := dest.dump(refDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	refState, err := readFile(filepath.Join(refDir, "files", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(refRows) < 100 || !strings.Contains(refState, `"pos":`) {
		t.Fatalf("the uninterrupted run wrote too little: %d rows, state %s", len(refRows), refState)
	}

	// Each iteration gets its own generator, so that they can run two at a
	// time and still replay from the seed.
	type plan struct {
		rng   *rand.Rand
		kills int
	}
	root := rand.New(rand.NewPCG(seed, 1))
	plans := make([]plan, iterations)
	for i := range plans {
		plans[i] = plan{rng: rand.New(rand.NewPCG(root.Uint64(), root.Uint64())), kills: 1 + root.IntN(3)}
	}
	var mu sync.Mutex
	counts := map[string]int{}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dir := t.TempDir()
			var log []string
			killed := 0
			for attempt := 0; ; attempt++ {
				if attempt > p.kills+3 {
					t.Errorf("iteration %d: no success after %d attempts:\n%s", i, attempt, strings.Join(log, "\n"))
					return
				}
				var env []string
				var after time.Duration
				how := "to the end"
				if killed < p.kills {
					switch p.rng.IntN(3) {
					case 0:
						after = time.Duration(p.rng.Int64N(int64(refDuration)))
						how = fmt.Sprintf("SIGKILL after %v", after.Round(time.Millisecond))
					case 1:
						k := 1 + p.rng.IntN(800)
						env = append(env, fmt.Sprintf("CRASHCONN_KILL_AT=%d", k))
						how = fmt.Sprintf("killed at operation %d", k)
					case 2:
						n := 1 + p.rng.IntN(32)
						env = append(env, fmt.Sprintf("SLUICE_TEST_CRASH_AFTER_COMMIT=%d", n))
						how = fmt.Sprintf("killed after commit %d", n)
					}
				}
				res := runConnector(bin, dir, dest.args(i+1), env, after)
				log = append(log, fmt.Sprintf("attempt %d (%s): killed=%v err=%v", attempt, how, res.killed, res.err))
				if res.killed {
					killed++
					mu.Lock()
					counts[strings.Fields(how)[0]+" "+strings.Fields(how)[1]]++
					mu.Unlock()
					continue
				}
				if res.err != nil {
					t.Errorf("iteration %d: run failed: %v\n%s\n%s", i, res.err, strings.Join(log, "\n"), res.out)
					return
				}
				break
			}
			rows, err := dest.dump(dir, i+1)
			if err != nil {
				t.Errorf("iteration %d: %v", i, err)
			} else if !slices.Equal(rows, refRows) {
				t.Errorf("iteration %d: the warehouse differs from the uninterrupted run's\n%s\n%s", i, strings.Join(log, "\n"), diffRows(rows, refRows))
			}
			if st, err := readFile(filepath.Join(dir, "files", "state.json")); err != nil || st != refState {
				t.Errorf("iteration %d: state.json %s (%v), want %s\n%s", i, st, err, refState, strings.Join(log, "\n"))
			}
		}()
	}
	wg.Wait()
	t.Logf("kills: %v", counts)
	// A kill may come too late for a run that is nearly done, but most land.
	if counts["SIGKILL after"]+counts["killed at"]+counts["killed after"] < iterations/2 {
		t.Errorf("too few kills landed: %v", counts)
	}
}

type runResult struct {
	killed bool
	err    error
	out    string
}

// runConnector runs `bin debug` in dir with args; with after > 0 it sends
// SIGKILL after that long.
func runConnector(bin, dir string, args, env []string, after time.Duration) runResult {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"debug", "--batch-rows", "7"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return runResult{err: err}
	}
	if after > 0 {
		timer := time.AfterFunc(after, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && ctx.Err() == nil {
			return runResult{killed: true, out: out.String()}
		}
	}
	return runResult{err: err, out: out.String()}
}

// dumpWarehouse lists every row of every table of the connector's schema
// (its state too, not its logs) as text, without _sluice_synced, which
// holds commit times.
func dumpWarehouse(dir string) ([]string, error) {
	db, err := duckdb.OpenDB(context.Background(), filepath.Join(dir, "files", "warehouse.db"), duckdb.Settings{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name, list(column_name || ' ' || data_type ORDER BY column_name) FROM information_schema.columns
		WHERE table_schema = ? AND table_name <> '_sluice_log' AND column_name NOT IN ('_sluice_synced', 'committed_at')
		GROUP BY table_name ORDER BY table_name`, crashSchema)
	if err != nil {
		return nil, err
	}
	type table struct {
		name string
		cols []string
	}
	var tables []table
	for rows.Next() {
		var tb table
		var cols []any
		if err := rows.Scan(&tb.name, &cols); err != nil {
			return nil, err
		}
		for _, c := range cols {
			tb.cols = append(tb.cols, c.(string))
		}
		tables = append(tables, tb)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	var out []string
	for _, tb := range tables {
		out = append(out, "table "+tb.name+": "+strings.Join(tb.cols, ", "))
		var sel []string
		for _, c := range tb.cols {
			name, _, _ := strings.Cut(c, " ")
			sel = append(sel, fmt.Sprintf(`coalesce(%q::VARCHAR, 'NULL')`, name))
		}
		q := fmt.Sprintf(`SELECT concat_ws(' | ', %s) AS r FROM %q.%q ORDER BY r`, strings.Join(sel, ", "), crashSchema, tb.name)
		rs, err := db.Query(q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		for rs.Next() {
			var r string
			if err := rs.Scan(&r); err != nil {
				return nil, err
			}
			out = append(out, tb.name+": "+r)
		}
		if err := rs.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dumpPostgres is dumpWarehouse for a schema in PostgreSQL.
func dumpPostgres(ctx context.Context, url, schema string) ([]string, error) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT table_name::text, array_agg(column_name || ' ' || data_type ORDER BY column_name COLLATE "C") FROM information_schema.columns
		WHERE table_schema = $1 AND table_name <> '_sluice_log' AND column_name NOT IN ('_sluice_synced', 'committed_at')
		GROUP BY table_name ORDER BY table_name COLLATE "C"`, schema)
	if err != nil {
		return nil, err
	}
	type table struct {
		name string
		cols []string
	}
	var tables []table
	for rows.Next() {
		var tb table
		if err := rows.Scan(&tb.name, &tb.cols); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, tb)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	for _, tb := range tables {
		out = append(out, "table "+tb.name+": "+strings.Join(tb.cols, ", "))
		var sel []string
		for _, col := range tb.cols {
			name, _, _ := strings.Cut(col, " ")
			sel = append(sel, fmt.Sprintf(`coalesce(%q::text, 'NULL')`, name))
		}
		q := fmt.Sprintf(`SELECT concat_ws(' | ', %s) FROM %q.%q`, strings.Join(sel, ", "), schema, tb.name)
		rs, err := c.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		vals, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		slices.Sort(vals) // bytewise, as DuckDB orders
		for _, v := range vals {
			out = append(out, tb.name+": "+v)
		}
	}
	return out, nil
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func diffRows(got, want []string) string {
	in := func(l []string) map[string]int {
		m := map[string]int{}
		for _, s := range l {
			m[s]++
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	n := 0
	for _, s := range want {
		if g[s] < w[s] && n < 20 {
			fmt.Fprintf(&b, "  missing: %s\n", s)
			n++
		}
	}
	for _, s := range got {
		if w[s] < g[s] && n < 40 {
			fmt.Fprintf(&b, "  extra:   %s\n", s)
			n++
		}
	}
	return b.String()
}
