package engine

import (
	"encoding/binary"
	"hash/maphash"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestKeyFilter(t *testing.T) {
	seed := maphash.MakeSeed()
	h := func(i int) uint64 { return maphash.String(seed, strconv.Itoa(i)) }
	f := newKeyFilter(8 << 20)
	const n = 500_000
	for i := range n {
		if !f.add(h(i)) {
			t.Fatalf("filter full after %d keys", i)
		}
	}
	for i := range n {
		if !f.mayContain(h(i)) {
			t.Fatalf("key %d added but not found: a false negative would duplicate a row", i)
		}
	}
	fp := 0
	for i := n; i < 2*n; i++ {
		if f.mayContain(h(i)) {
			fp++
		}
	}
	// The keys fill the three dense generations, whose rates add up to
	// about 0.1 %; above 0.5 % too many rows would be looked up.
	if rate := float64(fp) / n; rate > 0.005 {
		t.Errorf("false positive rate %.4f, want under 0.005", rate)
	}

	small := newKeyFilter(200 << 10) // room for the first generation only
	added := 0
	for i := 0; small.add(h(i)); i++ {
		added++
	}
	if dense := keysPerBlock / 2; added != firstGen/dense*dense {
		t.Errorf("a filter limited to one generation took %d keys", added)
	}
	tiny := newKeyFilter(64) // two blocks
	added = 0
	for i := 0; tiny.add(h(i)); i++ {
		added++
	}
	if added != keysPerBlock {
		t.Errorf("a filter limited to one generation took %d keys", added)
	}
	if small.add(h(1)) || !small.full {
		t.Error("a full filter must refuse every key")
	}
	if !small.mayContain(h(10_000_000)) {
		t.Error("a full filter must say every key may be present, or a later key would look new")
	}
}

// The filter's generations stay out of the Go heap, so that they do not
// raise the collector's target (see keyFilter), and are given back to the
// system once the filter is dropped.
func TestKeyFilterOutsideGoHeap(t *testing.T) {
	if !filterOffHeap {
		t.Skip("this system's filters live in the Go heap")
	}
	seed := maphash.MakeSeed()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := newKeyFilter(32 << 20)
	const n = 6_000_000 // past the first four generations: 31.6 MB in all
	var b [8]byte
	for i := range n {
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		if !f.add(maphash.Bytes(seed, b[:])) {
			t.Fatalf("filter full after %d keys", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if f.bytes < 30<<20 {
		t.Fatalf("the filter took %d bytes for %d keys, want over 30 MiB", f.bytes, n)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 4<<20 {
		t.Errorf("the Go heap grew by %d bytes for a filter of %d", grown, f.bytes)
	}
	for i := range n {
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		if !f.mayContain(maphash.Bytes(seed, b[:])) {
			t.Fatalf("key %d added but not found", i)
		}
	}
	runtime.KeepAlive(f)

	if runtime.GOOS != "linux" {
		return // the mapped size is read from /proc
	}
	// 64 dropped filters of 64 MiB each: 4 GiB of address space if their
	// mappings were never released.
	start := vmSize(t)
	for range 64 {
		g := &keyFilter{}
		if _, err := filterAlloc(g, 2<<20); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
	}
	// Cleanups run on their own goroutine after a collection.
	for i := 0; i < 100 && vmSize(t)-start > 1<<30; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if grown := vmSize(t) - start; grown > 1<<30 {
		t.Errorf("dropped filters still mapped: the address space grew by %d MiB", grown>>20)
	}
}

// vmSize is the process's mapped address space, in bytes.
func vmSize(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}

// TestKeyFilterGiveUpReleases: a filter that passes its limit gives its
// mapped memory back at once, while the filter (and its sync) lives on.
func TestKeyFilterGiveUpReleases(t *testing.T) {
	if !filterOffHeap || runtime.GOOS != "linux" {
		t.Skip("mapped filters are measured through /proc on Linux")
	}
	f := newKeyFilter(64 << 20)
	// The filter's own mappings, by address: the process's size would
	// also move with memory other threads map meanwhile (a new malloc
	// arena alone is 64 MiB).
	type span struct{ lo, hi uint64 }
	var mapped []span
	var b [8]byte
	seed := maphash.MakeSeed()
	i := 0
	for ; f.add(maphash.Bytes(seed, binary.LittleEndian.AppendUint64(b[:0], uint64(i)))); i++ {
		if f.maps != nil && len(f.maps.mems) > len(mapped) {
			for _, m := range f.maps.mems[len(mapped):] {
				p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m))))
				mapped = append(mapped, span{p, p + uint64(len(m))})
			}
		}
	}
	if !f.full || f.maps == nil || len(f.maps.mems) != 0 || len(mapped) == 0 {
		t.Fatalf("after %d keys: full %v, mappings %+v, seen %d", i, f.full, f.maps, len(mapped))
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel may merge a mapping with its neighbours: look for any
	// mapping that overlaps one of the filter's.
	for _, line := range strings.Split(string(maps), "\n") {
		lo, hi, ok := strings.Cut(strings.Fields(line + " -")[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		z, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		for _, m := range mapped {
			if a < m.hi && m.lo < z {
				t.Errorf("a full filter's mapping %x-%x is still mapped (%s)", m.lo, m.hi, line)
			}
		}
	}
	if !f.mayContain(1) {
		t.Error("a full filter must say a key may be there")
	}
	runtime.KeepAlive(f)
}
