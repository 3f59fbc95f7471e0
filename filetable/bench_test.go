package filetable

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
//	go test -run '^$' -bench UploadSplitCSV -benchtime 3x ./filetable/
//
// It reports the split's MB/s (the benchmark's own), a plain copy's
// through a 1 MiB buffer as any program that looks at the bytes does
// (copy-MB/s), their ratio (split/copy), a kernel copy's (copy_file_range,
// as cp does: kcopy-MB/s), the Go heap's peak during the split
// (peak-heap-MB, sampled every 5 ms), the process's peak RSS, and the CPU
// time (user and system) of the userspace copy and of the split: on a
// virtual disk whose fsync speed varies twofold from run to run, the CPU
// time is the steadier measure of what splitting adds.
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

	var copyTime, kcopyTime, splitTime, copyCPU, splitCPU time.Duration
	var peak atomic.Uint64
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// Each timed step starts with no dirty pages of another's
		// writing to flush.
		dst := filepath.Join(dir, "copy.csv")
		syscall.Sync()
		t0, c0 := time.Now(), cpuTime()
		plainCopy(b, src, dst, false)
		copyTime += time.Since(t0)
		copyCPU += cpuTime() - c0
		os.Remove(dst)
		syscall.Sync()
		t0 = time.Now()
		plainCopy(b, src, dst, true)
		kcopyTime += time.Since(t0)
		os.Remove(dst)
		// The previous iteration's table goes too, so that the upload
		// frees no blocks while timed (the copies freed none either).
		if _, err := Remove(b.Context(), st, "big"); err != nil && !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
		syscall.Sync()
		runtime.GC()
		stop := sampleHeap(&peak)
		b.StartTimer()

		t0, c0 = time.Now(), cpuTime()
		res, err := Upload(b.Context(), st, "big", src, UploadOptions{PartitionSizeMB: 100})
		if err != nil {
			b.Fatal(err)
		}
		splitTime += time.Since(t0)
		splitCPU += cpuTime() - c0
		b.StopTimer()
		stop()
		if len(res.Keys) < 2 {
			b.Fatalf("%d parts", len(res.Keys))
		}
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	copyMBs := float64(size) / 1e6 / (copyTime.Seconds() / n)
	splitMBs := float64(size) / 1e6 / (splitTime.Seconds() / n)
	b.ReportMetric(copyMBs, "copy-MB/s")
	b.ReportMetric(float64(size)/1e6/(kcopyTime.Seconds()/n), "kcopy-MB/s")
	b.ReportMetric(splitMBs/copyMBs, "split/copy")
	b.ReportMetric(copyCPU.Seconds()/n*1000, "copy-cpu-ms")
	b.ReportMetric(splitCPU.Seconds()/n*1000, "split-cpu-ms")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
	}
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

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
