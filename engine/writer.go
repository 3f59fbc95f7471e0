package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluicedata/sluice/destination"
)

// writer runs every destination write of a sync, in order, on its own
// goroutine, so that the connector folds the next batch while the
// destination merges the last one: on two cores that hides most of the
// engine's own work. At most one job waits while one runs, which bounds the
// memory in flight to about two batch sets and slows a connector that
// outpaces the destination (backpressure).
//
// Errors are sticky: after the first, the writer skips its remaining jobs,
// and the engine returns the error from the next operation.
type writer struct {
	dest     destination.Destination
	onCommit func(state []byte) (string, error)
	prevHash string

	jobs chan writeJob
	done chan struct{}

	mu     sync.Mutex
	err    error
	staged []destination.Staged // staged since the last commit; owned by the writer goroutine
}

type writeJob struct {
	ctx    context.Context
	stage  *destination.Batch
	commit *destination.Commit
}

func newWriter(dest destination.Destination, prevHash string, onCommit func([]byte) (string, error)) *writer {
	w := &writer{dest: dest, prevHash: prevHash, onCommit: onCommit, jobs: make(chan writeJob, 1), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for j := range w.jobs {
		if w.failed() != nil {
			continue
		}
		var err error
		switch {
		case j.stage != nil:
			err = w.stage(j.ctx, j.stage)
		case j.commit != nil:
			err = w.commit(j.ctx, j.commit)
		}
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		}
	}
}

func (w *writer) stage(ctx context.Context, b *destination.Batch) error {
	s, err := w.dest.Stage(ctx, b)
	if err != nil {
		return fmt.Errorf("stage %d rows of table %q: %w", b.Rows, b.Table, err)
	}
	w.staged = append(w.staged, s)
	return nil
}

func (w *writer) commit(ctx context.Context, c *destination.Commit) error {
	c.Staged = w.staged
	c.State.PrevHash = w.prevHash
	if err := w.dest.Commit(ctx, *c); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.staged = nil
	if w.onCommit != nil {
		h, err := w.onCommit(c.State.State)
		if err != nil {
			return fmt.Errorf("after commit: %w", err)
		}
		w.prevHash = h
	}
	return nil
}

// submit queues a job, waiting while another one waits. A job accepted is
// carried out even if the sync is cancelled meanwhile: a checkpoint that
// returned is committed, and cancelling stops only what follows it.
func (w *writer) submit(j writeJob) {
	j.ctx = context.WithoutCancel(j.ctx)
	w.jobs <- j
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close waits for the queued jobs and returns the first error.
func (w *writer) close() error {
	select {
	case <-w.done:
	default:
		close(w.jobs)
		<-w.done
	}
	return w.failed()
}
