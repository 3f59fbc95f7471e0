package filetable

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/filestore"
)

// BenchmarkUploadSplitCSV splits a generated CSV (300 MB, or
// $SLUICE_BENCH_CSV_MB) into 100 MiB parts in a local store, and copies
// the same file to the same disk in the same run for comparison:
//
//	SLUICE_BENCH_CSV_MB=2048 go test -run '^$' -bench UploadSplitCSV -benchtime 5x ./filetable/
//
// Each iteration times a plain copy through a 1 MiB buffer, as any program
// that looks at the bytes does (copy-MB/s), a kernel copy (copy_file_range,
// as cp does: kcopy-MB/s) and the split, in an order that rotates from one
// iteration to the next so that none always follows the same work. The
// virtual disks this runs on vary twofold and more from one write to the
// next, so the figures are medians over the iterations, and split/copy is
// the median of each iteration's ratio. The CPU times are user and system
// time (-cpu-ms) and user time alone (-user-ms): system time includes the
// kernel's share of writing back, which varies with the disk; user time is
// what splitting adds (scanning for quotes and line ends). Memory: the Go
// heap's peak during the splits (peak-heap-MB, sampled every 5 ms) and the
// process's peak RSS.
func BenchmarkUploadSplitCSV(b *testing.B) {
	mb := 300
	if s := os.Getenv("SLUICE_BENCH_CSV_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil {
			b.Fatalf("SLUICE_BENCH_CSV_MB=%q: %v", s, err)
		}
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "big.csv")
	size := genBenchCSV(b, src, int64(mb)<<20)
	rootDir := filepath.Join(dir, "store")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		b.Fatal(err)
	}
	st, err := filestore.Open(b.Context(), rootDir, filestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	th := splitThreshold
	splitThreshold = 0 // split whatever the size
	b.Cleanup(func() { splitThreshold = th })

	// step is one timed run: its wall time, CPU time and user CPU time.
	type step struct{ wall, cpu, user []time.Duration }
	var cp, kcp, sp step
	timed := func(s *step, f func()) {
		// Each timed step starts with no dirty pages of another's
		// writing to flush.
		syscall.Sync()
		runtime.GC()
		t0, c0, u0 := time.Now(), cpuTime(), userTime()
		f()
		s.wall = append(s.wall, time.Since(t0))
		s.cpu = append(s.cpu, cpuTime()-c0)
		s.user = append(s.user, userTime()-u0)
	}
	dst := filepath.Join(dir, "copy.csv")
	var peak atomic.Uint64
	steps := []func(){
		func() {
			timed(&cp, func() { plainCopy(b, src, dst, false) })
			os.Remove(dst)
		},
		func() {
			timed(&kcp, func() { plainCopy(b, src, dst, true) })
			os.Remove(dst)
		},
		func() {
			stop := sampleHeap(&peak)
			var res UploadResult
			timed(&sp, func() {
				var err error
				if res, err = Upload(b.Context(), st, "big", src, UploadOptions{PartitionSizeMB: 100}); err != nil {
					b.Fatal(err)
				}
			})
			stop()
			if len(res.Keys) < 2 {
				b.Fatalf("%d parts", len(res.Keys))
			}
			// The table goes before the next step, so that no timed
			// step frees blocks (the copies free none either).
			if _, err := Remove(b.Context(), st, "big"); err != nil {
				b.Fatal(err)
			}
		},
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		for j := range steps {
			steps[(i+j)%len(steps)]()
		}
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	ratios := make([]time.Duration, len(sp.wall))
	for i := range sp.wall {
		// As a Duration only to share median: copy time over split time.
		ratios[i] = time.Duration(float64(time.Second) * cp.wall[i].Seconds() / sp.wall[i].Seconds())
	}
	b.ReportMetric(rate(median(sp.wall)), "split-MB/s")
	b.ReportMetric(rate(median(cp.wall)), "copy-MB/s")
	b.ReportMetric(rate(median(kcp.wall)), "kcopy-MB/s")
	b.ReportMetric(median(ratios).Seconds(), "split/copy")
	b.ReportMetric(ms(median(cp.cpu)), "copy-cpu-ms")
	b.ReportMetric(ms(median(sp.cpu)), "split-cpu-ms")
	b.ReportMetric(ms(median(cp.user)), "copy-user-ms")
	b.ReportMetric(ms(median(sp.user)), "split-user-ms")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
	}
	b.Logf("%.0f MB; MB/s per iteration: copy %v, kcopy %v, split %v", float64(size)/1e6, rates(size, cp.wall), rates(size, kcp.wall), rates(size, sp.wall))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

func rates(size int64, d []time.Duration) []int {
	r := make([]int, len(d))
	for i, v := range d {
		r[i] = int(float64(size) / 1e6 / v.Seconds())
	}
	return r
}

// genBenchCSV writes about size bytes of CSV, with a quoted multi-line
// field in every tenth record.
func genBenchCSV(b *testing.B, path string, size int64) int64 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "id,name,amount,created_at,note")
	var n int64
	for i := 0; n < size; i++ {
		var k int
		if i%10 == 0 {
			k, _ = fmt.Fprintf(w, "%d,user %d,%d.%02d,2024-03-01 10:%02d:00,\"first line\nsecond, line %d\"\n", i, i, i%9973, i%100, i%60, i)
		} else {
			k, _ = fmt.Fprintf(w, "%d,user %d,%d.%02d,2024-03-01 10:%02d:00,plain note %d\n", i, i, i%9973, i%100, i%60, i)
		}
		n += int64(k)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// plainCopy copies a file to a new file, synced as a store's writer does:
// in the kernel (copy_file_range) or through a 1 MiB buffer.
func plainCopy(b *testing.B, from, to string, kernel bool) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if kernel {
		_, err = io.Copy(out, in)
	} else {
		// Hiding ReadFrom keeps the copy in user space.
		_, err = io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 1<<20))
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// sampleHeap records the largest heap in use until the returned function
// is called.
func sampleHeap(peak *atomic.Uint64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// userTime is the process's user CPU time so far.
func userTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano())
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
