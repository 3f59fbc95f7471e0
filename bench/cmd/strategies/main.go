// Command strategies measures ways of writing the benchmark rows into DuckDB
// without the sluice engine, to tell what a destination design costs in
// DuckDB itself: staging tables against query appenders, INSERT OR REPLACE
// against MERGE INTO, and a PRIMARY KEY (an ART index, which DuckDB keeps in
// memory) against none. It prints rows/s, process CPU time, peak RSS, and
// DuckDB's own memory accounting (duckdb_memory()) at the highest RSS seen.
//
//	go build -o /tmp/strategies ./bench/cmd/strategies
//	/tmp/strategies -strategy qa-replace -rows 1000000
//	/tmp/strategies -strategy qa-merge -pk=false -commit-every-batch -rows 20000000 -memory-limit 128MB
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	duckdbgo "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/bench"
	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
)

var (
	strategy = flag.String("strategy", "qa-replace", "append | stage-insert | stage-replace | stage-merge | qa-insert | qa-replace | qa-merge")
	rows     = flag.Int64("rows", 1_000_000, "rows to load into an empty table")
	batch    = flag.Int64("batch", 65536, "rows per staging table or query appender")
	pk       = flag.Bool("pk", true, "declare PRIMARY KEY (id); without it, only the *-merge and *-insert strategies apply")
	randKey  = flag.Bool("randkey", false, "random BIGINT keys instead of 0..rows-1")
	perBatch = flag.Bool("commit-every-batch", false, "commit after each batch (else one transaction for all)")
	memLimit = flag.String("memory-limit", "", "DuckDB memory_limit (empty: the destination's default, 192MB)")
	threads  = flag.String("threads", "", "DuckDB threads")
)

const cols = `id, name, email, country, amount, quantity, active, created_at`

func main() {
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "strategies-")
	check(err)
	defer os.RemoveAll(dir)
	start, cpu0 := time.Now(), cpuTime()
	db, err := duckdb.OpenDB(ctx, filepath.Join(dir, "w.db"), duckdb.Settings{MemoryLimit: *memLimit, Threads: *threads})
	check(err)
	stop := monitor(ctx, db)
	conn, err := db.Conn(ctx)
	check(err)
	ddl := bench.CreateTableSQL(bench.Keyed)
	if !*pk {
		ddl = strings.Replace(ddl, `, PRIMARY KEY ("id")`, "", 1)
	}
	for _, q := range []string{`CREATE SCHEMA bench`, ddl} {
		_, err := conn.ExecContext(ctx, q)
		check(err)
	}
	target := `bench.items`
	// stmt writes the rows of src (a table, or the query appender's rows)
	// into the target.
	stmt := func(src string) string {
		switch {
		case strings.HasSuffix(*strategy, "-insert"):
			return `INSERT INTO ` + target + ` (` + cols + `, _sluice_synced, _sluice_deleted) SELECT ` + cols + `, now(), false FROM ` + src
		case strings.HasSuffix(*strategy, "-replace"):
			return `INSERT OR REPLACE INTO ` + target + ` (` + cols + `, _sluice_synced, _sluice_deleted) SELECT ` + cols + `, now(), false FROM ` + src
		case strings.HasSuffix(*strategy, "-merge"):
			return `MERGE INTO ` + target + ` t USING ` + src + ` s ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name, email = s.email, country = s.country, amount = s.amount, quantity = s.quantity, active = s.active, created_at = s.created_at, _sluice_synced = now(), _sluice_deleted = false ` +
				`WHEN NOT MATCHED THEN INSERT (` + cols + `, _sluice_synced, _sluice_deleted) VALUES (s.id, s.name, s.email, s.country, s.amount, s.quantity, s.active, s.created_at, now(), false)`
		}
		return ""
	}
	tx, err := conn.BeginTx(ctx, nil)
	check(err)
	for i, k := int64(0), 0; i < *rows; i, k = i+*batch, k+1 {
		n := min(*batch, *rows-i)
		switch {
		case *strategy == "append":
			check(conn.Raw(func(dc any) error {
				return appendRows(dc.(driver.Conn), "", "bench", "items", i, n, true)
			}))
		case strings.HasPrefix(*strategy, "stage-"):
			// Staging tables are created outside the transaction, as the
			// destination creates them before its commit.
			name := fmt.Sprintf("s%d", k)
			check(tx.Commit())
			_, err := conn.ExecContext(ctx, stagingDDL(name))
			check(err)
			check(conn.Raw(func(dc any) error {
				return appendRows(dc.(driver.Conn), "temp", "main", name, i, n, false)
			}))
			tx, err = conn.BeginTx(ctx, nil)
			check(err)
			_, err = tx.ExecContext(ctx, stmt(name))
			check(err)
		case strings.HasPrefix(*strategy, "qa-"):
			check(conn.Raw(func(dc any) error {
				ap, err := duckdbgo.NewQueryAppender(dc.(driver.Conn), stmt("appended"), "appended", typeInfos(), strings.Split(strings.ReplaceAll(cols, " ", ""), ","))
				if err != nil {
					return err
				}
				return fill(ap, i, n, false)
			}))
		default:
			check(fmt.Errorf("unknown -strategy %q", *strategy))
		}
		if *perBatch {
			check(tx.Commit())
			tx, err = conn.BeginTx(ctx, nil)
			check(err)
		}
	}
	check(tx.Commit())
	check(conn.Close())
	peak := stop()
	check(db.Close())
	d := time.Since(start)
	fmt.Printf("strategy=%s pk=%v randkey=%v rows=%d batch=%d commit_every_batch=%v memory_limit=%q: %.0f rows/s, %.2fs, cpu %.2fs, peak RSS %.1f MB\n  duckdb_memory() at the highest RSS sampled: %s\n",
		*strategy, *pk, *randKey, *rows, *batch, *perBatch, *memLimit, float64(*rows)/d.Seconds(), d.Seconds(), (cpuTime() - cpu0).Seconds(), float64(status("VmHWM"))/1024, peak)
}

