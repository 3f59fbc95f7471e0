package engine

import (
	"hash/maphash"
	"strconv"
	"testing"
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
	// Three generations are searched, so the rate adds up; above 5 % the
	// filter would send too many rows to the merge path.
	if rate := float64(fp) / n; rate > 0.05 {
		t.Errorf("false positive rate %.3f, want under 0.05", rate)
	}

	small := newKeyFilter(100 << 10) // room for the first generation only
	added := 0
	for i := 0; small.add(h(i)); i++ {
		added++
	}
	if added != firstGen/keysPerBlock*keysPerBlock {
		t.Errorf("a filter limited to one generation took %d keys", added)
	}
	tiny := newKeyFilter(64) // two blocks
	added = 0
	for i := 0; tiny.add(h(i)); i++ {
		added++
	}
	if added != 2*keysPerBlock {
		t.Errorf("a filter limited to one generation took %d keys", added)
	}
	if small.add(h(1)) || !small.full {
		t.Error("a full filter must refuse every key")
	}
	if !small.mayContain(h(10_000_000)) {
		t.Error("a full filter must say every key may be present, or a later key would look new")
	}
}
