package engine_test

import (
	"fmt"
	"testing"

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
