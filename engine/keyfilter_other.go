//go:build !unix

package engine

// filterOffHeap: filterAlloc takes its memory from the Go heap.
const filterOffHeap = false

// filterMaps has nothing to unmap where generations are Go memory: the
// collector frees them once the filter drops them.
type filterMaps struct{}

func (*filterMaps) release() {}

// filterAlloc returns a generation of n blocks. Without mmap it comes from
// the Go heap, which costs the collector's headroom (see keyFilter).
func filterAlloc(_ *keyFilter, n int) ([]filterBlock, error) {
	return make([]filterBlock, n), nil
}
