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
