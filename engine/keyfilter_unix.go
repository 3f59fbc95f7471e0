//go:build unix

package engine

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// filterOffHeap: filterAlloc maps its memory outside the Go heap.
const filterOffHeap = true

// filterMaps are the mappings of one filter's generations. They are
// unmapped when the filter gives up (release) or, at the latest, once the
// filter is unreachable (a cleanup on the filter): the collector does not
// see this memory, so nothing else would free it.
type filterMaps struct{ mems [][]byte }

// release unmaps every generation; the filter must not use them after.
func (m *filterMaps) release() {
	for _, mem := range m.mems {
		_ = syscall.Munmap(mem)
	}
	m.mems = nil
}

// filterAlloc returns a zeroed generation of n blocks in anonymous memory
// mapped from the system, outside the Go heap (see keyFilter). f must keep
// the generation only in its own fields, as the mapping dies with it.
func filterAlloc(f *keyFilter, n int) ([]filterBlock, error) {
	size := n * int(unsafe.Sizeof(filterBlock{}))
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes for a key filter: %w", size, err)
	}
	if f.maps == nil {
		f.maps = &filterMaps{}
		// The cleanup holds the mappings, not f: f can still become
		// unreachable.
		runtime.AddCleanup(f, (*filterMaps).release, f.maps)
	}
	f.maps.mems = append(f.maps.mems, mem)
	return unsafe.Slice((*filterBlock)(unsafe.Pointer(&mem[0])), n), nil
}
