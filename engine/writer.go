package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/sluicedata/sluice/destination"
)

// writer runs every destination write of a sync, in order, on its own
// goroutine, so that the connector folds the next batch while the
// destination merges the last one: on two cores that hides most of the
// engine's own work. At most queueDepth jobs wait while one runs (one, when
// the engine asks for a shallow queue), which bounds the memory in flight
// and slows a connector that outpaces the destination (backpressure).
//
// The writer owns the destination transaction: the first job after a
// commit begins one, and a job with a state commits it.
//
// Errors are sticky: after the first, the writer rolls the transaction
// back, skips its remaining jobs, and the engine returns the error from the
// next operation.
type writer struct {
	dest     destination.Destination
	onCommit func(state []byte) (string, error)
	prevHash string

	jobs  chan writeJob
	taken chan struct{} // a job was taken from jobs (see submit)
	done  chan struct{}
	// free returns written batches to the engine for reuse: one at a
	// time, as the engine starts one batch at a time, since a batch in
	// it keeps its old values until reused.
	free chan *destination.Batch

	mu  sync.Mutex
	err error
	tx  destination.Tx // owned by the writer goroutine
}

type writeJob struct {
	ctx     context.Context
	synced  time.Time // of the transaction, if this job begins one
	changes []destination.SchemaChange
	batches []*destination.Batch
	state   []byte // non-nil: commit, with this state
	// run, when set, works in the open transaction after the changes and
	// batches (a file load, see loadfile.go); done, when set, then gets
	// the writer's error, or nil, even when the job is skipped.
	run  func(destination.Tx) error
	done chan error
}

func newWriter(dest destination.Destination, prevHash string, onCommit func([]byte) (string, error)) *writer {
	w := &writer{dest: dest, prevHash: prevHash, onCommit: onCommit,
		jobs: make(chan writeJob, queueDepth), taken: make(chan struct{}, 1), done: make(chan struct{}),
		free: make(chan *destination.Batch, 1)}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	// Every call into the destination comes from one OS thread. DuckDB's
	// allocator (jemalloc, in duckdb-go's library) keeps a cache and an
	// arena per thread, and Go moves a goroutine between threads, leaving
	// freed memory behind in each: a 20M-row hash-keyed load peaked at
	// 321 MB RSS against 248-251 MB on one thread (BENCHMARKS.md). The
	// thread is unlocked at the end rather than left to exit with the
	// goroutine: a child process started from that thread with a
	// parent-death signal (a test's S3 server, say) would be killed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for j := range w.jobs {
		select {
		case w.taken <- struct{}{}:
		default: // a signal is pending already
		}
		if w.failed() == nil {
			if err := w.do(j); err != nil {
				if w.tx != nil {
					w.tx.Rollback()
					w.tx = nil
				}
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		if j.done != nil {
			j.done <- w.failed()
		}
	}
	if w.tx != nil {
		// The sync ended without a commit (an error in the engine or the
		// connector): nothing since the last checkpoint is kept.
		w.tx.Rollback()
		w.tx = nil
	}
}

func (w *writer) do(j writeJob) error {
	if w.tx == nil {
		tx, err := w.dest.Begin(j.ctx, j.synced)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		w.tx = tx
	}
	if len(j.changes) > 0 {
		if err := w.tx.Apply(j.ctx, j.changes); err != nil {
			return err
		}
	}
	for _, b := range j.batches {
		if err := w.tx.Write(j.ctx, b); err != nil {
			return fmt.Errorf("write %d rows to table %q: %w", b.Rows, b.Table, err)
		}
		select {
		case w.free <- b:
		default:
		}
	}
	if j.run != nil {
		if err := j.run(w.tx); err != nil {
			return err
		}
	}
	if j.state == nil {
		return nil
	}
	err := w.tx.Commit(j.ctx, destination.StateRecord{State: j.state, PrevHash: w.prevHash})
	if err != nil {
		return err
	}
	w.tx = nil
	if w.onCommit != nil {
		h, err := w.onCommit(j.state)
		if err != nil {
			return fmt.Errorf("after commit: %w", err)
		}
		w.prevHash = h
	}
	return nil
}

// queueDepth is how many jobs may wait while one runs. The destination's
// work is bursty (DuckDB's appender writes a whole row group, 122,880 rows,
// at once, about 0.18 s) while the connector's is even, so with one job
// waiting the connector soon stops during the burst and the writer waits
// for it after: three waiting jobs fill that gap. Measured on a 1M-row
// dataset sync (BENCHMARKS.md, "The writer queue"): 1 job 230-254k rows/s,
// 3 jobs 283-295k; a 5M-row one 225 against 235 MiB peak RSS.
const queueDepth = 3

// submit queues a job, waiting while queueDepth jobs wait, or while one
// does if shallow. A job accepted is carried out even if the sync is
// cancelled meanwhile: a checkpoint that returned is committed, and
// cancelling stops only what follows it.
func (w *writer) submit(j writeJob, shallow bool) {
	j.ctx = context.WithoutCancel(j.ctx)
	for shallow && len(w.jobs) > 0 {
		// Every job taken signals taken, so a job seen waiting here
		// is followed by a signal; a stale one only costs a look.
		<-w.taken
	}
	w.jobs <- j
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close waits for the queued jobs, rolls back a transaction left open, and
// returns the first error.
func (w *writer) close() error {
	select {
	case <-w.done:
	default:
		close(w.jobs)
		<-w.done
	}
	return w.failed()
}
