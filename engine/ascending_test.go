package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// A load in key order is tracked by its largest key, without the filter.
// Keys that come back below it (an upsert of an earlier row, a late key in
// a gap, a delete) are looked up, so each key still has one row; and a
// load whose order breaks down stops being tracked, still correctly.
func TestAscendingKeys(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		items := []contract.Table{{Name: "items", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "id", Type: contract.Long}, {Name: "v", Type: contract.Long}}}}
		for _, late := range []int{3, 3000} {
			t.Run(fmt.Sprint("late", late), func(t *testing.T) {
				w := newWarehouse(t, k)
				w.mustSync(engine.Options{BatchRows: 100}, items, func(r *syncRun) error {
					for i := int64(0); i < 5000; i += 2 { // even keys, ascending
						if err := r.e.Upsert("items", map[string]any{"id": i, "v": i}); err != nil {
							return err
						}
					}
					// Late rows: odd keys (new, in the gaps) and even keys
					// again (replacing), all below the maximum.
					for j := 0; j < late; j++ {
						id := int64(j)
						if err := r.e.Upsert("items", map[string]any{"id": id, "v": -id}); err != nil {
							return err
						}
					}
					return r.e.Delete("items", map[string]any{"id": int64(0)})
				})
				wantRows := 2500 + late/2
				w.expectRows(`SELECT count(*), count(DISTINCT id) FROM {items}`, fmt.Sprintf("%d|%d", wantRows, wantRows))
				w.expectRows(`SELECT v, _sluice_deleted FROM {items} WHERE id IN (0, 1, 2, 4998) ORDER BY id`,
					"0|true", "-1|false", "-2|false", "4998|false")
			})
		}
	})
}

// A key of several columns is tracked by its largest tuple when the load
// comes in order, as a dataset sync's (_partition, _row) does. Keys below
// the largest written must never be taken as new: a key seen again (an
// earlier partition re-sent, the same instant in another time zone) would
// then be appended beside its row, and the table would hold it twice.
func TestAscendingCompositeKeys(t *testing.T) {
	parts := []contract.Table{{Name: "parts", PrimaryKey: []string{"_partition", "_row"}, Columns: []contract.Column{
		{Name: "_partition", Type: contract.String}, {Name: "_row", Type: contract.Long}, {Name: "v", Type: contract.Long}}}}
	eachDest(t, func(t *testing.T, k kind) {
		for _, late := range []int{4, 3000} {
			t.Run(fmt.Sprint("late", late), func(t *testing.T) {
				w := newWarehouse(t, k)
				// Partitions in byte order ("B" < "a"), rows 0..999 each.
				ps := []string{"B", "a", "b", "é"}
				w.mustSync(engine.Options{BatchRows: 100}, parts, func(r *syncRun) error {
					for _, p := range ps {
						for i := int64(0); i < 1000; i++ {
							if err := r.e.Upsert("parts", map[string]any{"_partition": p, "_row": i, "v": i}); err != nil {
								return err
							}
						}
					}
					// Late rows, each below the largest key written: the
					// first partition again (replacing), a partition
					// between two written ones ("A" and "ab", new), and
					// the last partition's first rows (replacing).
					for j := 0; j < late; j++ {
						p := []string{"B", "A", "ab", "é"}[j%4]
						if err := r.e.Upsert("parts", map[string]any{"_partition": p, "_row": int64(j / 4), "v": int64(-j)}); err != nil {
							return err
						}
					}
					// Past the largest key again: new, then a checkpoint
					// between two rows of one partition.
					if err := r.e.Upsert("parts", map[string]any{"_partition": "é", "_row": int64(1000), "v": int64(1)}); err != nil {
						return err
					}
					if err := r.e.Checkpoint(nil); err != nil {
						return err
					}
					if err := r.e.Upsert("parts", map[string]any{"_partition": "é", "_row": int64(999), "v": int64(2)}); err != nil {
						return err
					}
					// The largest key itself, in a batch of its own.
					if err := r.e.Checkpoint(nil); err != nil {
						return err
					}
					return r.e.Upsert("parts", map[string]any{"_partition": "é", "_row": int64(1000), "v": int64(3)})
				})
				// B and é rows are replaced; A and ab rows are new.
				want := 4001 + (late+2)/4 + (late+1)/4
				w.expectRows(`SELECT count(*), count(DISTINCT (_partition, _row)) FROM {parts}`, fmt.Sprintf("%d|%d", want, want))
				w.expectRows(`SELECT _partition, v FROM {parts} WHERE _row = 0 AND _partition IN ('B', 'A', 'ab', 'é') ORDER BY v DESC`,
					"B|0", "A|-1", "ab|-2", "é|-3")
				w.expectRows(`SELECT v FROM {parts} WHERE _partition = 'é' AND _row IN (999, 1000) ORDER BY _row`, "2", "3")
			})
		}
	})
}

// A timestamp key compares by instant, cut to microseconds as the
// warehouse stores it: the same instant sent again in another zone, or
// with other nanoseconds, is the same row.
func TestAscendingTimeKeys(t *testing.T) {
	events := []contract.Table{{Name: "events", PrimaryKey: []string{"ts", "n"}, Columns: []contract.Column{
		{Name: "ts", Type: contract.UTCDateTime}, {Name: "n", Type: contract.Int}, {Name: "v", Type: contract.Long}}}}
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	paris := time.FixedZone("+02", 2*3600)
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{BatchRows: 50}, events, func(r *syncRun) error {
			for i := 0; i < 500; i++ {
				at := base.Add(time.Duration(i) * time.Second)
				if err := r.e.Upsert("events", map[string]any{"ts": at, "n": int32(0), "v": int64(i)}); err != nil {
					return err
				}
			}
			for i := 0; i <= 500; i += 100 {
				i = min(i, 499) // the largest instant too
				// The same instants: in another zone, and 400 ns later.
				at := base.Add(time.Duration(i) * time.Second).In(paris).Add(400 * time.Nanosecond)
				if err := r.e.Upsert("events", map[string]any{"ts": at, "n": int32(0), "v": int64(-i)}); err != nil {
					return err
				}
			}
			return nil
		})
		w.expectRows(`SELECT count(*), count(DISTINCT (ts, n)), sum(v)::BIGINT FROM {events}`, fmt.Sprintf("500|500|%d", 499*500/2-2*(100+200+300+400+499)))
	})
}
