package fileformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

// TestNumberTypedCSVValues: each value of a typed column is written as it
// is when a typed reader reads it alike, rewritten when not, and refused
// (ErrNotTyped) exactly when OpenCSV would not read it as the column's type.
func TestNumberTypedCSVValues(t *testing.T) {
	const bad = "!bad"
	dec := Column{Name: "v", Type: contract.Decimal, Precision: 38, Scale: 2}
	for _, c := range []struct {
		col      Column
		in, want string
	}{
		{Column{Type: contract.Long}, "42", "42"},
		{Column{Type: contract.Long}, "+5", "+5"},
		{Column{Type: contract.Long}, " 42\t", "42"},
		{Column{Type: contract.Long}, `"42"`, "42"},
		{Column{Type: contract.Long}, `" 7 "`, "7"},
		{Column{Type: contract.Long}, "", ""},
		{Column{Type: contract.Long}, `""`, ""},
		{Column{Type: contract.Long}, `"  "`, ""},
		{Column{Type: contract.Long}, "  ", ""},
		{Column{Type: contract.Long}, "-9223372036854775808", "-9223372036854775808"},
		{Column{Type: contract.Long}, "9223372036854775808", bad},
		{Column{Type: contract.Long}, "007", bad},
		{Column{Type: contract.Long}, "1e3", bad},
		{Column{Type: contract.Long}, "4.0", bad},
		{Column{Type: contract.Long}, `"4"""`, bad},
		{Column{Type: contract.Long}, `"4"x`, bad},
		{Column{Type: contract.Long}, "x\"4", bad},
		{Column{Type: contract.Double}, ".5", ".5"},
		{Column{Type: contract.Double}, "5.", "5."},
		{Column{Type: contract.Double}, " -1E-3 ", "-1E-3"},
		{Column{Type: contract.Double}, "1e308", "1e308"},
		{Column{Type: contract.Double}, "1e-400", "1e-400"},
		{Column{Type: contract.Double}, "1e400", bad},
		{Column{Type: contract.Double}, "1" + strings.Repeat("0", 309), bad},
		{Column{Type: contract.Double}, "inf", bad},
		{Column{Type: contract.Double}, "NaN", bad},
		{Column{Type: contract.Double}, "01.5", bad},
		{Column{Type: contract.Double}, "0x10", bad},
		{dec, "+1.20", "+1.20"},
		{dec, " 7 ", "7"},
		{dec, "-0.05", "-0.05"},
		{dec, "1.234", bad},
		{dec, "00.5", bad},
		{dec, "1" + strings.Repeat("0", 36), bad},
		{dec, "1" + strings.Repeat("0", 35), "1" + strings.Repeat("0", 35)},
		{Column{Type: contract.Boolean}, "TRUE", "TRUE"},
		{Column{Type: contract.Boolean}, " False ", "False"},
		{Column{Type: contract.Boolean}, "t", bad},
		{Column{Type: contract.Boolean}, "1", bad},
		{Column{Type: contract.NaiveDate}, " 2024-02-29 ", "2024-02-29"},
		{Column{Type: contract.NaiveDate}, "2023-02-29", bad},
		{Column{Type: contract.NaiveDate}, "2024-1-1", bad},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02", "2024-01-02"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 10:00:00.123456", "2024-01-02 10:00:00.123456"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02T10:00:00", "2024-01-02T10:00:00"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02t10:00", "2024-01-02 10:00:00"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 10:00", "2024-01-02 10:00:00"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02t10:00:00", "2024-01-02 10:00:00"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 10:00:00.1234567", "2024-01-02 10:00:00.123456"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 10:00:00.000000999", "2024-01-02 10:00:00"},
		{Column{Type: contract.NaiveDateTime}, "0000-01-01 00:00", "0000-01-01 00:00:00"},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 24:00:00", bad},
		{Column{Type: contract.NaiveDateTime}, "2024-01-02 10:00:00Z", bad},
		{Column{Type: contract.UTCDateTime}, "2024-01-02T10:00:00Z", "2024-01-02T10:00:00Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02 10:00:00.5+0530", "2024-01-02 10:00:00.5+0530"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02 10:00:00-01", "2024-01-02 10:00:00-01"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02 10:00+05:30", "2024-01-02 04:30:00Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02T10:00:00.000000001z", "2024-01-02 10:00:00Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-01t23:00:00.1234567-02:00", "2024-01-02 01:00:00.123456Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02T10:00:00z", "2024-01-02 10:00:00Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02t10:00:00+01", "2024-01-02 09:00:00Z"},
		{Column{Type: contract.UTCDateTime}, "2024-01-02 10:00:00", bad},
		{Column{Type: contract.UTCDateTime}, "2024-01-02 10:00:00+24", bad},
	} {
		c.col.Name = "v"
		if c.col.Type == contract.Decimal {
			c.col = dec
		}
		in := "1," + c.in + ",x\n"
		var out bytes.Buffer
		cols := []Column{{Name: "k", Type: contract.Long}, c.col, {Name: "s", Type: contract.String}}
		n, err := NumberTypedCSV(context.Background(), strings.NewReader(in), &out, ',', '"', 0, cols)
		if c.want == bad {
			if !errors.Is(err, ErrNotTyped) || !strings.Contains(err.Error(), `record 1, column "v"`) {
				t.Errorf("%s %q: %v, want ErrNotTyped naming record 1, column v", c.col.Type, c.in, err)
			}
			if out.Len() != 0 {
				t.Errorf("%s %q: wrote %q for a record that does not read", c.col.Type, c.in, out.String())
			}
			continue
		}
		values := int64(1)
		if c.want == "" {
			values = 0
		}
		if want := "1,1," + c.want + ",x\n"; err != nil || n.Records != 1 || out.String() != want || n.Values[1] != values {
			t.Errorf("%s %q: %q, %+v, %v; want %q, %d value", c.col.Type, c.in, out.String(), n, err, want, values)
		}
	}
}