func stagingDDL(name string) string {
	var b strings.Builder
	b.WriteString("CREATE TEMP TABLE " + name + " (")
	for i, c := range bench.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name + " " + duckdb.SQLType(destination.Column{Type: c.Type}))
	}
	b.WriteString(")")
	return b.String()
}

func typeInfos() []duckdbgo.TypeInfo {
	var out []duckdbgo.TypeInfo
	for _, t := range []duckdbgo.Type{duckdbgo.TYPE_BIGINT, duckdbgo.TYPE_VARCHAR, duckdbgo.TYPE_VARCHAR, duckdbgo.TYPE_VARCHAR, duckdbgo.TYPE_DOUBLE, duckdbgo.TYPE_BIGINT, duckdbgo.TYPE_BOOLEAN, duckdbgo.TYPE_TIMESTAMP_TZ} {
		ti, err := duckdbgo.NewTypeInfo(t)
		check(err)
		out = append(out, ti)
	}
	return out
}

func appendRows(dc driver.Conn, catalog, schema, table string, from, n int64, full bool) error {
	ap, err := duckdbgo.NewAppender(dc, catalog, schema, table)
	if err != nil {
		return err
	}
	return fill(ap, from, n, full)
}

// fill appends rows [from, from+n); full adds _sluice_synced and
// _sluice_deleted for the target table's layout.
func fill(ap *duckdbgo.Appender, from, n int64, full bool) error {
	vals := make([]any, bench.NCols)
	args := make([]driver.Value, bench.NCols, bench.NCols+2)
	if full {
		args = args[:bench.NCols+2]
		args[bench.NCols], args[bench.NCols+1] = time.Now(), false
	}
	for i := from; i < from+n; i++ {
		bench.Gen(i, 0, vals)
		if *randKey {
			vals[0] = int64(splitmix(uint64(i)) >> 1)
		}
		for c, v := range vals {
			args[c] = v
		}
		if err := ap.AppendRow(args...); err != nil {
			ap.Close()
			return err
		}
	}
	return ap.Close()
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// monitor samples VmRSS every 300 ms and, at each new high, DuckDB's memory
// by tag; stop returns the tags at the highest RSS.
func monitor(ctx context.Context, db *sql.DB) (stop func() string) {
	done, fin := make(chan struct{}), make(chan string)
	go func() {
		var peak int64
		tags := "not sampled"
		for {
			select {
			case <-done:
				fin <- tags
				return
			case <-time.After(300 * time.Millisecond):
			}
			r := status("VmRSS")
			if r <= peak {
				continue
			}
			peak = r
			rs, err := db.QueryContext(ctx, `SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0 OR temporary_storage_bytes > 0 ORDER BY 2 DESC`)
			if err != nil {
				continue
			}
			var parts []string
			var total int64
			for rs.Next() {
				var tag string
				var m, t int64
				if rs.Scan(&tag, &m, &t) == nil {
					total += m
					parts = append(parts, fmt.Sprintf("%s %d MB (spilled %d MB)", tag, m>>20, t>>20))
				}
			}
			rs.Close()
			tags = fmt.Sprintf("RSS %d MB, DuckDB %d MB: %s", r>>10, total>>20, strings.Join(parts, ", "))
		}
	}()
	return func() string { close(done); return <-fin }
}

func status(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "strategies: %v\npeak RSS %.1f MB\n", err, float64(status("VmHWM"))/1024)
		os.Exit(1)
	}
}
