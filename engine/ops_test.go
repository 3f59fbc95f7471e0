package engine_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

var itemsTable = []contract.Table{{
	Name:       "items",
	PrimaryKey: []string{"id"},
	Columns: []contract.Column{
		{Name: "id", Type: contract.Long},
		{Name: "name", Type: contract.String},
		{Name: "qty", Type: contract.Int},
	},
}}

const itemsQuery = `SELECT id, name, qty, _sluice_deleted, _sluice_synced FROM {items} ORDER BY id`

func TestUpsertReplacesWholeRow(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		for _, batch := range []int{1, 2, 100} {
			w := newWarehouse(t, k)
			w.mustSync(engine.Options{BatchRows: batch}, itemsTable, func(r *syncRun) error {
				o := r.e
				return each(
					func() error { return o.Upsert("items", row{"id": 1, "name": "a", "qty": 5}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "b", "qty": 6}) },
					func() error { return o.Checkpoint(map[string]any{"c": 1}) },
					// Replace: qty not given becomes NULL.
					func() error { return o.Upsert("items", row{"id": 1, "name": "A"}) },
					// Same within one batch: the second upsert wins whole.
					func() error { return o.Upsert("items", row{"id": 3, "name": "c", "qty": 7}) },
					func() error { return o.Upsert("items", row{"id": 3, "qty": 8}) },
				)
			})
			w.expectRows(itemsQuery,
				"1|A|NULL|false|2024-01-01T00:00:02Z",
				"2|b|6|false|2024-01-01T00:00:01Z",
				"3|NULL|8|false|2024-01-01T00:00:02Z",
			)
			if s := w.state(); s != `{"c":1}` {
				t.Errorf("state %s", s)
			}
		}
	})
}

func TestUpdateChangesGivenColumns(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		for _, batch := range []int{1, 2, 100} {
			w := newWarehouse(t, k)
			w.mustSync(engine.Options{BatchRows: batch}, itemsTable, func(r *syncRun) error {
				o := r.e
				return each(
					func() error { return o.Upsert("items", row{"id": 1, "name": "a", "qty": 5}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "b", "qty": 6}) },
					func() error { return o.Checkpoint(nil) },
					func() error { return o.Update("items", row{"id": 1, "qty": 50}) },
					func() error { return o.Update("items", row{"id": 2, "name": nil}) }, // an explicit NULL is a change
					func() error { return o.Update("items", row{"id": 9, "name": "ghost"}) },
					// Update of a row upserted in the same batch.
					func() error { return o.Upsert("items", row{"id": 4, "name": "d", "qty": 1}) },
					func() error { return o.Update("items", row{"id": 4, "qty": 2}) },
					// Update, then update again: both changes kept.
					func() error { return o.Update("items", row{"id": 1, "name": "aa"}) },
					// Update, then upsert: the upsert replaces the whole row.
					func() error { return o.Update("items", row{"id": 2, "qty": 60}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "bb"}) },
					// Update of a key never seen, then upsert: the row exists.
					func() error { return o.Update("items", row{"id": 5, "qty": 1}) },
					func() error { return o.Upsert("items", row{"id": 5, "name": "e"}) },
				)
			})
			w.expectRows(`SELECT id, name, qty, _sluice_deleted FROM {items} ORDER BY id`,
				"1|aa|50|false",
				"2|bb|NULL|false",
				"4|d|2|false",
				"5|e|NULL|false",
			)
		}
	})
}

func TestDeleteIsSoft(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		for _, batch := range []int{1, 2, 100} {
			w := newWarehouse(t, k)
			w.mustSync(engine.Options{BatchRows: batch}, itemsTable, func(r *syncRun) error {
				o := r.e
				return each(
					func() error { return o.Upsert("items", row{"id": 1, "name": "a", "qty": 5}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "b", "qty": 6}) },
					func() error { return o.Upsert("items", row{"id": 3, "name": "c", "qty": 7}) },
					func() error { return o.Checkpoint(nil) },
					func() error { return o.Delete("items", row{"id": 1}) },
					func() error { return o.Delete("items", row{"id": 9}) }, // missing: ignored
					func() error { return o.Delete("items", row{"id": 3}) },
					func() error { return o.Checkpoint(nil) },
					// Revive 3 by an upsert; an update of the deleted 1 keeps it deleted.
					func() error { return o.Upsert("items", row{"id": 3, "name": "C"}) },
					func() error { return o.Update("items", row{"id": 1, "qty": 55}) },
					// Upsert then delete in one batch: the row lands deleted, with its values.
					func() error { return o.Upsert("items", row{"id": 4, "name": "d", "qty": 8}) },
					func() error { return o.Delete("items", row{"id": 4}) },
					// Delete then upsert in one batch: live.
					func() error { return o.Delete("items", row{"id": 2}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "B"}) },
				)
			})
			w.expectRows(itemsQuery,
				"1|a|55|true|2024-01-01T00:00:03Z",
				"2|B|NULL|false|2024-01-01T00:00:03Z",
				"3|C|NULL|false|2024-01-01T00:00:03Z",
				"4|d|8|true|2024-01-01T00:00:03Z",
			)
		}
	})
}