// TestNumberTypedCSVRecords: records are told apart as NumberCSV tells
// them, STRING fields and empty lines are copied as they are, and a
// record of the wrong width, a lone carriage return or a value that does
// not read stops the copy after the last whole record.
func TestNumberTypedCSVRecords(t *testing.T) {
	cols := []Column{{Name: "a", Type: contract.Long}, {Name: "b", Type: contract.String}, {Name: "", Type: contract.Long}, {Name: "d", Type: contract.Double}}
	run := func(in string) (string, CSVNumbered, error) {
		var out bytes.Buffer
		n, err := NumberTypedCSV(context.Background(), strings.NewReader(in), &out, ',', '"', 10, cols)
		return out.String(), n, err
	}
	in := "1,\"x,\"\"y\"\"\r\nz\",junk, 2.5\r\n\r\n\n2,x\"y,,3\n3,\"\",,\"4\""
	want := "11,1,\"x,\"\"y\"\"\r\nz\",junk,2.5\r\n\r\n\n12,2,x\"y,,3\n13,3,\"\",,4"
	// Values not NULL: a and d have one in each record; the unnamed
	// column and b are not counted.
	if got, n, err := run(in); got != want || n.Records != 3 || !slices.Equal(n.Values, []int64{3, 0, 0, 3}) || err != nil {
		t.Errorf("got %q, %+v, %v; want %q, 3 records, values [3 0 0 3]", got, n, err, want)
	}
	for _, c := range []struct{ in, wrote, err string }{
		{"1,a,,1\n2,b,,1,extra\n3,c,,1\n", "11,1,a,,1\n", "record 12 has 5 fields where the file has 4 columns"},
		{"1,a,,1\n2,b\n", "11,1,a,,1\n", "record 12 has 2 fields"},
		{"1,a,,1\n2,b\r,,1\n", "11,1,a,,1\n", ErrNotNumbered.Error()},
		{"1,a,,1\n2,\"b\rc\",,1\n", "11,1,a,,1\n", ErrNotNumbered.Error()},
		{"1,a,,1\r", "", ErrNotNumbered.Error()},
		{"1,a,,1\n2,b,,x\n", "11,1,a,,1\n", `record 12, column "d": "x"`},
		// The unnamed column is not read.
		{"1,a,x,1\n", "11,1,a,x,1\n", ""},
	} {
		got, _, err := run(c.in)
		if got != c.wrote || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: wrote %q, %v; want %q, %q", c.in, got, err, c.wrote, c.err)
		}
	}
	// A record longer than the read buffer.
	long := strings.Repeat("y", 3*splitBuffer)
	if got, n, err := run("1,\"" + long + "\",,1\n2,b,,2\n"); err != nil || n.Records != 2 || got != "11,1,\""+long+"\",,1\n12,2,b,,2\n" {
		t.Errorf("a long record: %d records, %v", n, err)
	}
}

// TestNumberTypedCSVRandom: on files of several MiB with quoted line ends
// across the reads, typed numbering gives each record its number where
// every value is written as it is, and the writes are whole records.
func TestNumberTypedCSVRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cols := []Column{{Name: "id", Type: contract.Long}, {Name: "text", Type: contract.String}, {Name: "n", Type: contract.Double}}
	for round := 0; round < 6; round++ {
		var in, want bytes.Buffer
		eol := "\n"
		if round%2 == 1 {
			eol = "\r\n"
		}
		records := int64(0)
		for i := 1; in.Len() < 3<<20; i++ {
			text := fmt.Sprintf("plain%d", rng.IntN(1000))
			switch rng.IntN(5) {
			case 0:
				text = `"` + strings.Repeat("q\n\"\",", rng.IntN(2000)) + `"`
			case 1:
				text = `"a,b` + strings.Repeat("\r\n", rng.IntN(3)) + `"`
			case 2:
				text = `x"y`
			}
			if rng.IntN(50) == 0 {
				in.WriteString(eol) // an empty line: copied, not numbered
				want.WriteString(eol)
			}
			rec := fmt.Sprintf("%d,%s,%d.%d%s", i, text, rng.IntN(100), rng.IntN(10), eol)
			in.WriteString(rec)
			records++
			fmt.Fprintf(&want, "%d,%s", 7+records, rec)
		}
		var got recordWrites
		gn, err := NumberTypedCSV(context.Background(), bytes.NewReader(in.Bytes()), &got, ',', '"', 7, cols)
		if err != nil || gn.Records != records || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("round %d: %d records, %v; want %d; the expected copy: %t", round, gn.Records, err, records, bytes.Equal(got.Bytes(), want.Bytes()))
		}
		if got.cut > 0 {
			t.Errorf("round %d: %d writes ended inside a record", round, got.cut)
		}
	}
}

