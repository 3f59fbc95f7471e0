package engine_test

import (
	"testing"
	"unsafe"

	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// A batch whose keys rise needs no index until a key falls back onto one of
// its rows: that row is then folded into, not added twice, whichever row it
// is (the first, one in the middle, the last) and whatever the operation.
func TestRisingKeysThenRepeat(t *testing.T) {
	composite := []contract.Table{{
		Name:       "pairs",
		PrimaryKey: []string{"p", "n"},
		Columns:    []contract.Column{{Name: "p", Type: contract.String}, {Name: "n", Type: contract.Long}, {Name: "v", Type: contract.String}},
	}}
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{BatchRows: 100}, itemsTable, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("items", row{"id": 1, "name": "a", "qty": 1}) },
				func() error { return o.Upsert("items", row{"id": 2, "name": "b", "qty": 2}) },
				func() error { return o.Upsert("items", row{"id": 3, "name": "c", "qty": 3}) },
				func() error { return o.Upsert("items", row{"id": 3, "name": "C"}) }, // the last row again
				func() error { return o.Update("items", row{"id": 1, "qty": 10}) },   // the first
				func() error { return o.Delete("items", row{"id": 2}) },              // the middle
				func() error { return o.Upsert("items", row{"id": 4, "name": "d"}) }, // rising again
				func() error { return o.Upsert("items", row{"id": 0, "name": "z"}) }, // below every row
				func() error { return o.Upsert("items", row{"id": 4, "name": "D"}) }, // after the index
			)
		})
		w.expectRows(`SELECT id, name, qty, _sluice_deleted FROM {items} ORDER BY id`,
			"0|z|NULL|false",
			"1|a|10|false",
			"2|b|2|true",
			"3|C|NULL|false",
			"4|D|NULL|false",
		)

		// A composite key rises as a tuple: ("a", 9) < ("b", 0), and
		// ("b", 0) comes back after ("b", 1).
		w = newWarehouse(t, k)
		w.mustSync(engine.Options{BatchRows: 100}, composite, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("pairs", row{"p": "a", "n": 9, "v": "1"}) },
				func() error { return o.Upsert("pairs", row{"p": "b", "n": 0, "v": "2"}) },
				func() error { return o.Upsert("pairs", row{"p": "b", "n": 1, "v": "3"}) },
				func() error { return o.Upsert("pairs", row{"p": "b", "n": 0, "v": "4"}) },
				func() error { return o.Upsert("pairs", row{"p": "a", "n": 9, "v": "5"}) },
			)
		})
		w.expectRows(`SELECT p, n, v FROM {pairs} ORDER BY p, n`, "a|9|5", "b|0|4", "b|1|3")
	})
}

// A connector may build its column names over one buffer that it reuses
// (decoders that do not copy their strings do): the engine must read each
// row's names as they are when the row arrives, never by where they were.
func TestColumnNamesInAReusedBuffer(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		buf := []byte("aa")
		name := unsafe.String(&buf[0], len(buf)) // the same address every row
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			for i, n := range []string{"aa", "aa", "bb", "aa"} {
				copy(buf, n)
				if err := r.e.Upsert("t", row{"id": i, name: n}); err != nil {
					return err
				}
			}
			return nil
		})
		w.expectRows(`SELECT id, aa, bb FROM {t} ORDER BY id`, "0|aa|NULL", "1|aa|NULL", "2|NULL|bb", "3|aa|NULL")
	})
}

// UpsertWith adds its values to the row, replacing the row's own of the same
// name, and the row is left as it was.
func TestUpsertWith(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		src := row{"id": 1, "name": "a", "qty": 99}
		w.mustSync(engine.Options{}, itemsTable, func(r *syncRun) error {
			return r.e.UpsertWith("items", src, []contract.Field{{Name: "qty", Value: 5}, {Name: "extra", Value: "x"}})
		})
		w.expectRows(`SELECT id, name, qty, extra FROM {items}`, "1|a|5|x")
		if src["qty"] != 99 || len(src) != 3 {
			t.Errorf("the connector's row changed: %v", src)
		}
	})
}