func TestDeleteKeepsSyncedOfUntouchedRows(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, itemsTable, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("items", row{"id": 1, "name": "a"}) },
				func() error { return o.Upsert("items", row{"id": 2, "name": "b"}) },
				func() error { return o.Checkpoint(nil) },
				func() error { return o.Delete("items", row{"id": 1}) },
			)
		})
		w.expectRows(itemsQuery,
			"1|a|NULL|true|2024-01-01T00:00:02Z",
			"2|b|NULL|false|2024-01-01T00:00:01Z",
		)
	})
}

func TestTruncate(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		for _, batch := range []int{1, 2, 3, 100} {
			w := newWarehouse(t, k)
			w.mustSync(engine.Options{BatchRows: batch}, itemsTable, func(r *syncRun) error {
				o := r.e
				return each(
					func() error { return o.Upsert("items", row{"id": 1, "name": "a"}) },
					func() error { return o.Upsert("items", row{"id": 2, "name": "b"}) },
					func() error { return o.Checkpoint(nil) }, // commit 1
					func() error { return o.Upsert("items", row{"id": 3, "name": "c"}) },
					func() error { return o.Update("items", row{"id": 2, "qty": 1}) },
					func() error { return o.Truncate("items") },
					func() error { return o.Upsert("items", row{"id": 2, "name": "B"}) },
					func() error { return o.Upsert("items", row{"id": 4, "name": "d"}) },
					func() error { return o.Update("items", row{"id": 3, "qty": 3}) }, // deleted by the truncate: stays deleted
					func() error { return o.Checkpoint(nil) },                         // commit 2
					func() error { return o.Upsert("items", row{"id": 5, "name": "e"}) },
				)
			})
			w.expectRows(itemsQuery,
				"1|a|NULL|true|2024-01-01T00:00:02Z",
				"2|B|NULL|false|2024-01-01T00:00:02Z",
				"3|c|3|true|2024-01-01T00:00:02Z",
				"4|d|NULL|false|2024-01-01T00:00:02Z",
				"5|e|NULL|false|2024-01-01T00:00:03Z",
			)
			// A truncate in a later sync, and an upsert after it in the same
			// batch.
			w.mustSync(engine.Options{BatchRows: batch}, itemsTable, func(r *syncRun) error {
				return each(
					func() error { return r.e.Truncate("items") },
					func() error { return r.e.Upsert("items", row{"id": 1, "name": "again"}) },
				)
			})
			w.expectRows(`SELECT id, name, _sluice_deleted FROM {items} ORDER BY id`,
				"1|again|false",
				"2|B|true",
				"3|c|true",
				"4|d|true",
				"5|e|true",
			)
		}
	})
}

func TestTruncateOfUnknownTableCreatesIt(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Truncate("empty")
		})
		if ts := w.tables(); len(ts) != 4 || ts[0] != "_sluice_log" || ts[3] != "empty" {
			t.Errorf("tables %v", ts)
		}
	})
}

// Values that are equal in the warehouse are one key, whatever form the
// connector sends them in: the last operation on the key wins.
func TestEqualKeysInOtherForms(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		cet := time.FixedZone("CET", 3600)
		cases := []struct {
			name string
			typ  contract.Column
			keys []any
			want string
		}{
			{"decimal", contract.Column{Type: contract.Decimal, Precision: 10, Scale: 2},
				[]any{"1.5", "1.50", contract.DecimalText("+01.500"), 1.5}, "1.50"},
			{"negative zero decimal", contract.Column{Type: contract.Decimal, Precision: 10, Scale: 2},
				[]any{"-0", "0.00", contract.DecimalText("-0.0"), 0}, "0.00"},
			{"double", contract.Column{Type: contract.Double}, []any{0.0, 0, math.Copysign(0, -1), "0", math.Copysign(0, -1)}, "-0.0"},
			{"utc", contract.Column{Type: contract.UTCDateTime},
				[]any{time.Date(2024, 1, 1, 1, 0, 0, 0, cet), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "2024-01-01T00:00:00Z", "2024-01-01 01:00:00+01:00"}, "2024-01-01T00:00:00Z"},
			{"naive", contract.Column{Type: contract.NaiveDateTime},
				[]any{"2024-01-01T10:00", "2024-01-01 10:00:00", time.Date(2024, 1, 1, 10, 0, 0, 0, cet), "2024-01-01T10:00:00.000"}, "2024-01-01T10:00:00Z"},
			{"string", contract.Column{Type: contract.String}, []any{"1", 1, int64(1), "1"}, "1"},
			// The warehouse keeps microseconds.
			{"utc nanoseconds", contract.Column{Type: contract.UTCDateTime},
				[]any{time.Date(2024, 1, 1, 0, 0, 0, 100, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 999, time.UTC), "2024-01-01T00:00:00.000000500Z"}, "2024-01-01T00:00:00Z"},
			{"naive nanoseconds", contract.Column{Type: contract.NaiveDateTime},
				[]any{"2024-01-01T10:00:00.000001", "2024-01-01T10:00:00.0000019", time.Date(2024, 1, 1, 10, 0, 0, 1500, time.UTC)}, "2024-01-01T10:00:00.000001Z"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				c.typ.Name = "k"
				w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"k"}, Columns: []contract.Column{c.typ}}}, func(r *syncRun) error {
					for i, k := range c.keys {
						if err := r.e.Upsert("t", row{"k": k, "v": i}); err != nil {
							return err
						}
					}
					return nil
				})
				w.expectRows(`SELECT k, v FROM {t}`, fmt.Sprintf("%s|%d", c.want, len(c.keys)-1))
			})
		}
		// The same decimal in other forms hashes alike in a table without a key.
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("h", row{"d": contract.DecimalText("1.50")}) },
				func() error { return r.e.Upsert("h", row{"d": contract.DecimalText("1.5")}) },
			)
		})
		w.expectRows(`SELECT d::VARCHAR FROM {h}`, "1.50")
	})
}

