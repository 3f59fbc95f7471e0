package fileformat_test

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/internal/contract"
)

// csvFile is an *os.File with the Size method fileformat.Source wants.
type csvFile struct {
	*os.File
	size int64
}

func (f csvFile) Size() int64 { return f.size }

// csvWrite writes content to a file named name in a fresh folder and
// returns its path.
func csvWrite(t testing.TB, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func csvGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// csvOpenPath opens a file from disk through Open, as sluice does.
func csvOpenPath(t testing.TB, p string, opts fileformat.Options) (fileformat.Rows, error) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fileformat.Open(filepath.Base(p), csvFile{f, st.Size()}, opts)
}

// csvAll reads every row, copying each, and returns the rows with Err.
func csvAll(rows fileformat.Rows) ([][]any, error) {
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return out, rows.Err()
}

// csvRead writes content to a .csv file, opens it with Open and reads it
// all; the test fails on any error.
func csvRead(t *testing.T, content string, opts fileformat.Options) ([]fileformat.Column, [][]any) {
	t.Helper()
	rows, err := csvOpenPath(t, csvWrite(t, "t.csv", []byte(content)), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer rows.Close()
	all, err := csvAll(rows)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return rows.Columns(), all
}

// csvReadErr is csvRead for input that must fail: at open or while reading.
func csvReadErr(t *testing.T, content string, opts fileformat.Options) error {
	t.Helper()
	rows, err := fileformat.OpenCSV(strings.NewReader(content), "bad.csv", opts)
	if err != nil {
		return err
	}
	_, err = csvAll(rows)
	if err == nil {
		t.Fatalf("no error for %q", content)
	}
	return err
}

func csvNames(cols []fileformat.Column) []string {
	var n []string
	for _, c := range cols {
		n = append(n, c.Name)
	}
	return n
}

func csvTypes(cols []fileformat.Column) []contract.Type {
	var n []contract.Type
	for _, c := range cols {
		n = append(n, c.Type)
	}
	return n
}

func csvWant(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

func csvErrHas(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

func TestCSVQuoting(t *testing.T) {
	content := "id,note,tag\n" +
		"1,\"has, comma\",a\n" +
		"2,\"say \"\"hi\"\"\",b\n" +
		"3,\"two\nlines\",c\n" +
		"4,\"crlf\r\ninside\",d\r\n" +
		"5,plain \"quote\" inside,e\n" +
		"6,\"\"\"\",f" // no final line end
	cols, rows := csvRead(t, content, fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"id", "note", "tag"})
	csvWant(t, csvTypes(cols), []contract.Type{contract.Long, contract.String, contract.String})
	csvWant(t, rows, [][]any{
		{int64(1), "has, comma", "a"},
		{int64(2), `say "hi"`, "b"},
		{int64(3), "two\nlines", "c"},
		{int64(4), "crlf\r\ninside", "d"},
		{int64(5), `plain "quote" inside`, "e"},
		{int64(6), `"`, "f"},
	})
}

func TestCSVLineEndsBOMAndBlankLines(t *testing.T) {
	want := [][]any{{"x", int64(1)}, {"y", int64(2)}}
	for name, content := range map[string]string{
		"LF":                  "name,n\nx,1\ny,2\n",
		"CRLF":                "name,n\r\nx,1\r\ny,2\r\n",
		"no final line end":   "name,n\nx,1\ny,2",
		"blank trailing":      "name,n\nx,1\ny,2\n\n",
		"blank CRLF trailing": "name,n\r\nx,1\r\ny,2\r\n\r\n",
		"BOM":                 "\xEF\xBB\xBFname,n\nx,1\ny,2\n",
		"blank inside":        "name,n\n\nx,1\n\ny,2\n",
	} {
		t.Run(name, func(t *testing.T) {
			cols, rows := csvRead(t, content, fileformat.Options{})
			csvWant(t, csvNames(cols), []string{"name", "n"})
			csvWant(t, rows, want)
		})
	}
}

func TestCSVEmptyIsNullQuotedEmptyIsEmptyString(t *testing.T) {
	cols, rows := csvRead(t, "s,n,d\n\"\",\"\",\"\"\n,,\na,1,2024-01-02\n", fileformat.Options{})
	csvWant(t, csvTypes(cols), []contract.Type{contract.String, contract.Long, contract.NaiveDate})
	csvWant(t, rows, [][]any{
		{"", nil, nil},
		{nil, nil, nil},
		{"a", int64(1), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
	})
}

func TestCSVRaggedRecordNamesTheLine(t *testing.T) {
	// The ragged record is on line 6: the quoted field of record 2 spans
	// lines 3 to 5.
	content := "a,b\n1,x\n2,\"multi\nline\r\nfield\"\n3,y,extra\n4,z\n"
	err := csvReadErr(t, content, fileformat.Options{})
	csvErrHas(t, err, "bad.csv", "line 6", "3 fields", "has 2")

	// The same after the sample, found while streaming.
	err = csvReadErr(t, content, fileformat.Options{SampleRows: 1})
	csvErrHas(t, err, "bad.csv", "line 6", "3 fields", "has 2")

	err = csvReadErr(t, "a,b,c\n1,2,3\n4,5\n", fileformat.Options{SampleRows: 1})
	csvErrHas(t, err, "line 3", "2 fields", "has 3")
}

func TestCSVUnterminatedQuote(t *testing.T) {
	err := csvReadErr(t, "a,b\n1,x\n2,\"never\nclosed\n3,y\n", fileformat.Options{})
	csvErrHas(t, err, "bad.csv", "line 3", "never closed")
	// After the sample too, and with a multi-line field before it.
	err = csvReadErr(t, "a,b\n1,\"x\ny\"\n2,z\n3,\"open\n", fileformat.Options{SampleRows: 1})
	csvErrHas(t, err, "line 5", "never closed")
}

func TestCSVTextAfterClosingQuote(t *testing.T) {
	err := csvReadErr(t, "a,b\n1,\"x\"y\n", fileformat.Options{})
	csvErrHas(t, err, "line 2, column 6", `'y'`, "closing quote")
}

func TestCSVRecordLimit(t *testing.T) {
	big := strings.Repeat("x", 700<<10) // over the 256 KiB buffer
	cols, rows := csvRead(t, "a,b\n1,"+big+"\n2,\""+big+"\n"+big+"\"\n", fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"a", "b"})
	if len(rows) != 2 || rows[0][1] != big || rows[1][1] != big+"\n"+big {
		t.Fatalf("long records not read back whole")
	}
	// A quote never closed stops at the bound, not at the end of memory.
	err := csvReadErr(t, "a,b\n1,\""+big+big, fileformat.Options{CSV: fileformat.CSVOptions{MaxRecordBytes: 512 << 10}})
	csvErrHas(t, err, "line 2", "longer than 524288 bytes", "MaxRecordBytes")
}

func TestCSVInvalidUTF8(t *testing.T) {
	err := csvReadErr(t, "name,n\nok,1\ncaf\xe9,2\n", fileformat.Options{})
	csvErrHas(t, err, "bad.csv", "line 3", `column "name"`, "0xe9", "UTF-8", "iconv")
}

func TestCSVNoHeaderDetected(t *testing.T) {
	cols, rows := csvRead(t, "1,2.5,true\n2,3.5,false\n", fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"column0", "column1", "column2"})
	csvWant(t, csvTypes(cols), []contract.Type{contract.Long, contract.Decimal, contract.Boolean})
	csvWant(t, rows, [][]any{{int64(1), contract.DecimalText("2.5"), true}, {int64(2), contract.DecimalText("3.5"), false}})

	// The first row is a header when one value does not fit its column.
	cols, rows = csvRead(t, "1,when\n2,2024-01-01\n3,2024-01-02\n", fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"_1", "when"})
	if len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}

	// Only text: the first row is taken as the header.
	cols, rows = csvRead(t, "a,b\nc,d\n", fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"a", "b"})
	csvWant(t, rows, [][]any{{"c", "d"}})

	// Told there is no header.
	no := false
	cols, rows = csvRead(t, "a,b\nc,d\n", fileformat.Options{CSV: fileformat.CSVOptions{Header: &no}})
	csvWant(t, csvNames(cols), []string{"column0", "column1"})
	csvWant(t, rows, [][]any{{"a", "b"}, {"c", "d"}})

	// Told there is one, over numbers.
	yes := true
	cols, rows = csvRead(t, "1,2\n3,4\n", fileformat.Options{CSV: fileformat.CSVOptions{Header: &yes}})
	csvWant(t, csvNames(cols), []string{"_1", "_2"})
	csvWant(t, rows, [][]any{{int64(3), int64(4)}})
}

