package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestWidening sends four values of one type, then a wider one. With
// BatchRows 2 the first value is committed, the next two are in a staged
// batch and the fourth is in memory when the wider value arrives: all four
// must keep their value in the widened column, alike.
func TestWidening(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		ts := func(h int) time.Time { return time.Date(2024, 3, 1, h, 30, 0, 0, time.UTC) }
		cases := []struct {
			name     string
			before   [4]any
			wider    any
			wantType string
			want     [5]string // the values as text (see cell)
		}{
			{"int-long", [4]any{int32(1), int32(2), int32(3), int32(-4)}, int64(1) << 40, "BIGINT",
				[5]string{"1", "2", "3", "-4", "1099511627776"}},
			{"short-int", [4]any{int16(1), int16(2), int16(3), int16(4)}, int32(70000), "INTEGER",
				[5]string{"1", "2", "3", "4", "70000"}},
			{"long-double", [4]any{1, 2, 3, int64(1) << 53}, 2.5, "DOUBLE",
				[5]string{"1.0", "2.0", "3.0", "9007199254740992.0", "2.5"}},
			{"float-double", [4]any{float32(1.5), float32(2), float32(0.25), float32(-1)}, 7, "DOUBLE",
				[5]string{"1.5", "2.0", "0.25", "-1.0", "7.0"}},
			{"long-decimal", [4]any{1, 2, 3, -4}, contract.DecimalText("2.5"), "DECIMAL(38,1)",
				[5]string{"1.0", "2.0", "3.0", "-4.0", "2.5"}},
			{"decimal-scale", [4]any{contract.DecimalText("1.5"), contract.DecimalText("2"), contract.DecimalText("3.25"), contract.DecimalText("-4.125")}, contract.DecimalText("0.00001"), "DECIMAL(38,5)",
				[5]string{"1.50000", "2.00000", "3.25000", "-4.12500", "0.00001"}},
			{"decimal-double", [4]any{contract.DecimalText("1.5"), contract.DecimalText("2"), contract.DecimalText("3.25"), contract.DecimalText("4")}, 0.5, "DOUBLE",
				[5]string{"1.5", "2.0", "3.25", "4.0", "0.5"}},
			{"long-string", [4]any{1, 2, 3, -4}, "x", "VARCHAR",
				[5]string{"1", "2", "3", "-4", "x"}},
			{"double-string", [4]any{1.5, 2.0, 1e21, 0.1}, "x", "VARCHAR",
				[5]string{"1.5", "2.0", "1e+21", "0.1", "x"}},
			{"decimal-string", [4]any{contract.DecimalText("1.50"), contract.DecimalText("2.5"), contract.DecimalText("3"), contract.DecimalText("-4.25")}, "x", "VARCHAR",
				[5]string{"1.50", "2.50", "3.00", "-4.25", "x"}},
			{"bool-string", [4]any{true, false, true, false}, "x", "VARCHAR",
				[5]string{"true", "false", "true", "false", "x"}},
			{"json-string", [4]any{map[string]int{"a": 1}, []int{1}, map[string]any{}, []string{"b"}}, "x", "VARCHAR",
				[5]string{`{"a":1}`, `[1]`, `{}`, `["b"]`, "x"}},
			{"time-string", [4]any{ts(1), ts(2), ts(3), ts(4)}, "x", "VARCHAR",
				[5]string{"2024-03-01 01:30:00+00", "2024-03-01 02:30:00+00", "2024-03-01 03:30:00+00", "2024-03-01 04:30:00+00", "x"}},
			{"long-string-int", [4]any{1, 2, 3, 4}, "x", "VARCHAR",
				[5]string{"1", "2", "3", "4", "x"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				var changes []string
				opts := engine.Options{BatchRows: 2, OnSchemaChange: func(ch destination.SchemaChange) { changes = append(changes, ch.String()) }}
				w.mustSync(opts, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "id", Type: contract.Long}}}}, func(r *syncRun) error {
					o := r.e
					return each(
						func() error { return o.Upsert("t", row{"id": 1, "v": c.before[0]}) },
						func() error { return o.Checkpoint(nil) },
						func() error { return o.Upsert("t", row{"id": 2, "v": c.before[1]}) },
						func() error { return o.Upsert("t", row{"id": 3, "v": c.before[2]}) }, // stages 2 and 3
						func() error { return o.Upsert("t", row{"id": 4, "v": c.before[3]}) },
						func() error { return o.Upsert("t", row{"id": 5, "v": c.wider}) },
					)
				})
				if typ := w.columnTypes("t")["v"]; typ != c.wantType {
					t.Errorf("type %s, want %s (changes %v)", typ, c.wantType, changes)
				}
				var want []string
				for i, v := range c.want {
					want = append(want, fmt.Sprintf("%d|%s", i+1, v))
				}
				w.expectRows(`SELECT id, v FROM {t} ORDER BY id`, want...)
				// A second sync starts from the warehouse's type, and widens
				// again where it can.
				w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
					return r.e.Upsert("t", row{"id": 6, "v": "later"})
				})
				w.expectRows(`SELECT v FROM {t} WHERE id = 1`, c.want[0])
				if typ := w.columnTypes("t")["v"]; typ != "VARCHAR" {
					t.Errorf("after a string: type %s", typ)
				}
			})
		}
	})
}

