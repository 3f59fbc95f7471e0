package duckdb

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestTypedPartsLoadAsWhole: a CSV file loaded in numbered parts, whose
// typed columns DuckDB reads as their types from the values
// fileformat.NumberTypedCSV checked and rewrote, gives the rows the whole
// load gives (every column as text, converted by SQL), which the files
// connector's tests hold to the rows upserting gives; and it is declined
// where the whole load is. So does a load through Arrow, in a build that
// has it (csvarrow.go), from the values fileformat.ReadCSVColumns read. Each file has one odd value among values of
// its column's type.
func TestTypedPartsLoadAsWhole(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: loads keep one thread")
	}
	long, double := contract.Column{Type: contract.Long}, contract.Column{Type: contract.Double}
	dec := contract.Column{Type: contract.Decimal, Precision: 38, Scale: 2}
	boolean, date := contract.Column{Type: contract.Boolean}, contract.Column{Type: contract.NaiveDate}
	naive, utc := contract.Column{Type: contract.NaiveDateTime}, contract.Column{Type: contract.UTCDateTime}
	cases := []struct {
		col        contract.Column
		typ, value string
	}{
		{long, "12", "+5"}, {long, "12", " 42\t"}, {long, "12", "-0"}, {long, "12", `""`}, {long, "12", `"  "`}, {long, "12", `" 9 "`},
		{long, "12", "-9223372036854775808"}, {long, "12", "9223372036854775807"},
		{long, "12", "007"}, {long, "12", "1e3"}, {long, "12", "9223372036854775808"}, {long, "12", "1_000"}, {long, "12", "4.0"}, {long, "12", `"4` + "\n" + `"`},
		{double, "1.5e1", ".5"}, {double, "1.5e1", "5."}, {double, "1.5e1", "-1E-3"}, {double, "1.5e1", " 2.5 "}, {double, "1.5e1", "1e308"}, {double, "1.5e1", "0"},
		{double, "1.5e1", "1e-400"}, {double, "1.5e1", "1.7976931348623157e308"}, {double, "1.5e1", "2.2250738585072011e-308"}, {double, "1.5e1", "9007199254740993"},
		{double, "1.5e1", "0.1000000000000000055511151231257827021181583404541015625"}, {double, "1.5e1", "-0.0"},
		{double, "1.5e1", "1e400"}, {double, "1.5e1", "inf"}, {double, "1.5e1", "NaN"}, {double, "1.5e1", "01.5"}, {double, "1.5e1", `"1,5"`}, {double, "1.5e1", "- 1"},
		{dec, "1.25", "+1.20"}, {dec, "1.25", "7"}, {dec, "1.25", " -0.05 "}, {dec, "1.25", "1.234"}, {dec, "1.25", "-.5"}, {dec, "1.25", "00.5"},
		{dec, "1.25", "123456789012345678901234567890123456.78"},
		{boolean, "true", "TRUE"}, {boolean, "true", " False "}, {boolean, "true", "t"}, {boolean, "true", "1"}, {boolean, "true", "yes"},
		{date, "2024-01-02", " 2024-02-29 "}, {date, "2024-01-02", "0000-01-01"}, {date, "2024-01-02", "9999-12-31"},
		{date, "2024-01-02", "2024-1-1"}, {date, "2024-01-02", "2023-02-29"}, {date, "2024-01-02", "2024-01-02T00:00"},
		{naive, "2024-01-02 10:00:00", "2024-01-02"}, {naive, "2024-01-02 10:00:00", "2024-01-02t10:00"}, {naive, "2024-01-02 10:00:00", "2024-01-02T10:00:00"},
		{naive, "2024-01-02 10:00:00", "2024-01-02 10:00:00.1234567"}, {naive, "2024-01-02 10:00:00", "2024-01-02 10:00:00.999999999"},
		{naive, "2024-01-02 10:00:00", "0000-01-01 00:00"}, {naive, "2024-01-02 10:00:00", "9999-12-31 23:59:59.999999"},
		{naive, "2024-01-02 10:00:00", "2024-01-02 24:00:00"}, {naive, "2024-01-02 10:00:00", "2024-01-02 10:00:60"}, {naive, "2024-01-02 10:00:00", "2024-01-02 10:00:00Z"},
		{utc, "2024-01-02T10:00:00Z", "2024-01-02 10:00+05:30"}, {utc, "2024-01-02T10:00:00Z", "2024-01-02T10:00:00.000000001z"}, {utc, "2024-01-02T10:00:00Z", "2024-01-02 10:00:00-0130"},
		{utc, "2024-01-02T10:00:00Z", "2024-01-02t10:00:00.5+01"}, {utc, "2024-01-02T10:00:00Z", "0000-01-01T00:00:00Z"}, {utc, "2024-01-02T10:00:00Z", "2024-01-02 10:00:00.123456-23:59"},
		{utc, "2024-01-02T10:00:00Z", "2024-01-02 10:00:00"}, {utc, "2024-01-02T10:00:00Z", "2024-01-02 10:00:00+24"}, {utc, "2024-01-02T10:00:00Z", "2024-01-02"},
	}
	dir := t.TempDir()
	type outcome struct {
		res  destination.FileLoadResult
		rows []string
	}
	load := func(arrow bool, minPart int64, path string, col contract.Column) outcome {
		t.Helper()
		defer func(m int64, a bool) { minCSVPart, arrowLoads = m, a }(minCSVPart, arrowLoads)
		minCSVPart, arrowLoads = minPart, arrow
		_, tx := openTestTx(t, Settings{})
		defer tx.Rollback()
		col.Name = "v"
		tbl := destination.Table{
			Name:       "t",
			PrimaryKey: []string{"_file", "_line"},
			Columns: []destination.Column{
				{Name: "_file", Type: contract.String}, {Name: "_line", Type: contract.Long},
				{Name: "k", Type: contract.Long}, destination.Column(col), {Name: "s", Type: contract.String},
			},
		}
		ctx := context.Background()
		if err := tx.Apply(ctx, []destination.SchemaChange{{Kind: destination.CreateTable, Table: tbl}}); err != nil {
			t.Fatal(err)
		}
		res, err := tx.LoadFile(ctx, destination.FileLoad{
			Table: "t", Path: path, Format: contract.FileCSV,
			CSV:       contract.CSVDialect{Delimiter: ',', Quote: '"', Header: true},
			Columns:   []destination.Column{{Name: "k", Type: contract.Long}, destination.Column(col), {Name: "s", Type: contract.String}},
			Constants: []destination.FileConstant{{Column: destination.Column{Name: "_file", Type: contract.String}, Value: "f.csv"}},
			RowNumber: "_line",
		})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rows, err := tx.tx.QueryContext(ctx, `SELECT _line || ' ' || k || ' ' || coalesce(v::VARCHAR, 'NULL') || ' ' || typeof(v) || ' ' || coalesce(s, 'NULL') FROM s.t ORDER BY _line`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		o := outcome{res: res}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			o.rows = append(o.rows, s)
		}
		return o
	}
	// The loads in parts must not fall back to the whole load: each says
	// how it ended.
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for i, c := range cases {
		var b strings.Builder
		b.WriteString("k,v,s\n")
		for r := 0; r < 200; r++ {
			v := c.typ
			if r == 100 {
				v = c.value
			}
			fmt.Fprintf(&b, "%d,%s,row %d\n", r, v, r)
		}
		path := filepath.Join(dir, fmt.Sprintf("case%02d.csv", i))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		whole := load(false, 1<<40, path, c.col)
		for _, arrow := range fastPaths() {
			logged.Reset()
			parts := load(arrow, 1<<10, path, c.col)
			how := logged.String()
			what := fmt.Sprintf("%s %q after %q, %s", c.col.Type, c.value, c.typ, pathName(arrow))
			want := "loaded a CSV file in parts"
			if arrow {
				want = "loaded a CSV file through Arrow"
			}
			if !parts.res.Handled {
				want = "does not read as its column's type"
			}
			if !strings.Contains(how, want) || strings.Contains(how, "whole") {
				t.Errorf("%s: the load logged %q, want %q", what, how, want)
			}
			if parts.res != whole.res {
				t.Errorf("%s: in parts %+v, whole %+v", what, parts.res, whole.res)
				continue
			}
			if !slices.Equal(parts.rows, whole.rows) {
				for j := range min(len(parts.rows), len(whole.rows)) {
					if parts.rows[j] != whole.rows[j] {
						t.Errorf("%s: in parts %q, whole %q", what, parts.rows[j], whole.rows[j])
					}
				}
				if len(parts.rows) != len(whole.rows) {
					t.Errorf("%s: %d rows in parts, %d whole", what, len(parts.rows), len(whole.rows))
				}
			}
		}
		if whole.res.Handled && len(whole.rows) != 200 {
			t.Errorf("%s %q: %d rows", c.col.Type, c.value, len(whole.rows))
		}
	}
}