func TestCSVDelimiters(t *testing.T) {
	for _, d := range []string{",", ";", "\t", "|"} {
		t.Run(fmt.Sprintf("%q", d), func(t *testing.T) {
			// Each file also holds the other delimiters inside values,
			// where they must not split.
			j := func(f ...string) string { return strings.Join(f, d) + "\n" }
			other := strings.ReplaceAll(",;|", d, "")
			content := j("id", "text", "amount") + j("1", other, "2.5") + j("2", "\"x"+d+"y\"", "3.25")
			if d != "\t" {
				content += j("3", "tab\there", "4")
			}
			rows, err := fileformat.OpenCSV(strings.NewReader(content), "d.csv", fileformat.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := rows.(*fileformat.CSVRows).Info().Delimiter; got != d[0] {
				t.Fatalf("sniffed %q, want %q", got, d)
			}
			all, err := csvAll(rows)
			if err != nil {
				t.Fatal(err)
			}
			csvWant(t, csvNames(rows.Columns()), []string{"id", "text", "amount"})
			csvWant(t, all[0][1], other)
			csvWant(t, all[1][1], "x"+d+"y")
		})
	}
	// The delimiter that splits every record alike wins over one that
	// splits the header alike.
	rows, err := fileformat.OpenCSV(strings.NewReader("a;b,c\nx;1\ny;2,5\n"), "d.csv", fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, rows.(*fileformat.CSVRows).Info().Delimiter, byte(';'))
	all, err := csvAll(rows)
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, csvNames(rows.Columns()), []string{"a", "b_c"})
	csvWant(t, all, [][]any{{"x", "1"}, {"y", "2,5"}})
	// One column: nothing splits.
	_, all = csvRead(t, "word\nhello\nworld\n", fileformat.Options{})
	csvWant(t, all, [][]any{{"hello"}, {"world"}})
}

