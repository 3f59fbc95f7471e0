package cli

import (
	"os"
	"runtime/debug"
)

// SyncGCPercent is the Go garbage collector's target for a sync process,
// unless GOGC says otherwise. At Go's default of 100 the heap grows to twice
// what is live before a collection; the engine's live heap is mostly its key
// filter and one or two batches, and the garbage between is rows already
// written. At 50 the peak heap is three quarters of that for no measurable
// loss of speed: a hash-keyed load of 6M rows peaked at 290 MB RSS against
// 324 MB, in 28.8 s against 27.9 s (BENCHMARKS.md).
const SyncGCPercent = 50

// tuneGC applies SyncGCPercent, once the program knows it is a sync.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(SyncGCPercent)
	}
}
