package duckdb

import (
	"errors"
	"strings"
	"testing"
)

func TestExplainOutOfMemory(t *testing.T) {
	d := &DB{path: "files/warehouse.db", memoryLimit: "48MB"}
	for _, oom := range []error{
		errors.New("merge into table \"items\": upsert: Out of Memory Error: could not allocate block of size 256.0 KiB"),
		// The appender's form, as seen with 2.6M updates in a checkpoint.
		errors.New("update table \"items\": database/sql/driver: could not close appender: Failed to append: could not allocate block of size 256.0 KiB (45.5 MiB/45.7 MiB used)"),
	} {
		err := d.explain(oom)
		if !errors.Is(err, oom) {
			t.Errorf("the DuckDB error is not wrapped: %v", err)
		}
		for _, want := range []string{"memory_limit (48MB)", "checkpoint more often", "duckdb:files/warehouse.db?memory_limit=512MB"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
	}
	other := errors.New("Conversion Error: bad value")
	if got := d.explain(other); got != other {
		t.Errorf("other errors changed: %v", got)
	}
}
