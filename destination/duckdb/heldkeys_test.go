package duckdb

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"
)

// TestHeldKeys fills the set as a full appender would, and checks every
// key added is held and keys not added are not, across a reset.
func TestHeldKeys(t *testing.T) {
	var s heldKeys
	if s.has(0) || s.has(42) {
		t.Fatal("an empty set holds a key")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 2 {
		added := make(map[uint64]bool, rowGroupRows)
		for len(added) < rowGroupRows {
			h := r.Uint64()
			if len(added) < 3 {
				h = uint64(len(added)) // 0, 1, 2: 0 and 1 share a slot value
			}
			s.add(h)
			added[h] = true
		}
		for h := range added {
			if !s.has(h) {
				t.Fatalf("round %d: key %#x added and not held", round, h)
			}
		}
		wrong := 0
		for range 100_000 {
			if h := r.Uint64(); !added[h] && s.has(h) {
				wrong++
			}
		}
		if wrong > 0 {
			t.Fatalf("round %d: %d keys never added are held", round, wrong)
		}
		s.reset()
		for h := range added {
			if s.has(h) {
				t.Fatalf("round %d: key %#x held after reset", round, h)
			}
		}
	}
}

// TestKeyHashInts checks that integer keys of every width hash alike,
// apart from other integers and from a key of two columns, and that a key
// keyText refuses is not hashed.
func TestKeyHashInts(t *testing.T) {
	var h maphash.Hash
	a, _ := keyHash(&h, []any{int64(7)})
	b, _ := keyHash(&h, []any{int32(7)})
	c, _ := keyHash(&h, []any{int16(7)})
	if a != b || a != c {
		t.Fatalf("7 as int64, int32, int16 hash to %#x, %#x, %#x", a, b, c)
	}
	if d, _ := keyHash(&h, []any{int64(8)}); d == a {
		t.Fatal("7 and 8 hash alike")
	}
	if _, ok := keyHash(&h, []any{1.5}); ok {
		t.Fatal("a float key hashed")
	}
	if e, _ := keyHash(&h, []any{int64(7), "x"}); e == a {
		t.Fatal("(7, x) hashes as 7")
	}
}