func TestWideningInUpdatesAndKeys(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{BatchRows: 2}, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}}}, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("t", row{"id": 1, "a": 1, "b": 1}) },
				func() error { return o.Upsert("t", row{"id": 2, "a": 2, "b": 2}) },
				func() error { return o.Checkpoint(nil) },
				func() error { return o.Update("t", row{"id": 1, "a": 10}) },
				func() error { return o.Update("t", row{"id": 2, "b": 20}) }, // staged with the update above
				func() error { return o.Update("t", row{"id": 1, "b": 100}) },
				func() error { return o.Update("t", row{"id": 2, "a": 2.5}) }, // widens a while a partial row holds it
				func() error { return o.Update("t", row{"id": 1, "b": "text"}) },
			)
		})
		w.expectRows(`SELECT id, a, b FROM {t} ORDER BY id`, "1|10.0|text", "2|2.5|20")
		// A key column that changes type is an error, not a silent re-key.
		err := w.sync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": "one", "a": 1})
		})
		wantErr(t, err, "operation 1", `"t"`, `key column "id"`)
	})
}

func TestSchemaEvolution(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		var changes []string
		opts := engine.Options{BatchRows: 2, OnSchemaChange: func(ch destination.SchemaChange) { changes = append(changes, ch.String()) }}
		declared := []contract.Table{
			{Name: "declared_empty", PrimaryKey: []string{"code"}, Columns: []contract.Column{{Name: "code", Type: contract.String}, {Name: "n", Type: contract.Long}}},
			{Name: "keyonly", PrimaryKey: []string{"k"}},
			{Name: "nokey", Columns: []contract.Column{{Name: "a", Type: contract.Double}}},
		}
		w.mustSync(opts, declared, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("first", row{"id": 1}) },
				func() error { return o.Checkpoint(nil) },
				func() error { return o.Upsert("first", row{"id": 2, "later": "x"}) },   // new column
				func() error { return o.Upsert("second", row{"id": 1, "n": nil}) },      // new table mid-sync
				func() error { return o.Upsert("second", row{"id": 2, "n": int64(3)}) }, // column typed by its first value
				func() error { return o.Checkpoint(nil) },
				func() error { return o.Upsert("second", row{"id": 3, "only_nulls": nil}) }, // never typed: not created
			)
		})
		got := map[string]map[string]string{}
		for _, tn := range []string{"declared_empty", "keyonly", "nokey", "first", "second"} {
			got[tn] = w.columnTypes(tn)
		}
		want := map[string]map[string]string{
			"declared_empty": {"code": "VARCHAR", "n": "BIGINT"},
			"keyonly":        {"k": "VARCHAR"},
			"nokey":          {"_sluice_id": "VARCHAR", "a": "DOUBLE"},
			"first":          {"_sluice_id": "VARCHAR", "id": "BIGINT", "later": "VARCHAR"},
			"second":         {"_sluice_id": "VARCHAR", "id": "BIGINT", "n": "BIGINT"},
		}
		for tn, cols := range want {
			cols["_sluice_synced"] = "TIMESTAMP WITH TIME ZONE"
			cols["_sluice_deleted"] = "BOOLEAN"
			if fmt.Sprint(got[tn]) != fmt.Sprint(cols) {
				t.Errorf("table %s: columns %v, want %v", tn, got[tn], cols)
			}
		}
		w.expectRows(`SELECT id, later FROM {first} ORDER BY id`, "1|NULL", "2|x")
		w.expectRows(`SELECT id, n FROM {second} ORDER BY id`, "1|NULL", "2|3", "3|NULL")
		// Primary keys as declared.
		for _, dt := range w.describe() {
			wantKey := map[string]string{"declared_empty": "[code]", "keyonly": "[k]", "nokey": "[_sluice_id]", "first": "[_sluice_id]", "second": "[_sluice_id]"}[dt.Name]
			if fmt.Sprint(dt.PrimaryKey) != wantKey {
				t.Errorf("table %s: key %v, want %s", dt.Name, dt.PrimaryKey, wantKey)
			}
		}
		if len(changes) == 0 {
			t.Errorf("no schema change reported")
		}
	})
}

