package fileformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

// randomTypedCSV writes a file with a header, of columns whose values
// OpenCSV reads as LONG, BOOLEAN, dates, datetimes, DECIMAL, DOUBLE and
// STRING: padded, quoted, empty, some with line ends and doubled quotes,
// empty lines between records; with odd (a value in 2,000 that does not
// read as its column's type). It returns the file and the header's length.
func randomTypedCSV(rng *rand.Rand, rows int, eol string, odd bool) ([]byte, int) {
	var b bytes.Buffer
	b.WriteString("id,flag,day,at,at_tz,amount,x,s" + eol)
	head := b.Len()
	pad := func(v string) string {
		switch rng.IntN(12) {
		case 0:
			return " " + v + "\t"
		case 1:
			return `"` + v + `"`
		}
		return v
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600)}
	empty := func() string { return []string{"", `""`, " ", `" "`}[rng.IntN(4)] }
	for range rows {
		if rng.IntN(100) == 0 {
			b.WriteString(eol)
		}
		tm := time.Date(1900+rng.IntN(200), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1e9), time.UTC)
		vals := []string{
			fmt.Sprint(rng.Int64N(1<<62) - 1<<61),
			[]string{"true", "false", "TRUE", "False"}[rng.IntN(4)],
			tm.Format("2006-01-02"),
			tm.Format([]string{"2006-01-02 15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04"}[rng.IntN(3)]),
			tm.In(zones[rng.IntN(len(zones))]).Format([]string{"2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05.999-07", "2006-01-02 15:04:05.999999999-0700"}[rng.IntN(3)]),
			fmt.Sprintf("%d.%02d", rng.IntN(2_000_000)-1_000_000, rng.IntN(100)),
			fmt.Sprint(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))),
			[]string{"plain", `"a,b"`, `"line` + eol + `end"`, `"say ""hi"""`, `x"y`, " padded ", "é"}[rng.IntN(7)],
		}
		for j := range vals {
			if j < 7 {
				vals[j] = pad(vals[j])
			}
			if rng.IntN(15) == 0 {
				vals[j] = empty()
			}
		}
		if odd && rng.IntN(2000) == 0 {
			vals[rng.IntN(7)] = []string{"n/a", "1.5.5", "2024-13-01", "yes", "12.3456"}[rng.IntN(5)]
		}
		b.WriteString(strings.Join(vals, ",") + eol)
	}
	return b.Bytes(), head
}

// TestReadCSVColumnsLikeOpenCSV: on random files, ReadCSVColumns gives the
// values OpenCSV's rows give, with the columns OpenCSV found; where OpenCSV
// changed a column's type, it is ErrNotTyped.
func TestReadCSVColumnsLikeOpenCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	checked, declined := 0, 0
	for round := range 12 {
		eol := []string{"\n", "\r\n"}[round%2]
		file, head := randomTypedCSV(rng, 3000+rng.IntN(3000), eol, round >= 4)
		cols, want, final := readAll(t, file)
		widened := !slices.Equal(cols, final)

		var got []*CSVBatch
		n, err := ReadCSVColumns(context.Background(), bytes.NewReader(file[head:]), "f.csv", ',', '"', 40, cols, 1+rng.IntN(700), func(b *CSVBatch) error {
			got = append(got, b)
			return nil
		})
		if widened {
			if !errors.Is(err, ErrNotTyped) {
				t.Fatalf("round %d: OpenCSV changed the columns %v to %v; ReadCSVColumns gave %v, want ErrNotTyped", round, cols, final, err)
			}
			declined++
			continue
		}
		if err != nil || n != int64(len(want)) {
			t.Fatalf("round %d: %d records, %v; want %d", round, n, err, len(want))
		}
		r := 0
		for _, b := range got {
			for k := range b.Len {
				if b.Positions[k] != 41+int64(r) {
					t.Fatalf("round %d: record %d numbered %d", round, r, b.Positions[k])
				}
				for i, c := range cols {
					if g, w := columnValue(b.Cols[i], c, k), want[r][i]; !sameValue(g, w, c) {
						t.Fatalf("round %d, record %d, column %s (%s): got %#v, OpenCSV %#v", round, r, c.Name, c.Type, g, w)
					}
				}
				r++
			}
		}
		checked++
	}
	if checked < 4 || declined < 2 {
		t.Errorf("%d files compared, %d declined: the generator no longer covers both", checked, declined)
	}
}

