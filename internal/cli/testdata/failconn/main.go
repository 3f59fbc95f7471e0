// Command failconn is a test connector that fails on purpose, as the
// configuration's "mode" says: after committing one checkpoint it panics,
// returns an error quoting its secret, waits to be interrupted, or floods the
// log.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sluicedata/sluice/sdk"
)

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	sdk.Info("starting with key " + cfg["api_key"])
	for i := 1; i <= 3; i++ {
		if err := ops.Upsert("item", map[string]any{"id": i, "v": "committed"}); err != nil {
			return err
		}
	}
	if err := ops.Checkpoint(map[string]any{"after": 3}); err != nil {
		return err
	}
	// Rows after the checkpoint: never committed, whatever happens next.
	for i := 4; i <= 6; i++ {
		if err := ops.Upsert("item", map[string]any{"id": i, "v": "lost"}); err != nil {
			return err
		}
	}
	switch cfg["mode"] {
	case "panic":
		var m map[string]int
		m["boom"]++ // a nil map write: a real runtime panic
	case "error":
		return fmt.Errorf("the source refused key %s", cfg["api_key"])
	case "wait":
		fmt.Fprintln(os.Stderr, "WAITING")
		<-ctx.Done()
		// Ops calls now fail; a connector returns that error.
		return ops.Upsert("item", map[string]any{"id": 7})
	case "flood":
		for i := 0; i < 100000; i++ {
			sdk.Fine("row", "i", i)
			sdk.Info("row", "i", i)
		}
		return nil
	case "bad-value":
		return ops.Upsert("typed", map[string]any{"id": 1, "amount": "12.3.4"})
	}
	return errors.New("unknown mode")
}

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	return []sdk.Table{
		{Name: "item", PrimaryKey: []string{"id"}},
		{Name: "typed", PrimaryKey: []string{"id"}, Columns: []sdk.Column{{Name: "amount", Type: sdk.DecimalType, Precision: 10, Scale: 2}}},
	}, nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "fail", Update: update, Schema: schema})
}
