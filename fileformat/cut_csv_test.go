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
)

// TestCutCSV: each cut is the start of the first record after its target,
// whatever quoted fields, doubled quotes and bare quotes lie around it;
// the body starts past the header line and a byte order mark; each part
// but the last has its records counted.
func TestCutCSV(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		parts   int
		header  bool
		body    string   // the text the first record starts with
		want    []string // each cut's record: the text that starts there
		records []int64
	}{
		// Size 21, target 10: inside the quoted field of record 1,
		// whose line ends there end no record.
		{"target in quotes", "a,b\n1,\"xx\nyy\nzz\"\n2,c\n", 2, true, "1,", []string{"2,c"}, []int64{1}},
		{"doubled quotes stay inside", "a,b\n1,\"x\"\"\n\"\"y\nz\"\n2,c\n", 2, true, "1,", []string{"2,c"}, []int64{1}},
		// A quote inside an unquoted field opens nothing.
		{"bare quote", "a,b\n1,x\"y\n2,z\n3,w\n4,v\n", 2, true, "1,", []string{"3,w"}, []int64{2}},
		{"CRLF", "a,b\r\n1,x\r\n2,y\r\n3,z\r\n", 2, true, "1,", []string{"3,z"}, []int64{2}},
		// Size 27, target 13: the header's first field is quoted after a
		// byte order mark, and holds line ends.
		{"quoted header after a BOM", "\xEF\xBB\xBF\"a\nb\nc\nd\ne\nf\ng\nh\",e\n1,2\n", 2, true, "1,2", nil, nil},
		{"no header, a BOM", "\xEF\xBB\xBF1,2\n3,4\n5,6\n7,8\n", 2, false, "1,2", []string{"5,6"}, []int64{2}},
		// DuckDB takes an empty first line for the header; empty lines
		// are no records.
		{"empty header line", "\n1,2\n\n\n3,4\n5,6\n", 2, true, "1,2", []string{"5,6"}, []int64{2}},
		{"no line end after the target", "a,b\n1,\"a long\nvalue\"", 2, true, "1,", nil, nil},
		{"last record has no line end", "a,b\n1,2\n3,4", 2, true, "1,2", []string{"3,4"}, []int64{1}},
		{"three parts", "h\n111\n222\n333\n444\n555\n", 3, true, "111", []string{"333", "555"}, []int64{2, 2}},
		{"one part", "a,b\n1,2\n", 1, true, "1,2", nil, nil},
		{"one part after a quoted header", "\"a\nb\",c\n1,2\n", 1, true, "1,2", nil, nil},
		{"one part, no header", "\xEF\xBB\xBF1,2\n", 1, false, "1,2", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := CutCSV(context.Background(), strings.NewReader(c.in), int64(len(c.in)), c.parts, ',', '"', c.header)
			if err != nil {
				t.Fatal(err)
			}
			var want []int64
			for _, w := range c.want {
				want = append(want, int64(strings.Index(c.in, w)))
			}
			if !slices.Equal(got.Cuts, want) || !slices.Equal(got.Records, c.records) {
				t.Errorf("cuts %v, records %v; want %v, %v", got.Cuts, got.Records, want, c.records)
			}
			if body := int64(strings.Index(c.in, c.body)); got.Body != body {
				t.Errorf("body at %d, want %d", got.Body, body)
			}
		})
	}
}

// TestCutCSVHeaderOnly: a header without a line end leaves no body.
func TestCutCSVHeaderOnly(t *testing.T) {
	for _, parts := range []int{1, 2} {
		in := "a,\"b\nc\""
		got, err := CutCSV(context.Background(), strings.NewReader(in), int64(len(in)), parts, ',', '"', true)
		if err != nil || got.Body != int64(len(in)) || len(got.Cuts) != 0 {
			t.Errorf("%d parts: %+v, %v; want the body at %d, no cut", parts, got, err, len(in))
		}
	}
}