// TestReadCSVColumnsInParts: a file cut by CutCSV and read part by part,
// each numbered from the records the cut counted before it, gives every
// record once, at its position, with OpenCSV's values, and each part
// holds the records the cut counted in it; whatever empty lines, CRLF and
// quoted line ends lie around the cuts.
func TestReadCSVColumnsInParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for round := range 8 {
		eol := []string{"\n", "\r\n"}[round%2]
		file, _ := randomTypedCSV(rng, 2000+rng.IntN(2000), eol, false)
		cols, want, _ := readAll(t, file)
		parts := 2 + round%4
		size := int64(len(file))
		cut, err := CutCSV(context.Background(), bytes.NewReader(file), size, parts, ',', '"', true)
		if err != nil || len(cut.Cuts) != parts-1 {
			t.Fatalf("round %d: %d cuts for %d parts, %v", round, len(cut.Cuts), parts, err)
		}
		bounds := append(append([]int64{cut.Body}, cut.Cuts...), size)
		var first int64
		r := 0
		for i := 0; i+1 < len(bounds); i++ {
			n, err := ReadCSVColumns(context.Background(), bytes.NewReader(file[bounds[i]:bounds[i+1]]), "f.csv", ',', '"', first, cols, 1+rng.IntN(500), func(b *CSVBatch) error {
				for k := range b.Len {
					if r >= len(want) {
						return fmt.Errorf("more records than OpenCSV's %d", len(want))
					}
					if b.Positions[k] != int64(r)+1 {
						return fmt.Errorf("record %d numbered %d", r+1, b.Positions[k])
					}
					for j, c := range cols {
						if g, w := columnValue(b.Cols[j], c, k), want[r][j]; !sameValue(g, w, c) {
							return fmt.Errorf("record %d, column %s: got %#v, OpenCSV %#v", r+1, c.Name, g, w)
						}
					}
					r++
				}
				return nil
			})
			if err != nil {
				t.Fatalf("round %d, part %d of %d: %v", round, i+1, parts, err)
			}
			if i < len(cut.Records) && n != cut.Records[i] {
				t.Fatalf("round %d, part %d: %d records, the cut counted %d", round, i+1, n, cut.Records[i])
			}
			first += n
		}
		if r != len(want) {
			t.Fatalf("round %d: %d records read in parts, OpenCSV %d", round, r, len(want))
		}
	}
}

// readAll reads a file with a header by OpenCSV: the columns it found, its
// rows' values, and the columns after them (changed where a value widened
// one).
func readAll(t *testing.T, file []byte) (cols []Column, values [][]any, final []Column) {
	t.Helper()
	hdr := true
	rows, err := OpenCSV(bytes.NewReader(file), "f.csv", Options{CSV: CSVOptions{Delimiter: ',', Header: &hdr}})
	if err != nil {
		t.Fatal(err)
	}
	cols = slices.Clone(rows.Columns())
	for rows.Next() {
		values = append(values, slices.Clone(rows.Values()))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("OpenCSV: %v", err)
	}
	return cols, values, rows.Columns()
}

// columnValue is record k's value of d, as OpenCSV's rows give it.
func columnValue(d ColumnData, c Column, k int) any {
	if d.Null[k] {
		return nil
	}
	switch c.Type {
	case contract.Boolean:
		return d.Ints[k] == 1
	case contract.Long:
		return d.Ints[k]
	case contract.NaiveDate:
		return time.Unix(d.Ints[k]*86400, 0).UTC()
	case contract.NaiveDateTime, contract.UTCDateTime:
		return time.UnixMicro(d.Ints[k]).UTC()
	case contract.Double:
		return d.Floats[k]
	case contract.Decimal:
		v := new(big.Int).Lsh(big.NewInt(d.Hi[k]), 64)
		v.Add(v, new(big.Int).SetUint64(uint64(d.Ints[k])))
		return v
	}
	return string(d.Text[d.Offsets[k]:d.Offsets[k+1]])
}