func TestReopen(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "d", Type: contract.Decimal, Precision: 12, Scale: 3}}}}, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("t", row{"id": 1, "n": 1, "d": "1.5", "f": float32(1)}) },
				func() error { return r.e.Upsert("h", row{"a": 1, "b": "x"}) },
				func() error { return r.e.Checkpoint(map[string]any{"run": 1}) },
			)
		})
		before := w.describe()
		if len(before) != 2 || before[0].Name != "h" || before[1].Name != "t" {
			t.Fatalf("describe %+v", before)
		}
		if c, _ := before[1].Column("d"); c.Type != contract.Decimal || c.Precision != 12 || c.Scale != 3 {
			t.Errorf("column d %+v", c)
		}
		if c, _ := before[1].Column("f"); c.Type != contract.Float {
			t.Errorf("column f %+v", c)
		}
		// A second engine, no schema declared: it appends, widens, adds.
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return each(
				func() error {
					return r.e.Upsert("t", row{"id": 2, "n": 2.5, "d": contract.DecimalText("2.25"), "f": 2, "new": true})
				},
				func() error { return r.e.Upsert("h", row{"b": "x", "a": 1}) }, // the same row again
				func() error { return r.e.Upsert("h", row{"a": 2, "b": "y"}) },
				func() error { return r.e.Update("t", row{"id": 1, "d": contract.DecimalText("9.999")}) },
			)
		})
		w.expectRows(`SELECT id, n, d::VARCHAR, f, new FROM {t} ORDER BY id`, "1|1.0|9.999|1.0|NULL", "2|2.5|2.250|2.0|true")
		if typ := w.columnTypes("t"); typ["n"] != "DOUBLE" || typ["d"] != "DECIMAL(12,3)" || typ["f"] != "DOUBLE" {
			t.Errorf("types %v", typ)
		}
		w.expectRows(`SELECT a, b FROM {h} ORDER BY a`, "1|x", "2|y")
		if s := w.state(); s != `{"run":1}` {
			t.Errorf("state %s", s)
		}
		// A third engine declaring a wider type than the warehouse has.
		w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{{Name: "n", Type: contract.String}}}}, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": 3, "n": "three"})
		})
		w.expectRows(`SELECT id, n FROM {t} ORDER BY id`, "1|1.0", "2|2.5", "3|three")
		// A schema that declares another key for an existing table is an error.
		err := w.sync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"n"}}}, func(r *syncRun) error { return nil })
		wantErr(t, err, `"t"`, "primary key")
	})
}

// A declared column or a declared wider type is applied even when the sync
// sends no row.
func TestDeclaredChangesWithoutRows(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{
			{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.Int},
		}}}, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": 1, "n": 5})
		})
		w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"id"}, Columns: []contract.Column{
			{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.Long}, {Name: "extra", Type: contract.String},
		}}}, func(r *syncRun) error { return nil })
		if typ := w.columnTypes("t"); typ["n"] != "BIGINT" || typ["extra"] != "VARCHAR" {
			t.Errorf("types %v", typ)
		}
		w.expectRows(`SELECT id, n, extra FROM {t}`, "1|5|NULL")
	})
}

