// Command hello is the smallest connector: a few rows, no schema. Types are
// inferred from the Go values, and the table is keyed by _sluice_id.
package main

import (
	"context"

	"github.com/sluicedata/sluice/sdk"
)

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	sdk.Info("hello: sending three greetings")
	for i, msg := range []string{"hello", "hallo", "bonjour"} {
		if err := ops.Upsert("greeting", map[string]any{"id": i + 1, "message": msg}); err != nil {
			return err
		}
	}
	return ops.Checkpoint(map[string]any{"greeted": 3})
}

func main() {
	sdk.Main(sdk.Connector{Name: "hello", Update: update})
}
