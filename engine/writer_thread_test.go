//go:build linux

package engine

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
)

// init keeps the main goroutine on the main thread, so that no other
// goroutine runs there: a goroutine that ends locked to the main thread
// leaves it idle rather than ending it, which would hide what
// TestWriterKeepsOneThread looks for.
func init() { runtime.LockOSThread() }

// threadDest records the OS thread of every call the writer makes.
type threadDest struct {
	mu   sync.Mutex
	tids map[int]int
}

func (d *threadDest) note() {
	d.mu.Lock()
	d.tids[syscall.Gettid()]++
	d.mu.Unlock()
}

func (*threadDest) Describe(context.Context) ([]destination.Table, error)       { return nil, nil }
func (*threadDest) ReadState(context.Context) (*destination.StateRecord, error) { return nil, nil }
func (*threadDest) Log(context.Context, []destination.LogRecord) error          { return nil }
func (*threadDest) Close() error                                                { return nil }
func (d *threadDest) Begin(context.Context, time.Time) (destination.Tx, error) {
	d.note()
	return threadTx{d}, nil
}

type threadTx struct{ d *threadDest }

func (t threadTx) Apply(context.Context, []destination.SchemaChange) error { t.d.note(); return nil }
func (t threadTx) Commit(context.Context, destination.StateRecord) error   { t.d.note(); return nil }
func (t threadTx) Rollback() error                                         { t.d.note(); return nil }
func (t threadTx) Write(context.Context, *destination.Batch) error {
	t.d.note()
	// A blocking system call, as DuckDB's reads and writes make: the
	// runtime hands the goroutine's processor to another thread meanwhile,
	// and an unlocked goroutine resumes on whichever thread has one.
	ts := syscall.Timespec{Nsec: 2_000_000}
	syscall.Nanosleep(&ts, nil)
	t.d.note()
	return nil
}

// Every call into the destination comes from one OS thread: DuckDB's
// allocator keeps memory per thread, and a load whose calls moved between
// threads peaked 70 MB higher (BENCHMARKS.md, "One thread for the
// destination").
func TestWriterKeepsOneThread(t *testing.T) {
	// Goroutines that keep the other threads busy, so that a parked
	// writer would resume on another.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		})
	}
	defer func() {
		close(stop)
		busy.Wait()
	}()

	d := &threadDest{tids: map[int]int{}}
	w := newWriter(d, "", nil)
	for range 50 {
		w.submit(batchJob(), false)
	}
	w.submit(writeJob{ctx: context.Background(), state: []byte(`{}`)}, false)
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.tids) != 1 {
		t.Fatalf("the destination was called from %d OS threads (calls per thread: %v), want 1", len(d.tids), d.tids)
	}
	// The thread outlives the writer: a goroutine that ends locked ends
	// its thread, and the kernel then signals every child started from
	// it with a parent-death signal.
	for tid := range d.tids {
		for range 20 {
			time.Sleep(10 * time.Millisecond)
			if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err != nil {
				t.Fatalf("the writer's thread %d ended with it: %v", tid, err)
			}
		}
	}
}