func TestCSVTypeSniffing(t *testing.T) {
	content := "b,l,dec,dbl,d,dt,utc,s,code,big,mixed\n" +
		"true,1,12.50,1.5,2024-02-29,2024-02-29 13:45:01,2024-02-29T13:45:01Z,x,007,12345678901234567890,2024-01-01\n" +
		"FALSE,-42,-3.00,2e3,1999-12-31,2024-03-01T00:00:00.123456,2024-03-01 01:00:00+02:00,y,010,1,2024-01-01 10:00\n" +
		" True ,  7 ,0.10,.5,2000-01-01,2000-01-01,2000-01-01T00:00:00-0130,3,9,2,2024-01-01T10:00:00\n"
	cols, rows := csvRead(t, content, fileformat.Options{})
	csvWant(t, csvTypes(cols), []contract.Type{
		contract.Boolean, contract.Long, contract.Decimal, contract.Double, contract.NaiveDate,
		contract.NaiveDateTime, contract.UTCDateTime, contract.String, contract.String, contract.Decimal, contract.NaiveDateTime,
	})
	csvWant(t, cols[2], fileformat.Column{Name: "dec", Type: contract.Decimal, Precision: 38, Scale: 2})
	csvWant(t, cols[9], fileformat.Column{Name: "big", Type: contract.Decimal, Precision: 38, Scale: 0})
	d := func(y, m, d, hh, mm, ss, ns int) time.Time {
		return time.Date(y, time.Month(m), d, hh, mm, ss, ns, time.UTC)
	}
	csvWant(t, rows, [][]any{
		{true, int64(1), contract.DecimalText("12.50"), 1.5, d(2024, 2, 29, 0, 0, 0, 0), d(2024, 2, 29, 13, 45, 1, 0), d(2024, 2, 29, 13, 45, 1, 0), "x", "007", contract.DecimalText("12345678901234567890"), d(2024, 1, 1, 0, 0, 0, 0)},
		{false, int64(-42), contract.DecimalText("-3.00"), 2000.0, d(1999, 12, 31, 0, 0, 0, 0), d(2024, 3, 1, 0, 0, 0, 123456000), d(2024, 2, 29, 23, 0, 0, 0), "y", "010", contract.DecimalText("1"), d(2024, 1, 1, 10, 0, 0, 0)},
		{true, int64(7), contract.DecimalText("0.10"), 0.5, d(2000, 1, 1, 0, 0, 0, 0), d(2000, 1, 1, 0, 0, 0, 0), d(2000, 1, 1, 1, 30, 0, 0), "3", "9", contract.DecimalText("2"), d(2024, 1, 1, 10, 0, 0, 0)},
	})

	// Decimals with differing scales are DOUBLE; DecimalAsDouble makes
	// fixed-point DOUBLE too.
	cols, _ = csvRead(t, "a,b\n1.5,1.50\n2.25,2.00\n", fileformat.Options{})
	csvWant(t, csvTypes(cols), []contract.Type{contract.Double, contract.Decimal})
	cols, rows = csvRead(t, "a,b\n1.5,1.50\n2.25,2.00\n", fileformat.Options{CSV: fileformat.CSVOptions{DecimalAsDouble: true}})
	csvWant(t, csvTypes(cols), []contract.Type{contract.Double, contract.Double})
	csvWant(t, rows[0], []any{1.5, 1.5})

	// Values that are not what they look like stay text.
	for _, v := range []string{"2024-02-30", "2023-02-29", "2024-13-01", "24:00:00", "1,5", "nan", "inf", "0x10", "1_000", "yes", "2024-01-01 10:00:00 UTC", "2024-01-01T25:00:00"} {
		cols, rows := csvRead(t, "v,w\n"+`"`+v+`",a`+"\n", fileformat.Options{})
		if cols[0].Type != contract.String || rows[0][0] != v {
			t.Errorf("%q read as %s %#v, want STRING", v, cols[0].Type, rows[0][0])
		}
	}
	// An all-NULL column is STRING.
	cols, _ = csvRead(t, "a,b\n,1\n,2\n", fileformat.Options{})
	csvWant(t, csvTypes(cols), []contract.Type{contract.String, contract.Long})
}

