// Command three-operations shows the three row operations on one table with a
// declared primary key: Upsert writes whole rows, Update changes some columns
// of a row, Delete marks a row deleted (_sluice_deleted = true; rows are never
// removed, so the warehouse keeps history a downstream model can use).
//
// The source is a small change log, as a database's change data capture or
// an API's event feed would give: each change has a sequence number, and the
// state remembers the last one applied, so a second sync applies nothing.
package main

import (
	"context"
	"fmt"

	"github.com/sluicedata/sluice/sdk"
)

// change is one entry of the source's change log.
type change struct {
	seq  int
	op   string // "upsert", "update" or "delete"
	row  map[string]any
	last bool // the last change of a transaction in the source: a safe point to checkpoint
}

var changeLog = []change{
	{1, "upsert", map[string]any{"id": 1, "name": "Ada", "email": "ada@example.com", "plan": "free"}, false},
	{2, "upsert", map[string]any{"id": 2, "name": "Grace", "email": "grace@example.com", "plan": "free"}, false},
	{3, "upsert", map[string]any{"id": 3, "name": "Linus", "email": "linus@example.com", "plan": "team"}, true},
	// A partial update: only "plan" changes; name and email keep their values.
	{4, "update", map[string]any{"id": 2, "plan": "pro"}, false},
	// A delete needs only the key.
	{5, "delete", map[string]any{"id": 3}, true},
}

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	// Declaring the key makes Update and Delete find rows by "id". Columns
	// not declared here (name, email, plan) get types from their values.
	return []sdk.Table{{
		Name:       "customer",
		PrimaryKey: []string{"id"},
		Columns:    []sdk.Column{{Name: "id", Type: sdk.Long}},
	}}, nil
}

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	applied, _ := state.Int64("seq")
	for _, c := range changeLog {
		if c.seq <= int(applied) {
			continue // applied by an earlier sync
		}
		var err error
		switch c.op {
		case "upsert":
			err = ops.Upsert("customer", c.row)
		case "update":
			err = ops.Update("customer", c.row)
		case "delete":
			err = ops.Delete("customer", c.row)
		default:
			err = fmt.Errorf("change %d: unknown operation %q", c.seq, c.op)
		}
		if err != nil {
			return err
		}
		if c.last {
			// Commit the rows together with the position in the log: a
			// failed sync resumes after the last whole transaction.
			if err := ops.Checkpoint(map[string]any{"seq": c.seq}); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "three_operations", Update: update, Schema: schema})
}
