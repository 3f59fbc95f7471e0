// Command crashconn is the connector of the crash test (crash_test.go): a
// deterministic stream of upserts, updates, deletes and truncates over a few
// tables, checkpointing a cursor every few operations and resuming from it.
//
// CRASHCONN_KILL_AT=k makes the process kill itself (SIGKILL on Unix) just
// before its k-th operation, counting Checkpoint calls.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

const (
	total = 600 // positions in the source
	every = 20  // positions per checkpoint
)

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	return []sdk.Table{
		{Name: "Accounts", PrimaryKey: []string{"ID"}, Columns: []sdk.Column{
			{Name: "ID", Type: sdk.Long},
			{Name: "Name", Type: sdk.String},
			{Name: "Balance", Type: sdk.DecimalType, Precision: 12, Scale: 2},
			{Name: "Active", Type: sdk.Boolean},
			{Name: "UpdatedAt", Type: sdk.UTCDateTime},
			{Name: "Opened", Type: sdk.NaiveDate},
		}},
		{Name: "ledger", PrimaryKey: []string{"acct", "seq"}},
		{Name: "events"}, // keyed by _sluice_id
		{Name: "never_written", PrimaryKey: []string{"k"}, Columns: []sdk.Column{{Name: "k", Type: sdk.String}}},
	}, nil
}

type emitter struct {
	ops    sdk.Ops
	n      int // operations this process
	killAt int
}

func (e *emitter) tick() {
	e.n++
	if e.n == e.killAt {
		p, _ := os.FindProcess(os.Getpid())
		p.Kill()
		select {} // the signal is on its way
	}
}

func (e *emitter) upsert(t string, r map[string]any) error { e.tick(); return e.ops.Upsert(t, r) }
func (e *emitter) update(t string, r map[string]any) error { e.tick(); return e.ops.Update(t, r) }
func (e *emitter) delete(t string, r map[string]any) error { e.tick(); return e.ops.Delete(t, r) }
func (e *emitter) truncate(t string) error                 { e.tick(); return e.ops.Truncate(t) }
func (e *emitter) checkpoint(pos int) error {
	e.tick()
	return e.ops.Checkpoint(map[string]any{"pos": pos, "note": "resume here"})
}

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// emit sends the operations of source position i; the same every time.
func (e *emitter) emit(i int) error {
	r := rand.New(rand.NewPCG(uint64(i), 99))
	acct := r.IntN(40)
	switch p := r.IntN(100); {
	case p < 30:
		return e.upsert("Accounts", map[string]any{
			"ID": acct, "Name": fmt.Sprintf("acct %d v%d", acct, i), "Balance": sdk.Decimal(fmt.Sprintf("%d.%02d", r.IntN(100000), r.IntN(100))),
			"Active": r.IntN(2) == 0, "UpdatedAt": base.Add(time.Duration(i) * time.Minute), "Opened": fmt.Sprintf("2023-%02d-%02d", 1+acct%12, 1+acct%28),
		})
	case p < 45:
		row := map[string]any{"ID": acct, "Balance": fmt.Sprintf("%d.5", r.IntN(1000))}
		if r.IntN(2) == 0 {
			row["Active"] = nil
		}
		return e.update("Accounts", row)
	case p < 52:
		return e.delete("Accounts", map[string]any{"ID": acct})
	case p < 75:
		// amount is a LONG, then widens to DOUBLE, then to STRING; a
		// column appears half way.
		var amount any = r.IntN(1000)
		if i > total/3 && r.IntN(3) == 0 {
			amount = float64(r.IntN(1000)) + 0.25
		}
		if i > 2*total/3 && r.IntN(5) == 0 {
			amount = fmt.Sprintf("%d units", r.IntN(10))
		}
		row := map[string]any{"acct": acct, "seq": r.IntN(5), "amount": amount}
		if i > total/2 {
			row["memo"] = []byte{byte(i), byte(i >> 8)}
		}
		if err := e.upsert("ledger", row); err != nil {
			return err
		}
		if r.IntN(4) == 0 {
			return e.update("ledger", map[string]any{"acct": acct, "seq": r.IntN(5), "note": fmt.Sprintf("n%d", i)})
		}
		return nil
	case p < 90:
		kind := []string{"click", "view", "buy"}[r.IntN(3)]
		row := map[string]any{"kind": kind, "acct": acct % 7, "meta": map[string]any{"k": kind, "v": acct % 3}}
		if r.IntN(4) == 0 {
			return e.delete("events", row)
		}
		return e.upsert("events", row)
	case p < 93:
		// A table that appears late, is truncated now and then and refilled.
		if i < total/4 {
			return nil
		}
		if err := e.truncate("Scratch Pad"); err != nil {
			return err
		}
		for k := range 3 {
			if err := e.upsert("Scratch Pad", map[string]any{"slot": (i + k) % 5, "at": i}); err != nil {
				return err
			}
		}
		return nil
	default:
		return e.update("Accounts", map[string]any{"ID": acct, "Name": fmt.Sprintf("renamed %d", i)})
	}
}

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	killAt, _ := strconv.Atoi(os.Getenv("CRASHCONN_KILL_AT"))
	e := &emitter{ops: ops, killAt: killAt}
	pos := 0
	if v, ok := state["pos"]; ok {
		// A float64 or a json.Number, depending on how the runner decodes.
		n, err := strconv.Atoi(fmt.Sprint(v))
		if err != nil {
			return fmt.Errorf("state pos %v: %w", v, err)
		}
		pos = n
	}
	for i := pos; i < total; i++ {
		if err := e.emit(i); err != nil {
			return err
		}
		if (i+1)%every == 0 {
			if err := e.checkpoint(i + 1); err != nil {
				return err
			}
		}
	}
	// The last positions are not followed by a checkpoint: the runner
	// commits them with the last checkpointed state.
	return nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "crash", Update: update, Schema: schema})
}