// TestCutCSVLoneCR: a carriage return that ends no line is refused where
// the cut reads, and where NumberTypedCSV reads.
func TestCutCSVLoneCR(t *testing.T) {
	for _, in := range []string{
		"a,b\n1,x\ry\n2,z\n3,w\n",
		"a,b\n\r1,x\n2,z\n3,w\n",
		"a,b\n1,\"x\ry\"\n2,z\n3,w\n",
	} {
		cut, err := CutCSV(context.Background(), strings.NewReader(in), int64(len(in)), 2, ',', '"', true)
		if !errors.Is(err, ErrNotNumbered) || cut.Body != 4 {
			t.Errorf("%q: cut: body at %d, %v; want 4, ErrNotNumbered", in, cut.Body, err)
		}
		_, err = NumberTypedCSV(context.Background(), strings.NewReader(in[4:]), io.Discard, ',', '"', 0, []Column{{Name: "a"}, {Name: "b"}})
		if !errors.Is(err, ErrNotNumbered) {
			t.Errorf("%q: typed number: %v, want ErrNotNumbered", in, err)
		}
	}
	// One at the very end, after a record's last field.
	if _, err := NumberTypedCSV(context.Background(), strings.NewReader("1,2\n3,4\r"), io.Discard, ',', '"', 0, []Column{{Name: "a"}, {Name: "b"}}); !errors.Is(err, ErrNotNumbered) {
		t.Errorf("a trailing lone CR: %v, want ErrNotNumbered", err)
	}
}

// TestCutAndNumberRandom: on generated files of several MiB (so that quoted
// fields and CRLF line ends straddle the 1 MiB reads), every cut is a
// line start after its target (a record's or an empty line's),
// each part's records are counted, and numbering the parts on their own,
// each from the records before it, gives every record its position.
func TestCutAndNumberRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	textCols := []Column{{Name: "id"}, {Name: "text"}, {Name: "n"}} // copied as they are
	for round := 0; round < 12; round++ {
		var in, want bytes.Buffer
		var starts []int64 // the records'
		var lines []int64  // the records' and the empty lines'
		eol := "\n"
		if round%3 == 1 {
			eol = "\r\n"
		}
		in.WriteString("id,text,n" + eol)
		body := int64(in.Len())
		for in.Len() < 3<<20 {
			if rng.IntN(50) == 0 {
				lines = append(lines, int64(in.Len()))
				in.WriteString(eol) // an empty line
				want.WriteString(eol)
			}
			starts = append(starts, int64(in.Len()))
			lines = append(lines, int64(in.Len()))
			text := fmt.Sprintf("plain%d", rng.IntN(1000))
			kind := rng.IntN(6)
			if round%4 == 3 {
				kind = 5 // plain records only, but for empty lines
			}
			switch kind {
			case 0:
				text = `"` + strings.Repeat("q\n\"\",", rng.IntN(2000)) + `"`
			case 1:
				text = `"a,b` + strings.Repeat("\r\n", rng.IntN(3)) + `"`
			case 2:
				text = `x"y` // a bare quote
			}
			rec := fmt.Sprintf("%d,%s,%d%s", len(starts), text, rng.IntN(100), eol)
			in.WriteString(rec)
			fmt.Fprintf(&want, "%d,%s", len(starts), rec)
		}
		parts := 2 + rng.IntN(7)
		size := int64(in.Len())
		p, err := CutCSV(context.Background(), bytes.NewReader(in.Bytes()), size, parts, ',', '"', true)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Cuts) != parts-1 || len(p.Records) != parts-1 || p.Body != body {
			t.Fatalf("round %d: %d cuts, %d counts for %d parts, body at %d (want %d)", round, len(p.Cuts), len(p.Records), parts, p.Body, body)
		}
		bounds := append(append([]int64{p.Body}, p.Cuts...), size)
		var got bytes.Buffer
		before := int64(0)
		for k := 0; k+1 < len(bounds); k++ {
			from, to := bounds[k], bounds[k+1]
			if k > 0 {
				target := size * int64(k) / int64(parts)
				i, ok := slices.BinarySearch(lines, from)
				if !ok || from <= target || (i > 0 && lines[i-1] > target) {
					t.Fatalf("round %d: cut %d at %d is not the first line start after %d", round, k, from, target)
				}
			}
			done, err := NumberTypedCSV(context.Background(), bytes.NewReader(in.Bytes()[from:to]), &got, ',', '"', before, textCols)
			if err != nil {
				t.Fatal(err)
			}
			n := done.Records
			if k < len(p.Records) && n != p.Records[k] {
				t.Fatalf("round %d: part %d numbered %d records, counted %d", round, k+1, n, p.Records[k])
			}
			before += n
		}
		if before != int64(len(starts)) || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("round %d: %d records numbered of %d; the numbered copy differs from the expected one: %t", round, before, len(starts), !bytes.Equal(got.Bytes(), want.Bytes()))
		}
	}
}
