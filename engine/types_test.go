package engine_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

var allTypes = []contract.Table{{
	Name:       "typed",
	PrimaryKey: []string{"id"},
	Columns: []contract.Column{
		{Name: "id", Type: contract.Long},
		{Name: "b", Type: contract.Boolean},
		{Name: "sh", Type: contract.Short},
		{Name: "i", Type: contract.Int},
		{Name: "l", Type: contract.Long},
		{Name: "dec", Type: contract.Decimal, Precision: 10, Scale: 2},
		{Name: "f", Type: contract.Float},
		{Name: "d", Type: contract.Double},
		{Name: "nd", Type: contract.NaiveDate},
		{Name: "ndt", Type: contract.NaiveDateTime},
		{Name: "utc", Type: contract.UTCDateTime},
		{Name: "bin", Type: contract.Binary},
		{Name: "x", Type: contract.XML},
		{Name: "s", Type: contract.String},
		{Name: "j", Type: contract.JSON},
	},
}}

func TestDeclaredTypes(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		berlin := time.FixedZone("CET", 3600)
		w.mustSync(engine.Options{}, allTypes, func(r *syncRun) error {
			o := r.e
			return each(
				func() error {
					return o.Upsert("typed", row{
						"id": 1, "b": true, "sh": int16(-32768), "i": int32(math.MaxInt32), "l": int64(math.MinInt64),
						"dec": contract.DecimalText("-12345678.90"), "f": float32(1.5), "d": 2.25,
						"nd": "2024-03-01", "ndt": "2024-03-01T12:30:00.123456", "utc": "2024-03-01T12:30:00+02:00",
						"bin": []byte{0, 1, 0xff}, "x": "<a>1</a>", "s": "héllo", "j": map[string]any{"k": []int{1, 2}},
					})
				},
				// Text and other Go types that convert to the declared type.
				func() error {
					return o.Upsert("typed", row{
						"id": "2", "b": "false", "sh": 7.0, "i": "42", "l": uint32(7),
						"dec": 3.5, "f": 2, "d": "1e3",
						"nd": time.Date(2024, 3, 1, 23, 30, 0, 0, berlin), "ndt": "2024-03-01 12:30:00",
						"utc": time.Date(2024, 3, 1, 12, 30, 0, 0, berlin),
						"bin": "text", "x": 5, "s": 12, "j": `{"already":"json"}`,
					})
				},
				func() error {
					return o.Upsert("typed", row{
						"id": 3, "dec": "7.000", "ndt": "2024-03-01T12:30", "utc": "2024-03-01 12:30:00Z",
						"j": "plain text", "s": true,
					})
				},
				func() error { return o.Upsert("typed", row{"id": 4}) }, // all NULL
			)
		})
		wantTypes := map[string]string{
			"id": "BIGINT", "b": "BOOLEAN", "sh": "SMALLINT", "i": "INTEGER", "l": "BIGINT",
			"dec": "DECIMAL(10,2)", "f": "FLOAT", "d": "DOUBLE", "nd": "DATE", "ndt": "TIMESTAMP",
			"utc": "TIMESTAMP WITH TIME ZONE", "bin": "BLOB", "x": "VARCHAR", "s": "VARCHAR", "j": "JSON",
			"_sluice_synced": "TIMESTAMP WITH TIME ZONE", "_sluice_deleted": "BOOLEAN",
		}
		got := w.columnTypes("typed")
		for c, typ := range wantTypes {
			if got[c] != typ {
				t.Errorf("column %s: type %s, want %s", c, got[c], typ)
			}
		}
		if len(got) != len(wantTypes) {
			t.Errorf("columns %v, want %v", got, wantTypes)
		}
		// Values as cell renders them, the same from every destination.
		w.expectRows(`SELECT id, b, sh, i, l, dec, f, d, nd, ndt, utc, bin, x, s, j::VARCHAR FROM {typed} ORDER BY id`,
			"1|true|-32768|2147483647|-9223372036854775808|-12345678.90|1.5|2.25|2024-03-01T00:00:00Z|2024-03-01T12:30:00.123456Z|2024-03-01T10:30:00Z|0x0001ff|<a>1</a>|héllo|{\"k\":[1,2]}",
			"2|false|7|42|7|3.50|2.0|1000.0|2024-03-01T00:00:00Z|2024-03-01T12:30:00Z|2024-03-01T11:30:00Z|0x74657874|5|12|{\"already\":\"json\"}",
			"3|NULL|NULL|NULL|NULL|7.00|NULL|NULL|NULL|2024-03-01T12:30:00Z|2024-03-01T12:30:00Z|NULL|NULL|true|\"plain text\"",
			"4|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL",
		)
		// The Go values the drivers give back.
		vals := w.query(`SELECT b, sh, i, l, f, d, nd, ndt, utc, bin FROM {typed} WHERE id = 1`)[0]
		if vals[0] != true || vals[1] != int16(-32768) || vals[2] != int32(math.MaxInt32) || vals[3] != int64(math.MinInt64) ||
			vals[4] != float32(1.5) || vals[5] != 2.25 {
			t.Errorf("values %#v", vals)
		}
		if d := vals[6].(time.Time); !d.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("date %v", d)
		}
		if d := vals[7].(time.Time); !d.Equal(time.Date(2024, 3, 1, 12, 30, 0, 123456000, time.UTC)) {
			t.Errorf("naive datetime %v", d)
		}
		if d := vals[8].(time.Time); !d.Equal(time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC)) {
			t.Errorf("utc datetime %v", d)
		}
	})
}

