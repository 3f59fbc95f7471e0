package fileformat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/contract"
)

func readJSONL(t *testing.T, text string, opts Options) ([]Column, [][]any, error) {
	t.Helper()
	rows, err := OpenJSONL(strings.NewReader(text), "data.jsonl", opts)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v := rows.Values()
		if len(v) != len(rows.Columns()) {
			t.Fatalf("row %d: %d values for %d columns", len(out)+1, len(v), len(rows.Columns()))
		}
		out = append(out, append([]any(nil), v...))
	}
	return rows.Columns(), out, rows.Err()
}

func mustJSONL(t *testing.T, text string, opts Options) ([]Column, [][]any) {
	t.Helper()
	cols, rows, err := readJSONL(t, text, opts)
	if err != nil {
		t.Fatal(err)
	}
	return cols, rows
}

func jraw(s string) json.RawMessage { return json.RawMessage(s) }

func checkJSONL(t *testing.T, gotCols []Column, gotRows [][]any, wantCols []Column, wantRows [][]any) {
	t.Helper()
	if !reflect.DeepEqual(gotCols, wantCols) {
		t.Fatalf("columns:\n got %v\nwant %v", gotCols, wantCols)
	}
	if len(gotRows) != len(wantRows) {
		t.Fatalf("%d rows, want %d: %v", len(gotRows), len(wantRows), gotRows)
	}
	for i := range wantRows {
		if !reflect.DeepEqual(gotRows[i], wantRows[i]) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i+1, gotRows[i], wantRows[i])
		}
	}
}

func TestJSONLInference(t *testing.T) {
	text := `{"b":true,"i":1,"f":1.5,"s":"x","o":{"k":[1, 2]},"a":[1,"two"],"n":null,"big":12345678901234567890,"huge":123456789012345678901234567890123456789,"e":1e3,"neg":-0}
{"b":false,"i":-9223372036854775808,"f":-2,"s":"y\"\u00e9\ud83d\ude00","o":{},"a":[],"n":null,"big":-98765432109876543210,"huge":1,"e":2,"neg":5}
`
	cols, rows := mustJSONL(t, text, Options{})
	checkJSONL(t, cols, rows, []Column{
		{Name: "b", Type: contract.Boolean},
		{Name: "i", Type: contract.Long},
		{Name: "f", Type: contract.Double},
		{Name: "s", Type: contract.String},
		{Name: "o", Type: contract.JSON},
		{Name: "a", Type: contract.JSON},
		{Name: "n", Type: contract.Unspecified},
		{Name: "big", Type: contract.Decimal, Precision: 38},
		{Name: "huge", Type: contract.Double},
		{Name: "e", Type: contract.Double},
		{Name: "neg", Type: contract.Long},
	}, [][]any{
		{true, int64(1), 1.5, "x", jraw(`{"k":[1, 2]}`), jraw(`[1,"two"]`), nil, contract.DecimalText("12345678901234567890"), 1.2345678901234568e38, 1000.0, int64(0)},
		{false, int64(-9223372036854775808), -2.0, "y\"é😀", jraw(`{}`), jraw(`[]`), nil, contract.DecimalText("-98765432109876543210"), 1.0, 2.0, int64(5)},
	})
}

