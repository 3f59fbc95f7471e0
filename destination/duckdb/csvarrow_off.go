//go:build !duckdb_arrow

package duckdb

import (
	"context"

	"github.com/sluicedata/sluice/destination"
)

// arrowLoads says that this build loads CSV files through Arrow: it does
// not without the duckdb_arrow build tag (csvarrow.go), and a fresh CSV
// load goes in numbered parts (csvparts.go) or whole.
var arrowLoads = false

func (t *tx) loadArrow(context.Context, *destination.Table, destination.FileLoad, source) (destination.FileLoadResult, bool, error) {
	return destination.FileLoadResult{}, false, nil
}