// recordWrites counts the writes that do not end a line.
type recordWrites struct {
	bytes.Buffer
	cut int
}

func (w *recordWrites) Write(p []byte) (int, error) {
	if len(p) > 0 && p[len(p)-1] != '\n' {
		w.cut++
	}
	return w.Buffer.Write(p)
}

// TestIsDouble: isDouble reads what parseDouble reads, on random text of
// the characters numbers are made of.
func TestIsDouble(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const chars = "0123456789.+-eE"
	for i := 0; i < 200_000; i++ {
		b := make([]byte, 1+rng.IntN(9))
		for j := range b {
			b[j] = chars[rng.IntN(len(chars))]
		}
		if rng.IntN(20) == 0 {
			b = append(b, "e30"+fmt.Sprint(rng.IntN(10))...)
		}
		_, want := parseDouble(b)
		if got := isDouble(b); got != want {
			t.Fatalf("isDouble(%q) = %t, parseDouble %t", b, got, want)
		}
	}
	for _, s := range []string{"1e299", "9.99e307", "1.7976931348623157e308", "1.7976931348623159e308", "10e307", "0.1e310", "1e-99999", strings.Repeat("9", 309)} {
		_, want := parseDouble([]byte(s))
		if got := isDouble([]byte(s)); got != want {
			t.Errorf("isDouble(%q) = %t, parseDouble %t", s, got, want)
		}
	}
}

// TestAppendDateTime: the rewritten form keeps microseconds, cuts
// nanoseconds, and says Z when zoned.
func TestAppendDateTime(t *testing.T) {
	tm := time.Date(2024, 3, 1, 4, 5, 6, 7_008_009, time.UTC)
	if got := string(appendDateTime(nil, tm, true)); got != "2024-03-01 04:05:06.007008Z" {
		t.Errorf("got %q", got)
	}
	if got := string(appendDateTime(nil, tm.Truncate(time.Second), false)); got != "2024-03-01 04:05:06" {
		t.Errorf("got %q", got)
	}
}

// BenchmarkNumberCSV numbers 64 MiB of rows shaped as the file-table
// benchmark's (bench.GenFiles: a key, three strings, a double, a long, a
// boolean and a timestamp with an offset): "plain" only numbers them
// (NumberTypedCSV with every column as text), "typed" also reads and
// checks the five typed columns, and "copy" is the floor, a copy of the
// bytes.
// benchCSV is 64 MiB of the benchmark's rows (bench.Gen's columns), and
// their columns as OpenCSV finds them.
func benchCSV() ([]byte, []Column) {
	var buf bytes.Buffer
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; buf.Len() < 64<<20; i++ {
		fmt.Fprintf(&buf, "%d,customer %d,user%d@example.com,%s,%g,%d,%t,%s\n", i, i, i, []string{"DE", "FR", "US", "GB"}[i%4],
			float64((i*7919)%1000000)/100, i%1000, i%3 != 0, start.Add(time.Duration(i)*time.Second).Format("2006-01-02 15:04:05-07"))
	}
	cols := []Column{{Name: "id", Type: contract.Long}, {Name: "name", Type: contract.String}, {Name: "email", Type: contract.String}, {Name: "country", Type: contract.String},
		{Name: "amount", Type: contract.Double}, {Name: "quantity", Type: contract.Long}, {Name: "active", Type: contract.Boolean}, {Name: "created_at", Type: contract.UTCDateTime}}
	return buf.Bytes(), cols
}

func BenchmarkNumberCSV(b *testing.B) {
	data, cols := benchCSV()
	run := func(b *testing.B, number func(w io.Writer) error) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			if err := number(struct{ io.Writer }{io.Discard}); err != nil {
				b.Fatal(err)
			}
		}
	}
	text := make([]Column, len(cols))
	for i, c := range cols {
		text[i] = Column{Name: c.Name, Type: contract.String}
	}
	b.Run("plain", func(b *testing.B) {
		run(b, func(w io.Writer) error {
			_, err := NumberTypedCSV(context.Background(), bytes.NewReader(data), w, ',', '"', 0, text)
			return err
		})
	})
	b.Run("typed", func(b *testing.B) {
		run(b, func(w io.Writer) error {
			_, err := NumberTypedCSV(context.Background(), bytes.NewReader(data), w, ',', '"', 0, cols)
			return err
		})
	})
	b.Run("copy", func(b *testing.B) {
		cb := make([]byte, 1<<20)
		run(b, func(w io.Writer) error {
			_, err := io.CopyBuffer(w, struct{ io.Reader }{bytes.NewReader(data)}, cb)
			return err
		})
	})
}
