package engine

import (
	"context"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// gateDest's writes wait, each, for a value on gate, after saying so on
// entered.
type gateDest struct {
	entered chan int
	gate    chan struct{}
	writes  int
}

func (*gateDest) Describe(context.Context) ([]destination.Table, error)       { return nil, nil }
func (*gateDest) ReadState(context.Context) (*destination.StateRecord, error) { return nil, nil }
func (*gateDest) Log(context.Context, []destination.LogRecord) error          { return nil }
func (*gateDest) Close() error                                                { return nil }
func (d *gateDest) Begin(context.Context, time.Time) (destination.Tx, error)  { return gateTx{d}, nil }

type gateTx struct{ d *gateDest }

func (gateTx) Apply(context.Context, []destination.SchemaChange) error { return nil }
func (gateTx) Commit(context.Context, destination.StateRecord) error   { return nil }
func (gateTx) Rollback() error                                         { return nil }
func (t gateTx) Write(context.Context, *destination.Batch) error {
	t.d.writes++
	t.d.entered <- t.d.writes
	<-t.d.gate
	return nil
}

func batchJob() writeJob {
	return writeJob{ctx: context.Background(), batches: []*destination.Batch{{Table: "t", Rows: 1}}}
}

// While the destination is busy, queueDepth jobs wait; a shallow submit
// returns only once no other job waits.
func TestWriterQueueDepth(t *testing.T) {
	d := &gateDest{entered: make(chan int, 16), gate: make(chan struct{})}
	w := newWriter(d, "", nil)
	defer func() {
		close(d.gate)
		w.close()
	}()
	w.submit(batchJob(), false)
	<-d.entered // the writer holds job 1
	for range queueDepth {
		w.submit(batchJob(), false)
	}
	if n := len(w.jobs); n != queueDepth {
		t.Fatalf("%d jobs wait behind a busy destination, want %d", n, queueDepth)
	}

	// Shallow: the submit waits until no job waits, which takes as many
	// finished jobs as were waiting. A submit that did not wait would
	// return during the pauses.
	returned := make(chan struct{})
	go func() {
		w.submit(batchJob(), true)
		close(returned)
	}()
	for i := range queueDepth {
		time.Sleep(20 * time.Millisecond)
		select {
		case <-returned:
			t.Fatalf("a shallow submit returned while %d jobs waited", queueDepth-i)
		default:
		}
		d.gate <- struct{}{} // the writer finishes a job and takes the next
		<-d.entered
	}
	<-returned
}

// The queue stays shallow while a table's key filter holds memory, and
// only then.
func TestFilteringWhileTheKeyFilterHoldsKeys(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		keyed bool // by an ascending id; else by the row's hash
		want  bool
	}{
		{"ascending keys", true, false},
		{"hash keys", false, true},
	} {
		e := New(nullDest{}, Options{BatchRows: 100, KeyFilterBytes: 1 << 20})
		var tables []contract.Table
		if c.keyed {
			tables = []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "id", Type: contract.Long}}}}
		}
		if err := e.Start(ctx, tables, nil); err != nil {
			t.Fatal(err)
		}
		for i := range 250 {
			r := map[string]any{"v": (i * 7919) % 1000}
			if c.keyed {
				r["id"] = i
			}
			if err := e.Upsert("t", r); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.filtering(); got != c.want {
			t.Errorf("%s: filtering %v, want %v", c.name, got, c.want)
		}
		if err := e.Finish(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

type nullDest struct{}

func (nullDest) Describe(context.Context) ([]destination.Table, error)       { return nil, nil }
func (nullDest) ReadState(context.Context) (*destination.StateRecord, error) { return nil, nil }
func (nullDest) Log(context.Context, []destination.LogRecord) error          { return nil }
func (nullDest) Close() error                                                { return nil }
func (nullDest) Begin(context.Context, time.Time) (destination.Tx, error)    { return nullTx{}, nil }

type nullTx struct{}

func (nullTx) Apply(context.Context, []destination.SchemaChange) error { return nil }
func (nullTx) Commit(context.Context, destination.StateRecord) error   { return nil }
func (nullTx) Rollback() error                                         { return nil }
func (nullTx) Write(context.Context, *destination.Batch) error         { return nil }
