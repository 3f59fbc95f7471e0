package duckdb

// heldKeys is the set of 64-bit key hashes an open appender holds
// unflushed: open addressing with linear probing in a table of heldSlots,
// 2 MiB, allocated when the appender starts
// remembering and cleared at each flush. A Go map of as many keys took
// 7.8 MB of live heap in a 20M-row hash-keyed load, nearly a third of the
// engine's, and the garbage collector's headroom on top (BENCHMARKS.md).
//
// A slot holds a hash, or 0 for empty; a hash of 0 is stored as 1. That,
// and two keys of one 64-bit hash, only make a new key look held, which
// sends its row to a lookup or a merge: slower, and still correct.
type heldKeys struct {
	slots []uint64
	n     int
}

// heldSlots is a power of two at least twice rowGroupRows, so that probes
// stay short when the appender is full.
const heldSlots = 1 << 18

func (s *heldKeys) add(h uint64) {
	if s.slots == nil {
		s.slots = make([]uint64, heldSlots)
	}
	h = max(h, 1)
	for i := h & (heldSlots - 1); ; i = (i + 1) & (heldSlots - 1) {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *heldKeys) has(h uint64) bool {
	if s.n == 0 {
		return false
	}
	h = max(h, 1)
	for i := h & (heldSlots - 1); ; i = (i + 1) & (heldSlots - 1) {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// reset empties the set, keeping its table.
func (s *heldKeys) reset() {
	if s.n > 0 {
		clear(s.slots)
		s.n = 0
	}
}

// mix64 spreads an integer key over 64 bits (SplitMix64's finalizer), so
// that keys in sequence do not fill neighbouring slots.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