// A key column cannot change type in place: a schema that declares a wider
// key type than the warehouse has is an error at the start, before any
// operation, and the warehouse is left as it was.
func TestDeclaredKeyWidening(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"k"}, Columns: []contract.Column{{Name: "k", Type: contract.Int}}}}, func(r *syncRun) error {
			return r.e.Upsert("t", row{"k": 1, "v": 1})
		})
		called := false
		err := w.sync(engine.Options{}, []contract.Table{{Name: "t", PrimaryKey: []string{"k"}, Columns: []contract.Column{{Name: "k", Type: contract.Long}}}}, func(r *syncRun) error {
			called = true
			return nil
		})
		wantErr(t, err, "schema", `"t"`, `key column "k"`, "reset")
		if called {
			t.Error("the sync went on")
		}
		w.expectRows(`SELECT k, v FROM {t}`, "1|1")
	})
}

// A column that widens to STRING holds values the warehouse cast (those
// written before) and values the engine rendered (those written after):
// the same number, time, flag, bytes or JSON must read the same either way.
func TestWidenedToStringReadsAlike(t *testing.T) {
	doubles := []any{4.0, 0.1, 100.0, 1e15, 1e16, 1e20, 123456789.0, 1.5e-7, 0.0001, 1e-5, -2.5, 1.0 / 3, 5e-324, 12345678901234567890.0,
		1234567890123456.7, -1e15, 123456789012345.67, 9007199254740993.0, math.MaxFloat64, -0.5e-4, math.Copysign(0, -1)}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 60 {
		doubles = append(doubles, (rng.Float64()-0.5)*math.Pow(10, float64(rng.IntN(44)-22)))
	}
	// FLOAT values exact in float32: the engine renders a float32 sent
	// after the widening through its float64 form, so that 0.1 would read
	// 0.10000000149011612 there and 0.1 where the warehouse cast it.
	var floats []any
	for _, f := range []float32{1234567, 16777216, 1.5, -7e6, 999999, 1e6, 0.25, 123456.75, 1e10, -0.5, 3} {
		floats = append(floats, f)
	}
	columns := []struct {
		name   string
		values []any
	}{
		{"v", doubles},
		{"f", floats},
		{"ts", []any{time.Date(2024, 1, 2, 3, 4, 5, 500_000_000, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)}},
		{"b", []any{true, false}},
		{"n", []any{int64(-1) << 62, int32(7), 0}},
		// Printable ASCII: DuckDB escapes other bytes when it casts a BLOB.
		{"bin", []any{[]byte("hello"), []byte("a b, c: d"), []byte{}}},
		// Keys in one order for encoding/json and jsonb: one per object,
		// or of one length.
		{"j", []any{map[string]any{"a": []int{1, 2}, "b": "x, y: z"}, []string{"p: q", `"quoted"`}, map[string]any{}, []any{}, map[string]any{"k": nil}}},
	}
	eachDest(t, func(t *testing.T, k kind) {
		// Rows id and 10000+id get the same value: the first before the
		// column widens, the second after.
		write := func(r *syncRun, base int) error {
			for ci, c := range columns {
				for i, v := range c.values {
					if err := r.e.Upsert("t", row{"id": base + 1000*ci + i, c.name: v}); err != nil {
						return err
					}
				}
			}
			return nil
		}
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error { return write(r, 0) })
		wide := row{"id": -1}
		for _, c := range columns {
			wide[c.name] = "text"
		}
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error { return r.e.Upsert("t", wide) })
		typ := w.columnTypes("t")
		for _, c := range columns {
			if typ[c.name] != "VARCHAR" {
				t.Fatalf("%s did not widen: %v", c.name, typ)
			}
		}
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error { return write(r, 10000) })
		for _, c := range columns {
			rows := w.query(`SELECT a.id, a.` + c.name + `, b.` + c.name + ` FROM {t} a JOIN {t} b ON b.id = a.id + 10000 WHERE a.id >= 0 AND a.` + c.name + ` IS NOT NULL`)
			if len(rows) != len(c.values) {
				t.Errorf("%s: %d values, want %d", c.name, len(rows), len(c.values))
			}
			for _, r := range rows {
				if r[1] != r[2] {
					t.Errorf("%s of row %v: cast by the warehouse %q, rendered by the engine %q", c.name, r[0], r[1], r[2])
				}
			}
		}
	})
}
