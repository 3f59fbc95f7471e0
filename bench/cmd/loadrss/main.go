// Command loadrss syncs N generated rows into a DuckDB file, through the
// sluice engine or through DuckDB's raw appender, and prints rows/s and the
// process's peak RSS (VmHWM), so that memory can be measured per scenario in
// a process of its own:
//
//	go build -o /tmp/loadrss ./bench/cmd/loadrss
//	/usr/bin/time -f '%M KB peak RSS' /tmp/loadrss -mode sluice-keyed -rows 20000000
//
// A dataset connector's sync (16 partitions, as `sluice debug` runs it):
//
//	/usr/bin/time -f '%M KB peak RSS' /tmp/loadrss -mode sluice-dataset -rows 5000000
//
// Where the memory goes: -trace 20s prints RSS and the Go runtime's share
// every 20 s, and -memprofile FILE keeps a heap profile of the Go heap at
// the peak (go tool pprof -top /tmp/loadrss FILE):
//
//	GOGC=50 /tmp/loadrss -mode sluice-hash -rows 20000000 -trace 20s -memprofile /tmp/h.heap
//
// Upsert modes need a populated file first:
//
//	/tmp/loadrss -mode populate -rows 1000000 -db /tmp/pop.db
//	cp /tmp/pop.db /tmp/up.db && /tmp/loadrss -mode sluice-upsert -rows 1000000 -db /tmp/up.db
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/bench"
	"github.com/sluicedata/sluice/destination/duckdb"
)

func main() {
	var (
		mode     = flag.String("mode", "sluice-keyed", "sluice-keyed | sluice-hash | sluice-upsert | sluice-update | sluice-dataset | raw-keyed | raw-hash | raw-merge | populate")
		rows     = flag.Int64("rows", 1_000_000, "rows to load (upsert modes: the populated row count; rows/2 are updated and rows/2 added)")
		dbPath   = flag.String("db", "", "DuckDB file (default: a new file in a temporary folder, removed afterwards)")
		batch    = flag.Int("batch-rows", 0, "engine.Options.BatchRows (0: the engine's default, 16384)")
		ckpt     = flag.Int64("checkpoint-every", 0, "call ops.Checkpoint every so many rows (0: one commit, at Finish)")
		memLimit = flag.String("memory-limit", "", "DuckDB memory_limit (empty: the sync default, 48MB; raw baselines DuckDB's own)")
		threads  = flag.String("threads", "", "DuckDB threads (empty: DuckDB's default, the core count)")
		bgAlloc  = flag.String("allocator-background-threads", "", "DuckDB allocator_background_threads, true or false (empty: the sync default, true; raw baselines DuckDB's own, false)")
		memProf  = flag.String("memprofile", "", "write a heap profile to this file whenever the process's RSS reaches a new peak (the last one written is the peak's)")
		trace    = flag.Duration("trace", 0, "print RSS and the Go runtime's share of it to stderr at this interval (0: never)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	path := *dbPath
	if path == "" {
		dir, err := os.MkdirTemp("", "loadrss-")
		if err != nil {
			fail(err)
		}
		tmpDir = dir
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "warehouse.db")
	}
	cfg := bench.Config{
		Settings:        duckdb.Settings{MemoryLimit: *memLimit, Threads: *threads, AllocatorBackgroundThreads: *bgAlloc},
		BatchRows:       *batch,
		CheckpointEvery: *ckpt,
	}

	// Sample RSS while running, to show when the peak happens and, at the
	// peak, how much of it is the Go runtime's: the rest is DuckDB's (and
	// the program's code).
	var peakAt, peakGo atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var peak, profiled int64
		var last time.Time
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				rss := procStatus("VmRSS")
				if rss > peak {
					peak = rss
					peakAt.Store(int64(time.Since(start)))
					peakGo.Store(goResident())
					// A profile per new peak would cost a stop of the world
					// every 200 ms while memory grows: only every 2 MB more.
					if *memProf != "" && rss > profiled+2048 {
						profiled = rss
						if err := writeHeapProfile(*memProf); err != nil {
							fmt.Fprintf(os.Stderr, "loadrss: %v\n", err)
						}
					}
				}
				if *trace > 0 && now.Sub(last) >= *trace {
					last = now
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					fmt.Fprintf(os.Stderr, "t=%s rss_mb=%.1f go_resident_mb=%.1f go_heap_live_mb=%.1f go_heap_goal_mb=%.1f\n",
						time.Since(start).Round(time.Second), float64(rss)/1024, float64(goResident())/(1<<20),
						float64(ms.HeapAlloc)/(1<<20), float64(ms.NextGC)/(1<<20))
				}
			}
		}
	}()

	var d time.Duration
	var err error
	n := *rows
	switch *mode {
	case "sluice-keyed":
		d, err = bench.SluiceLoad(ctx, path, n, bench.Keyed, cfg)
	case "sluice-hash":
		d, err = bench.SluiceLoad(ctx, path, n, bench.HashKeyed, cfg)
	case "sluice-upsert":
		d, err = bench.SluiceUpsert(ctx, path, n, cfg)
	case "sluice-update": // -rows updates into a populated -db
		d, err = bench.SluiceUpdate(ctx, path, n, cfg)
	case "sluice-dataset": // the dataset connector's own checkpoints; -checkpoint-every does not apply
		d, err = bench.SluiceDataset(ctx, path, n, cfg)
	case "raw-keyed":
		d, err = bench.RawLoad(ctx, path, n, bench.Keyed, cfg)
	case "raw-hash":
		d, err = bench.RawLoad(ctx, path, n, bench.HashKeyed, cfg)
	case "raw-merge":
		d, err = bench.RawMerge(ctx, path, n, cfg)
	case "populate":
		err = bench.Populate(ctx, path, n, cfg)
		d = time.Since(start)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	close(done)
	<-sampled
	if err != nil {
		fail(err)
	}
	written := n
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fi, _ := os.Stat(path)
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	fmt.Printf("mode=%s rows=%d elapsed=%s rows/s=%.0f peak_rss_mb=%.1f peak_at=%s go_at_peak_mb=%.1f go_heap_sys_mb=%.1f db_mb=%.1f batch_rows=%d checkpoint_every=%d memory_limit=%q threads=%q allocator_background_threads=%q\n",
		*mode, written, d.Round(time.Millisecond), float64(written)/d.Seconds(),
		float64(procStatus("VmHWM"))/1024, time.Duration(peakAt.Load()).Round(100*time.Millisecond),
		float64(peakGo.Load())/(1<<20), float64(ms.HeapSys)/(1<<20), float64(size)/(1<<20),
		*batch, *ckpt, *memLimit, *threads, *bgAlloc)
}

// goResident is the memory the Go runtime has from the system and has not
// returned (heap, stacks, its own metadata), in bytes: an upper bound of its
// share of RSS, as pages never touched are counted too.
func goResident() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
}

// writeHeapProfile replaces path with a heap profile of the live heap at
// the last collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return f.Close()
}

// procStatus reads a kB field of /proc/self/status.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}

// tmpDir is the temporary folder to remove on exit, if one was made.
var tmpDir string

func fail(err error) {
	fmt.Fprintf(os.Stderr, "loadrss: %v\n", err)
	fmt.Fprintf(os.Stderr, "peak_rss_mb=%.1f\n", float64(procStatus("VmHWM"))/1024)
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(1)
}