func TestDeclaredTypesEnforced(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		cases := []struct {
			col   string
			value any
			want  []string
		}{
			{"b", "yes please", []string{`column "b"`, `"yes please"`, "BOOLEAN"}},
			{"sh", 40000, []string{`column "sh"`, "40000", "SHORT"}},
			{"i", int64(math.MaxInt32) + 1, []string{`column "i"`, "2147483648", "INT"}},
			{"l", 1.5, []string{`column "l"`, "1.5", "LONG"}},
			{"l", uint64(math.MaxUint64), []string{`column "l"`, "18446744073709551615", "LONG"}},
			{"dec", "123456789.1", []string{`column "dec"`, `"123456789.1"`, "DECIMAL"}},
			{"dec", "abc", []string{`column "dec"`, `"abc"`, "DECIMAL"}},
			// Digits past the scale would be rounded away: an error, not a
			// silent change of the value.
			{"dec", contract.DecimalText("1.005"), []string{`column "dec"`, "1.005", "DECIMAL", "after the point"}},
			// A float is rounded to the scale (see TestDecimalRoundsFloats), but
			// too many digits before the point are still an error.
			{"dec", 1e12, []string{`column "dec"`, "DECIMAL", "too many digits"}},
			{"f", "NaNa", []string{`column "f"`, "FLOAT"}},
			{"nd", "01/03/2024", []string{`column "nd"`, "NAIVE_DATE", "YYYY-MM-DD"}},
			{"nd", "2024-03-01T00:00:00", []string{`column "nd"`, "NAIVE_DATE"}},
			{"ndt", "2024-03-01T12:30:00Z", []string{`column "ndt"`, "NAIVE_DATETIME", "offset"}},
			{"ndt", "yesterday", []string{`column "ndt"`, "NAIVE_DATETIME"}},
			{"utc", "2024-03-01T12:30:00", []string{`column "utc"`, "UTC_DATETIME", "offset"}},
			{"utc", "2024-03-01 12:30:00", []string{`column "utc"`, "UTC_DATETIME", "offset"}},
			{"bin", 12, []string{`column "bin"`, "BINARY"}},
			{"j", json.RawMessage(`{bad`), []string{`column "j"`, "JSON"}},
			{"b", struct{}{}, []string{`column "b"`, "BOOLEAN"}},
		}
		for _, c := range cases {
			t.Run(c.col, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				err := w.sync(engine.Options{}, allTypes, func(r *syncRun) error {
					return each(
						func() error { return r.e.Upsert("typed", row{"id": 1, "s": "ok"}) },
						func() error { return r.e.Checkpoint(map[string]any{"n": 1}) },
						func() error { return r.e.Upsert("typed", row{"id": 2, "s": "lost"}) },
						func() error { return r.e.Upsert("typed", row{"id": 3, c.col: c.value}) },
					)
				})
				wantErr(t, err, append([]string{"operation 4", "upsert", `"typed"`}, c.want...)...)
				w.expectRows(`SELECT id, s FROM {typed}`, "1|ok")
				if s := w.state(); s != `{"n":1}` {
					t.Errorf("state %s", s)
				}
			})
		}
	})
}

