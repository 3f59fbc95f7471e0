package engine

import "runtime"

// keyFilter remembers, approximately, the keys the engine has written to a
// table that was empty when the sync started. A key it has never seen
// cannot be in the table, so the destination may insert that row without
// looking for it, which is most of the cost of an initial load. A false
// positive only sends a row down the slower merge path.
//
// It is a split-block Bloom filter (as Parquet's): each key sets 8 bits in
// one 256-bit block, so a lookup touches one cache line. Filters are added
// in generations four times larger than the last, so a small table costs
// little; when the next generation would pass the byte limit the filter
// gives up, and from then on every row of its table is merged.
//
// The generations live outside the Go heap where the system allows it
// (filterAlloc): the garbage collector lets the heap grow by GOGC percent of
// what is live before it collects, and a filter that counted as live heap
// would raise that peak by half its size at the sync's GOGC=50 (16 MiB at
// 20M hash keys) for memory the collector never frees anyway.
type keyFilter struct {
	gens  [][]filterBlock
	cap   int // keys the newest generation takes
	n     int // keys in the newest generation
	limit int // bytes all generations may take
	bytes int
	full  bool
	maps  *filterMaps // the generations' memory, where it is mapped (filterAlloc)
}

type filterBlock [8]uint32

// keysPerBlock sets the density: about 10.7 bits per key, for a false
// positive rate near 1 %. The first denseGens generations, small, take
// half as many (21 bits per key, near 0.03 %): a load of a million rows
// then sends almost none down the lookup path, for 3.5 MB.
const (
	keysPerBlock = 24
	denseGens    = 3
)

// firstGen is the capacity, in keys, of the first generation.
const firstGen = 1 << 16

// salts are the odd constants of Parquet's split-block Bloom filter.
var salts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

func newKeyFilter(limit int) *keyFilter { return &keyFilter{limit: limit} }

func blockOf(g []filterBlock, h uint64) *filterBlock {
	return &g[((h>>32)*uint64(len(g)))>>32]
}

// mayContain reports whether h may have been added. A full filter knows
// nothing, so it says yes.
func (f *keyFilter) mayContain(h uint64) bool {
	if f.full {
		return true
	}
	lo := uint32(h)
	found := false
	for _, g := range f.gens {
		if blockHas(blockOf(g, h), lo) {
			found = true
			break
		}
	}
	// The generations may be memory the collector does not see: f must
	// stay reachable, so that its cleanup does not free them, while they
	// are read, whichever way the loop ends.
	runtime.KeepAlive(f)
	return found
}

// blockHas reports whether every bit of lo's pattern is set in b.
func blockHas(b *filterBlock, lo uint32) bool {
	for i, s := range salts {
		if b[i]&(1<<((lo*s)>>27)) == 0 {
			return false
		}
	}
	return true
}

// giveUp makes the filter full: from then on it knows nothing, and its
// memory goes back at once rather than when the sync ends.
func (f *keyFilter) giveUp() {
	f.full, f.gens = true, nil
	if f.maps != nil {
		f.maps.release()
	}
}

// add records h. It returns false, and the filter is useless from then on,
// once it would need more than its byte limit.
func (f *keyFilter) add(h uint64) bool {
	if f.full {
		return false
	}
	if len(f.gens) == 0 || f.n >= f.cap {
		keys := firstGen << (2 * len(f.gens))
		perBlock := keysPerBlock
		if len(f.gens) < denseGens {
			perBlock /= 2
		}
		blocks := keys / perBlock
		if len(f.gens) == 0 && blocks*32 > f.limit {
			// A limit too small for the first generation makes it smaller.
			blocks = f.limit / 32
		}
		if blocks == 0 || f.bytes+blocks*32 > f.limit {
			f.giveUp()
			return false
		}
		g, err := filterAlloc(f, blocks)
		if err != nil {
			// Without memory for the filter every later row is merged:
			// slower, and still exact.
			f.giveUp()
			return false
		}
		f.gens = append(f.gens, g)
		f.bytes += blocks * 32
		f.cap, f.n = blocks*perBlock, 0
	}
	b := blockOf(f.gens[len(f.gens)-1], h)
	lo := uint32(h)
	for i, s := range salts {
		b[i] |= 1 << ((lo * s) >> 27)
	}
	f.n++
	runtime.KeepAlive(f) // see mayContain
	return true
}
