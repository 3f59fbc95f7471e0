// Command schema-change shows how the warehouse follows a source whose shape
// changes during a sync. Columns the schema does not declare get their type
// from the values; when a new column appears, sluice adds it, and when a
// value does not fit a column's type, sluice widens the column to a type that
// holds both the old values and the new one:
//
//	INT -> LONG -> DOUBLE -> STRING
//
// Rows already written are converted to the wider type, and no step needs a
// reset. (A column declared in Schema is never widened: a value that does not fit
// its declared type fails the sync, which is what a declaration is for.)
//
// The source is a list of batches standing in for the same feed read at
// different times; each ends with a checkpoint, and the state remembers how
// many were synced, so a second sync sends nothing.
package main

import (
	"context"

	"github.com/sluicedata/sluice/sdk"
)

var batches = [][]map[string]any{
	// 1. "reading" starts as INT: the values are int32.
	{
		{"id": 1, "reading": int32(17)},
		{"id": 2, "reading": int32(23)},
	},
	// 2. A new column, "unit", appears; rows 1 and 2 have NULL in it. And a
	// reading too big for INT arrives as an int64: the column widens to
	// LONG.
	{
		{"id": 3, "reading": int64(3_000_000_000), "unit": "mV"},
	},
	// 3. A fractional reading: LONG widens to DOUBLE.
	{
		{"id": 4, "reading": 21.5, "unit": "C"},
	},
	// 4. Text: DOUBLE widens to STRING, which holds any value's text.
	{
		{"id": 5, "reading": "n/a", "unit": "C"},
	},
}

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	// Only the key is declared, so "reading" and "unit" stay free to
	// change type.
	return []sdk.Table{{
		Name:       "measurement",
		PrimaryKey: []string{"id"},
		Columns:    []sdk.Column{{Name: "id", Type: sdk.Long}},
	}}, nil
}

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	done, _ := state.Int64("batches_synced")
	for i := int(done); i < len(batches); i++ {
		for _, row := range batches[i] {
			if err := ops.Upsert("measurement", row); err != nil {
				return err
			}
		}
		// Each checkpoint commits the schema change its batch needed
		// together with the rows.
		if err := ops.Checkpoint(map[string]any{"batches_synced": i + 1}); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "schema_change", Update: update, Schema: schema})
}