func TestInferredTypes(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		ts := time.Date(2024, 3, 1, 12, 30, 0, 500, time.FixedZone("X", -5*3600))
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Upsert("inferred", row{
				"b": true, "i8": int8(-3), "u8": uint8(200), "i16": int16(300), "u16": uint16(60000),
				"i32": int32(-5), "u32": uint32(4000000000), "i": 7, "i64": int64(-9), "u64": uint64(math.MaxUint64),
				"f32": float32(0.5), "f64": 0.25, "s": "text", "bin": []byte("raw"), "t": ts, "tp": &ts,
				"m": map[string]any{"z": 1, "a": "b"}, "sl": []string{"x", "y"}, "dec": contract.DecimalText("-1.250"),
				"num": json.Number("12"), "raw": json.RawMessage(`[1, 2]`), "nothing": nil,
			})
		})
		want := map[string]string{
			"_sluice_id": "VARCHAR", "b": "BOOLEAN", "i8": "SMALLINT", "u8": "SMALLINT", "i16": "SMALLINT", "u16": "INTEGER",
			"i32": "INTEGER", "u32": "BIGINT", "i": "BIGINT", "i64": "BIGINT", "u64": "DECIMAL(38,0)",
			"f32": "FLOAT", "f64": "DOUBLE", "s": "VARCHAR", "bin": "BLOB", "t": "TIMESTAMP WITH TIME ZONE", "tp": "TIMESTAMP WITH TIME ZONE",
			"m": "JSON", "sl": "JSON", "dec": "DECIMAL(38,3)", "num": "BIGINT", "raw": "JSON",
			"_sluice_synced": "TIMESTAMP WITH TIME ZONE", "_sluice_deleted": "BOOLEAN",
		}
		got := w.columnTypes("inferred")
		for c, typ := range want {
			if got[c] != typ {
				t.Errorf("column %s: type %s, want %s", c, got[c], typ)
			}
		}
		if len(got) != len(want) {
			t.Errorf("columns %v, want %v", got, want)
		}
		w.expectRows(`SELECT b, i8, u8, i16, u16, i32, u32, i, i64, u64, f32, f64, s, bin,
		t, tp, m::VARCHAR, sl::VARCHAR, dec, num, raw::VARCHAR FROM {inferred}`,
			"true|-3|200|300|60000|-5|4000000000|7|-9|18446744073709551615|0.5|0.25|text|0x726177|"+
				"2024-03-01T17:30:00Z|2024-03-01T17:30:00Z|{\"a\":\"b\",\"z\":1}|[\"x\",\"y\"]|-1.250|12|[1,2]")
	})
}

func TestInferredUnsupportedType(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		err := w.sync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": 1, "c": make(chan int)})
		})
		wantErr(t, err, "operation 1", `"t"`, `column "c"`, "chan int")
	})
}

func TestDecimalRoundsFloats(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, allTypes, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("typed", row{"id": 1, "dec": 0.1 + 0.2}) },
				func() error { return r.e.Upsert("typed", row{"id": 2, "dec": float32(2.675)}) },
			)
		})
		w.expectRows(`SELECT id, dec::VARCHAR FROM {typed} ORDER BY id`, "1|0.30", "2|2.67")
	})
}