func TestJSONLWidening(t *testing.T) {
	// Within the sample: mixed columns widen.
	text := `{"ld":1,"ls":1,"lc":1,"bs":true,"js":{"a":1},"jl":[1],"nd":null}
{"ld":2.5,"ls":"x","lc":99999999999999999999,"bs":1,"js":"s","jl":2,"nd":3.5}
`
	cols, rows := mustJSONL(t, text, Options{})
	checkJSONL(t, cols, rows, []Column{
		{Name: "ld", Type: contract.Double},
		{Name: "ls", Type: contract.String},
		{Name: "lc", Type: contract.Decimal, Precision: 38},
		{Name: "bs", Type: contract.String},
		{Name: "js", Type: contract.String},
		{Name: "jl", Type: contract.String},
		{Name: "nd", Type: contract.Double},
	}, [][]any{
		{1.0, "1", contract.DecimalText("1"), "true", `{"a":1}`, "[1]", nil},
		{2.5, "x", contract.DecimalText("99999999999999999999"), "1", "s", "2", 3.5},
	})

	// After the sample: a value that does not fit is returned as is and
	// widens its column; later values follow the widened type.
	rows2, err := OpenJSONL(strings.NewReader(`{"a":1,"b":"s","c":null,"d":true}
{"a":2.5,"b":7,"c":{"x":1},"d":false}
{"a":3,"b":8,"c":[2],"d":"no"}
{"a":4,"b":"t","c":5,"d":true}
`), "data.jsonl", Options{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		vals  []any
		types []contract.Type
	}
	want := []step{
		{[]any{int64(1), "s", nil, true}, []contract.Type{contract.Long, contract.String, contract.Unspecified, contract.Boolean}},
		{[]any{2.5, "7", jraw(`{"x":1}`), false}, []contract.Type{contract.Double, contract.String, contract.JSON, contract.Boolean}},
		{[]any{3.0, "8", jraw(`[2]`), "no"}, []contract.Type{contract.Double, contract.String, contract.JSON, contract.String}},
		{[]any{4.0, "t", int64(5), "true"}, []contract.Type{contract.Double, contract.String, contract.String, contract.String}},
	}
	for i, w := range want {
		if !rows2.Next() {
			t.Fatalf("row %d missing: %v", i+1, rows2.Err())
		}
		if !reflect.DeepEqual(rows2.Values(), w.vals) {
			t.Fatalf("row %d: got %#v, want %#v", i+1, rows2.Values(), w.vals)
		}
		var types []contract.Type
		for _, c := range rows2.Columns() {
			types = append(types, c.Type)
		}
		if !reflect.DeepEqual(types, w.types) {
			t.Fatalf("row %d: types %v, want %v", i+1, types, w.types)
		}
	}
	if rows2.Next() || rows2.Err() != nil {
		t.Fatalf("extra row or error: %v", rows2.Err())
	}
}

func TestJSONLLateColumn(t *testing.T) {
	text := `{"a":1}
{"a":2}
{"a":3,"z":"late","y":null}
{"y":4,"a":5}
`
	rows, err := OpenJSONL(strings.NewReader(text), "data.jsonl", Options{SampleRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	var widths []int
	var got [][]any
	for rows.Next() {
		widths = append(widths, len(rows.Columns()))
		got = append(got, append([]any(nil), rows.Values()...))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if !reflect.DeepEqual(widths, []int{1, 1, 3, 3}) {
		t.Fatalf("column counts %v", widths)
	}
	checkJSONL(t, rows.Columns(), got, []Column{
		{Name: "a", Type: contract.Long},
		{Name: "z", Type: contract.String},
		{Name: "y", Type: contract.Long},
	}, [][]any{
		{int64(1)}, {int64(2)}, {int64(3), "late", nil}, {int64(5), nil, int64(4)},
	})
}

func TestJSONLLinesAndBOM(t *testing.T) {
	text := "\ufeff{\"a\": 1 , \"b\" : \"x\"}\r\n\r\n   \n\t\n{\"b\":\"y\",\"a\":2}\n\n{\"a\":3,\"a\":4}" // no final newline; a repeated key: the last wins
	cols, rows := mustJSONL(t, text, Options{})
	checkJSONL(t, cols, rows, []Column{{Name: "a", Type: contract.Long}, {Name: "b", Type: contract.String}},
		[][]any{{int64(1), "x"}, {int64(2), "y"}, {int64(4), nil}})

	// An empty file, and one of blank lines: no columns, no rows.
	for _, text := range []string{"", "\n\n  \n", "\ufeff"} {
		cols, rows := mustJSONL(t, text, Options{})
		if len(cols) != 0 || len(rows) != 0 {
			t.Fatalf("%q: columns %v, rows %v", text, cols, rows)
		}
	}

	// Escaped keys are decoded.
	cols, rows = mustJSONL(t, `{"a\"b":1,"\u00e9":2}`, Options{})
	checkJSONL(t, cols, rows, []Column{{Name: `a"b`, Type: contract.Long}, {Name: "é", Type: contract.Long}}, [][]any{{int64(1), int64(2)}})
}

func TestJSONLBadLines(t *testing.T) {
	for _, tc := range []struct {
		text string
		line string
		rows int // rows returned before the error
	}{
		{"[1,2]\n", "line 1,", 0},
		{"{\"a\":1}\n\n[1,2]\n", "line 3,", 1},
		{"{\"a\":1}\n{\"a\":2} x\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":01}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":\"x}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":[1,}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":tru}\n", "line 2,", 1},
		{"{\"a\":1}\n{a:1}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":\"\\q\"}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":\"tab\there\"}\n", "line 2,", 1},
		{"{\"a\":1}\n\"just a string\"\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":1,}\n", "line 2,", 1},
		{"{\"a\":1}\n{\"a\":" + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "}\n", "nested more than", 1},
	} {
		for _, sample := range []int{1, 1000} { // the bad line after the sample, or in it
			cols, rows, err := readJSONL(t, tc.text, Options{SampleRows: sample})
			if err == nil || !strings.Contains(err.Error(), "data.jsonl") || !strings.Contains(err.Error(), tc.line) {
				t.Fatalf("%q (sample %d): error %v, want one naming data.jsonl and %q", tc.text, sample, err, tc.line)
			}
			if len(rows) != tc.rows {
				t.Fatalf("%q (sample %d): %d rows before the error, want %d", tc.text, sample, len(rows), tc.rows)
			}
			if tc.rows > 0 && (len(cols) != 1 || rows[0][0] != int64(1)) {
				t.Fatalf("%q: columns %v rows %v", tc.text, cols, rows)
			}
		}
	}
}

// A line longer than the limit is an error, without holding more than the
// limit in memory.
func TestJSONLLongLine(t *testing.T) {
	r := io.MultiReader(strings.NewReader("{\"a\":1}\n{\"a\":\""), &jsonlRepeatReader{b: 'x', n: jsonlMaxLine + 1}, strings.NewReader("\"}\n"))
	rows, err := OpenJSONL(r, "data.jsonl", Options{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	if rows.Next() {
		t.Fatal("a line over the limit was read")
	}
	if err := rows.Err(); err == nil || !strings.Contains(err.Error(), "line 2 is longer than 64 MiB") {
		t.Fatalf("error %v", err)
	}
}

type jsonlRepeatReader struct {
	b     byte
	n     int
	chunk []byte
}

func (r *jsonlRepeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	if len(r.chunk) == 0 {
		r.chunk = []byte(strings.Repeat(string(r.b), 64<<10))
	}
	for i := 0; i < n; i += len(r.chunk) {
		copy(p[i:n], r.chunk)
	}
	r.n -= n
	return n, nil
}

type jsonlBrokenReader struct{ after string }

func (b *jsonlBrokenReader) Read(p []byte) (int, error) {
	if b.after == "" {
		return 0, errInjected
	}
	n := copy(p, b.after)
	b.after = b.after[n:]
	return n, nil
}

func TestJSONLReadError(t *testing.T) {
	_, err := OpenJSONL(&jsonlBrokenReader{}, "data.jsonl", Options{})
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "data.jsonl") {
		t.Fatalf("error %v", err)
	}
	_, rows, err := readJSONL(t, "", Options{})
	if err != nil || len(rows) != 0 {
		t.Fatal(err)
	}
	rr, err := OpenJSONL(&jsonlBrokenReader{after: "{\"a\":1}\n{\"a\":2}\n"}, "data.jsonl", Options{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rr.Next() {
		n++
	}
	if n != 2 || !errors.Is(rr.Err(), errInjected) || !strings.Contains(rr.Err().Error(), "line 3") {
		t.Fatalf("%d rows, error %v", n, rr.Err())
	}
}

// go test -run '^$' -bench BenchmarkJSONLRead -benchtime 3x ./fileformat
func BenchmarkJSONLRead(b *testing.B) {
	var sb strings.Builder
	const n = 200_000
	for i := range n {
		fmt.Fprintf(&sb, `{"id":%d,"name":"customer-%d","price":%d.%02d,"flag":%t,"tags":["a","b%d"],"when":"2024-01-02T03:04:05Z","note":null}`+"\n", i, i%5000, i%1000, i%100, i%2 == 0, i%7)
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows, err := OpenJSONL(strings.NewReader(text), "bench.jsonl", Options{})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for rows.Next() {
			got++
		}
		if rows.Err() != nil || got != n {
			b.Fatalf("%d rows, %v", got, rows.Err())
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