// Updates and deletes rewrite the rows they change (see the DuckDB
// destination's rewrite): every other column must come back exactly, of
// every type, also in a table whose columns an ALTER added after the
// system columns.
func TestUpdateKeepsOtherColumnsOfEveryType(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		typed := []contract.Table{{
			Name:       "typed",
			PrimaryKey: []string{"id"},
			Columns: []contract.Column{
				{Name: "id", Type: contract.String},
				{Name: "b", Type: contract.Boolean},
				{Name: "s", Type: contract.Short},
				{Name: "i", Type: contract.Int},
				{Name: "l", Type: contract.Long},
				{Name: "d", Type: contract.Decimal, Precision: 38, Scale: 10},
				{Name: "f", Type: contract.Float},
				{Name: "g", Type: contract.Double},
				{Name: "nd", Type: contract.NaiveDate},
				{Name: "ndt", Type: contract.NaiveDateTime},
				{Name: "utc", Type: contract.UTCDateTime},
				{Name: "bin", Type: contract.Binary},
				{Name: "x", Type: contract.XML},
				{Name: "j", Type: contract.JSON},
				{Name: "n", Type: contract.Int},
			},
		}}
		full := row{"id": "k1", "b": true, "s": 7, "i": 70000, "l": int64(1) << 40,
			"d": contract.DecimalText("123456789012345678.0123456789"), "f": 1.5, "g": 0.1,
			"nd": "2024-02-29", "ndt": "2024-02-29T23:59:59.123456", "utc": "2024-02-29T23:59:59.5+02:00",
			"bin": []byte{0, 1, 255}, "x": "<a/>", "j": `{"z":1,"a":[1.0,12345678901234567890]}`, "n": 1}
		const q = `SELECT id, b, s, i, l, d::VARCHAR, f, g, nd, ndt, utc, bin, x, j::VARCHAR, n, late, _sluice_deleted FROM {typed} ORDER BY id`
		for _, v := range []struct{ batch, inPlace int }{{1, 0}, {100, 0}, {1, -1}, {100, -1}} {
			w := newWarehouse(t, k)
			w.inPlace = v.inPlace
			w.mustSync(engine.Options{BatchRows: v.batch}, typed, func(r *syncRun) error {
				o := r.e
				return each(
					func() error { return o.Upsert("typed", full) },
					func() error { return o.Upsert("typed", row{"id": "k2", "n": 2}) },
					func() error { return o.Checkpoint(nil) },
					// A column the table gets by ALTER, after the system columns.
					func() error { return o.Upsert("typed", row{"id": "k3", "late": "x"}) },
					func() error { return o.Checkpoint(nil) },
					func() error { return o.Update("typed", row{"id": "k1", "n": 10}) },
					func() error { return o.Update("typed", row{"id": "k3", "late": "y"}) },
					func() error { return o.Delete("typed", row{"id": "k2"}) },
				)
			})
			w.expectRows(q,
				`k1|true|7|70000|1099511627776|123456789012345678.0123456789|1.5|0.1|2024-02-29T00:00:00Z|2024-02-29T23:59:59.123456Z|2024-02-29T21:59:59.5Z|0x0001ff|<a/>|{"a":[1.0,12345678901234567890],"z":1}|10|NULL|false`,
				`k2|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|2|NULL|true`,
				`k3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|y|false`,
			)
		}
	})
}
