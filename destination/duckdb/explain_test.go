package duckdb

import (
	"errors"
	"strings"
	"testing"
)

func TestExplainOutOfMemory(t *testing.T) {
	d := &DB{path: "files/warehouse.db", memoryLimit: "48MB"}
	oom := errors.New("merge into table \"items\": upsert: Out of Memory Error: could not allocate block of size 256.0 KiB")
	err := d.explain(oom)
	if !errors.Is(err, oom) {
		t.Errorf("the DuckDB error is not wrapped: %v", err)
	}
	for _, want := range []string{"memory_limit (48MB)", "checkpoint more often", "duckdb:files/warehouse.db?memory_limit=512MB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	other := errors.New("Conversion Error: bad value")
	if got := d.explain(other); got != other {
		t.Errorf("other errors changed: %v", got)
	}
}