// sameValue compares a ReadCSVColumns value with OpenCSV's: datetimes cut
// to microseconds (as the warehouses keep them), decimals as the unscaled
// value at the column's scale.
func sameValue(got, want any, c Column) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w.Truncate(time.Microsecond))
	case contract.DecimalText:
		g, ok := got.(*big.Int)
		r, ok2 := new(big.Rat).SetString(string(w))
		if !ok || !ok2 {
			return false
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.Scale)), nil)))
		return r.IsInt() && r.Num().Cmp(g) == 0
	case float64:
		g, ok := got.(float64)
		return ok && math.Float64bits(g) == math.Float64bits(w)
	}
	return got == want
}

// TestScaledDecimal: the 128-bit value at the edges of 38 digits, signs,
// and what OpenCSV would not read at the column's scale.
func TestScaledDecimal(t *testing.T) {
	for _, c := range []struct {
		in    string
		scale int
		want  string // "" for not read
	}{
		{"12.5", 2, "1250"},
		{"-12.5", 2, "-1250"},
		{"+0.01", 2, "1"},
		{"-0", 0, "0"},
		{"99999999999999999999999999999999999999", 0, "99999999999999999999999999999999999999"},
		{"-9999999999999999999999999999999999999.9", 1, "-99999999999999999999999999999999999999"},
		{"9223372036854775808", 0, "9223372036854775808"},
		{"-9223372036854775809", 0, "-9223372036854775809"},
		{"1.234", 2, ""},
		{"999999999999999999999999999999999999999", 0, ""},
		{"1e5", 0, ""},
		{"01", 0, ""},
	} {
		lo, hi, ok := scaledDecimal([]byte(c.in), c.scale)
		if !ok {
			if c.want != "" {
				t.Errorf("%s at scale %d: not read, want %s", c.in, c.scale, c.want)
			}
			continue
		}
		v := new(big.Int).Lsh(big.NewInt(hi), 64)
		v.Add(v, new(big.Int).SetUint64(uint64(lo)))
		if v.String() != c.want {
			t.Errorf("%s at scale %d: %s, want %q", c.in, c.scale, v, c.want)
		}
	}
}

// TestReadCSVColumnsErrors: a ragged record, a STRING that is not UTF-8 and
// a value of another type name the line, as OpenCSV's errors do.
func TestReadCSVColumnsErrors(t *testing.T) {
	cols := []Column{{Name: "id", Type: contract.Long}, {Name: "s", Type: contract.String}}
	for _, c := range []struct{ in, want string }{
		{"1,a\n2,b,c\n", "line 2: the record has 3 fields where the first record has 2"},
		{"1,a\n\n2,\xff\n", "line 3, column \"s\": byte 0xff"},
		{"1,a\n\"x\ny\",b\n", "line 2, column \"id\""},
	} {
		_, err := ReadCSVColumns(context.Background(), strings.NewReader(c.in), "f.csv", ',', '"', 0, cols, 10, func(*CSVBatch) error { return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "f.csv: ") {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	// One column: its empty lines are rows (NULL) to OpenCSV.
	_, err := ReadCSVColumns(context.Background(), strings.NewReader("1\n\n2\n"), "f.csv", ',', '"', 0, cols[:1], 10, func(*CSVBatch) error { return nil })
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("one column: %v, want errors.ErrUnsupported", err)
	}
}

// BenchmarkReadCSVColumns reads benchCSV's rows into batches of 16,384
// records, against BenchmarkNumberCSV/typed's text copy of the same.
func BenchmarkReadCSVColumns(b *testing.B) {
	data, cols := benchCSV()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := ReadCSVColumns(context.Background(), bytes.NewReader(data), "bench.csv", ',', '"', 0, cols, 16384, func(*CSVBatch) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