func TestCSVValueBreakingTheSniffedType(t *testing.T) {
	content := "id,amount,n\n1,1.50,5\n2,2.00,6\n3,n/a,7\n4,1.255,\n5,3,x\n"
	rows, err := fileformat.OpenCSV(strings.NewReader(content), "t.csv", fileformat.Options{SampleRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	before := rows.Columns()
	csvWant(t, csvTypes(before), []contract.Type{contract.Long, contract.Decimal, contract.Long})
	all, err := csvAll(rows)
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, all, [][]any{
		{int64(1), contract.DecimalText("1.50"), int64(5)},
		{int64(2), contract.DecimalText("2.00"), int64(6)},
		{int64(3), "n/a", int64(7)},
		{int64(4), "1.255", nil},
		{int64(5), "3", "x"},
	})
	csvWant(t, csvTypes(rows.Columns()), []contract.Type{contract.Long, contract.String, contract.String})
	// The slice returned before the change still tells the old types.
	csvWant(t, csvTypes(before), []contract.Type{contract.Long, contract.Decimal, contract.Long})

	// More decimals than the sample had widen the scale, not the type.
	rows, err = fileformat.OpenCSV(strings.NewReader("p\n1.50\n2.125\n"), "t.csv", fileformat.Options{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	all, err = csvAll(rows)
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, all, [][]any{{contract.DecimalText("1.50")}, {contract.DecimalText("2.125")}})
	csvWant(t, rows.Columns(), []fileformat.Column{{Name: "p", Type: contract.Decimal, Precision: 38, Scale: 3}})
}

func TestCSVSampleSmallerThanFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,name,score,day\r\n")
	const n = 5000
	for i := range n {
		fmt.Fprintf(&b, "%d,\"name %d\nline two\",%d.5,2024-01-%02d\r\n", i, i, i, i%28+1)
	}
	rows, err := csvOpenPath(t, csvWrite(t, "big.csv", []byte(b.String())), fileformat.Options{SampleRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		v := rows.Values()
		want := []any{int64(i), fmt.Sprintf("name %d\nline two", i), contract.DecimalText(fmt.Sprintf("%d.5", i)), time.Date(2024, 1, i%28+1, 0, 0, 0, 0, time.UTC)}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("row %d: got %#v want %#v", i, v, want)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("read %d rows, want %d", i, n)
	}
	csvWant(t, csvTypes(rows.Columns()), []contract.Type{contract.Long, contract.String, contract.Decimal, contract.NaiveDate})
}

func TestCSVHeaderOnlyAndEmpty(t *testing.T) {
	cols, rows := csvRead(t, "id,name\n", fileformat.Options{})
	csvWant(t, csvNames(cols), []string{"id", "name"})
	csvWant(t, csvTypes(cols), []contract.Type{contract.String, contract.String})
	if len(rows) != 0 {
		t.Fatalf("rows %v", rows)
	}
	for _, content := range []string{"", "\xEF\xBB\xBF", "\n\n", "\r\n"} {
		cols, rows := csvRead(t, content, fileformat.Options{})
		if len(cols) != 0 || len(rows) != 0 {
			t.Fatalf("%q: columns %v rows %v, want none", content, cols, rows)
		}
	}
}

func TestCSVHeaderNamesCleaned(t *testing.T) {
	rows, err := fileformat.OpenCSV(strings.NewReader("id,,Name,name,unit price (€)\n1,2,a,b,3\n"), "t.csv", fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, csvNames(rows.Columns()), []string{"id", "column_2", "Name", "name_1", "unit_price"})
	info := rows.(*fileformat.CSVRows).Info()
	csvWant(t, info.Names, []string{"id", "", "Name", "name", "unit price (€)"})
	csvWant(t, info.Renamed, map[string]string{"": "column_2", "name": "name_1", "unit price (€)": "unit_price"})
	csvWant(t, info.Header, true)
}

func TestCSVOneColumnBlankLinesAreNull(t *testing.T) {
	_, rows := csvRead(t, "v\na\n\nb\n\n\nc\n\n\n", fileformat.Options{})
	csvWant(t, rows, [][]any{{"a"}, {nil}, {"b"}, {nil}, {nil}, {"c"}})
	// The same when the blank lines come after the sample.
	rows2, err := fileformat.OpenCSV(strings.NewReader("v\na\n\nb\n\n\nc\n\n\n"), "t.csv", fileformat.Options{SampleRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	all, err := csvAll(rows2)
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, all, rows)
}

func TestCSVGzip(t *testing.T) {
	content := "id,name\n1,\"a\nb\"\n2,c\n"
	p := csvWrite(t, "t.csv.gz", csvGzip(t, []byte(content)))
	rows, err := csvOpenPath(t, p, fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := csvAll(rows)
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, all, [][]any{{int64(1), "a\nb"}, {int64(2), "c"}})

	// A gzip stream cut short is an error while reading, naming gzip.
	var b strings.Builder
	b.WriteString("id,name\n")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40000 {
		fmt.Fprintf(&b, "%d,%x\n", i, r.Uint64())
	}
	z := csvGzip(t, []byte(b.String()))
	// The cut falls past the first 256 KiB of text, which OpenCSV reads
	// before returning: the error comes from Next.
	p = csvWrite(t, "cut.csv.gz", z[:len(z)*3/4])
	rows, err = csvOpenPath(t, p, fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = csvAll(rows)
	csvErrHas(t, err, "cut.csv.gz", "gzip stream is damaged or cut short")
	// Cut early, it fails in Open.
	p = csvWrite(t, "early.csv.gz", z[:100])
	_, err = csvOpenPath(t, p, fileformat.Options{})
	csvErrHas(t, err, "early.csv.gz", "gzip stream is damaged or cut short")
}

// csvRandom builds a CSV of text columns full of quotes, delimiters and
// line ends, with LF and CRLF records.
func csvRandom(r *rand.Rand, size, cols int) string {
	pieces := []string{"a", "bc", ",", `"`, "\n", "\r\n", " ", "é", "x;y", ""}
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			if i == 0 {
				fmt.Fprintf(&b, "c%d", c)
				continue
			}
			var v strings.Builder
			v.WriteString("v") // never empty, never a number
			for range r.IntN(5) {
				v.WriteString(pieces[r.IntN(len(pieces))])
			}
			s := v.String()
			if strings.ContainsAny(s, ",\"\r\n") || r.IntN(3) == 0 {
				s = `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
			b.WriteString(s)
		}
		if r.IntN(2) == 0 {
			b.WriteString("\r\n")
		} else {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// csvChunks returns reads of 1 to 97 bytes, so that records and quotes
// straddle every kind of buffer boundary.
type csvChunks struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c csvChunks) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rnd.IntN(97))])
}

// TestCSVAgainstEncodingCSV reads random quoted text with OpenCSV, whole and
// in small reads (records straddle buffer refills once the first 256 KiB
// are read), and checks it against the standard library's reader.
func TestCSVAgainstEncodingCSV(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for round := range 6 {
		content := csvRandom(r, 600<<10, 1+round%4)
		std := csv.NewReader(strings.NewReader(content))
		want, err := std.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, small := range []bool{false, true} {
			var in io.Reader = strings.NewReader(content)
			if small {
				in = csvChunks{in, rand.New(rand.NewPCG(uint64(round), 9))}
			}
			rows, err := fileformat.OpenCSV(in, "r.csv", fileformat.Options{SampleRows: 50, CSV: fileformat.CSVOptions{Delimiter: ','}})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			got := [][]string{csvNames(rows.Columns())}
			for rows.Next() {
				var rec []string
				for _, v := range rows.Values() {
					rec = append(rec, v.(string))
				}
				got = append(got, rec)
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			// encoding/csv turns \r\n inside quoted fields into \n.
			for _, rec := range got {
				for i := range rec {
					rec[i] = strings.ReplaceAll(rec[i], "\r\n", "\n")
				}
			}
			if len(got) != len(want) {
				t.Fatalf("round %d (small reads: %v): %d records, encoding/csv has %d", round, small, len(got), len(want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("round %d (small reads: %v): record %d is %q, encoding/csv has %q", round, small, i, got[i], want[i])
				}
			}
		}
	}
}

func TestCSVReadError(t *testing.T) {
	boom := fmt.Errorf("disk on fire")
	in := io.MultiReader(strings.NewReader("a,b\n1,2\n"), iotest.ErrReader(boom))
	_, err := fileformat.OpenCSV(in, "f.csv", fileformat.Options{})
	csvErrHas(t, err, "f.csv", "disk on fire")

	// After the sample.
	var b strings.Builder
	b.WriteString("a,b\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "%d,%d\n", i, i)
	}
	in = io.MultiReader(strings.NewReader(b.String()), iotest.ErrReader(boom))
	rows, err := fileformat.OpenCSV(in, "f.csv", fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := csvAll(rows)
	csvErrHas(t, err, "f.csv", "disk on fire")
	if len(all) == 0 {
		t.Fatal("no rows before the error")
	}
}

func TestCSVCarriageReturnLineEnds(t *testing.T) {
	_, err := fileformat.OpenCSV(strings.NewReader("a,b\r1,2\r3,4\r"), "mac.csv", fileformat.Options{})
	csvErrHas(t, err, "mac.csv", "carriage return alone")
	// One line ending in a lone CR is just a line.
	_, rows := csvRead(t, "a,b\r", fileformat.Options{})
	csvWant(t, len(rows), 0)
}

func TestCSVBadOptions(t *testing.T) {
	_, err := fileformat.OpenCSV(strings.NewReader("a\n"), "f.csv", fileformat.Options{CSV: fileformat.CSVOptions{Delimiter: '"'}})
	csvErrHas(t, err, "f.csv", "delimiter")
}

// BenchmarkCSVRead reads a 6-column file of numbers and text.
func BenchmarkCSVRead(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("id,name,amount,ratio,day,flag\n")
	r := rand.New(rand.NewPCG(1, 1))
	const n = 200000
	for i := range n {
		fmt.Fprintf(&buf, "%d,user_%d,%d.%02d,%g,2024-%02d-%02d,%v\n", i, r.IntN(100000), r.IntN(10000), r.IntN(100), r.Float64(), r.IntN(12)+1, r.IntN(28)+1, r.IntN(2) == 0)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu := csvCPUTime()
	for range b.N {
		rows, err := fileformat.OpenCSV(bytes.NewReader(data), "bench.csv", fileformat.Options{})
		if err != nil {
			b.Fatal(err)
		}
		k := 0
		for rows.Next() {
			k++
		}
		if err := rows.Err(); err != nil || k != n {
			b.Fatalf("%d rows, %v", k, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if cpu := csvCPUTime() - cpu; cpu > 0 {
		// CPU time of every thread, the garbage collector's included.
		b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	}
}
