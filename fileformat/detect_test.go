package fileformat_test

import (
	"strings"
	"testing"

	"github.com/sluicedata/sluice/fileformat"
)

func TestDetect(t *testing.T) {
	par := []byte("PAR1\x15\x00\x15")
	gz := []byte{0x1f, 0x8b, 0x08, 0x00}
	for _, c := range []struct {
		name string
		head []byte
		f    fileformat.Format
		gz   bool
		err  []string // parts of the error, if one is expected
	}{
		{name: "a.csv", head: []byte("id,name\n1,x\n"), f: fileformat.CSV},
		{name: "dir/A.CSV", head: []byte("id\n"), f: fileformat.CSV},
		{name: "a.tsv", head: []byte("id\tname\n"), f: fileformat.CSV},
		{name: "a.csv", head: nil, f: fileformat.CSV},
		{name: "a.csv", head: []byte("\xEF\xBB\xBF{\"csv\": 1}\n"), f: fileformat.CSV},
		{name: "a.csv.gz", head: gz, f: fileformat.CSV, gz: true},
		{name: "a.tsv.gz", head: gz, f: fileformat.CSV, gz: true},
		{name: "a.parquet", head: par, f: fileformat.Parquet},
		{name: "a.jsonl", head: []byte("\xEF\xBB\xBF \n{\"a\":1}\n"), f: fileformat.JSONL},
		{name: "a.ndjson", head: []byte("{}"), f: fileformat.JSONL},
		{name: "a.jsonl", head: nil, f: fileformat.JSONL},
		{name: "a.jsonl.gz", head: gz, f: fileformat.JSONL, gz: true},
		{name: "a.ndjson.gz", head: gz, f: fileformat.JSONL, gz: true},

		{name: "a.csv", head: par, err: []string{"a.csv is named .csv but its content is Parquet (starts with PAR1); rename it to .parquet"}},
		{name: "a.csv", head: gz, err: []string{"a.csv is named .csv but its content is gzip-compressed (starts with 1f 8b); rename it to .csv.gz"}},
		{name: "a.csv", head: []byte("id\x00\x01"), err: []string{"binary (a NUL byte at offset 2)"}},
		{name: "a.csv", head: []byte("PK\x03\x04"), err: []string{"ZIP archive"}},
		{name: "a.csv", head: []byte("\xFF\xFEi\x00d\x00"), err: []string{"UTF-16", "iconv"}},
		{name: "a.parquet", head: []byte("id,name\n"), err: []string{"a.parquet is named .parquet but its content is text; rename it to .csv"}},
		{name: "a.parquet", head: []byte("{\"a\":1}\n"), err: []string{"is JSON (starts with {); rename it to .jsonl"}},
		{name: "a.parquet", head: gz, err: []string{"gzip-compressed"}},
		{name: "a.parquet", head: nil, err: []string{"is empty", "PAR1"}},
		{name: "a.jsonl", head: []byte("id,name\n"), err: []string{"does not start with a JSON object", "rename it to .csv"}},
		{name: "a.jsonl", head: []byte("[{\"a\":1}]"), err: []string{"JSON array", "jq"}},
		{name: "a.jsonl", head: par, err: []string{"rename it to .parquet"}},
		{name: "a.jsonl", head: gz, err: []string{"rename it to .jsonl.gz"}},
		{name: "a.csv.gz", head: []byte("id,name\n"), err: []string{"a.csv.gz is named .csv.gz but its content is text, not gzip-compressed; rename it to .csv"}},
		{name: "a.jsonl.gz", head: []byte("{}"), err: []string{"not gzip-compressed; rename it to .jsonl"}},
		{name: "a.csv.gz", head: par, err: []string{"rename it to .parquet"}},
		{name: "a.csv.gz", head: nil, err: []string{"is empty"}},
		{name: "a.parquet.gz", head: gz, err: []string{"gzipped Parquet", "gunzip"}},
		{name: "a.xlsx", head: []byte("PK"), err: []string{"a.xlsx: unknown file type", ".csv, .tsv, .parquet, .jsonl, .ndjson"}},
		{name: "a.json", head: []byte("{}"), err: []string{"unknown file type", "rename it to .jsonl"}},
		{name: "notes.txt", head: []byte("hello"), err: []string{"unknown file type"}},
		{name: ".csv", head: []byte("a"), err: []string{"unknown file type"}},
	} {
		f, gzipped, err := fileformat.Detect(c.name, c.head)
		if c.err != nil {
			if err == nil {
				t.Errorf("%s %q: no error, want %q", c.name, c.head, c.err)
				continue
			}
			for _, p := range c.err {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("%s %q: error %q does not contain %q", c.name, c.head, err, p)
				}
			}
			continue
		}
		if err != nil || f != c.f || gzipped != c.gz {
			t.Errorf("%s %q: got %q %v %v, want %q %v", c.name, c.head, f, gzipped, err, c.f, c.gz)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for name, want := range map[string]fileformat.Format{"x/y.csv": fileformat.CSV, "Y.NDJSON.GZ": fileformat.JSONL, "p.parquet": fileformat.Parquet, "r.txt": "", "p.parquet.gz": ""} {
		f, _, ok := fileformat.FormatOf(name)
		if f != want || ok != (want != "") {
			t.Errorf("%s: got %q %v, want %q", name, f, ok, want)
		}
	}
}

// TestOpenChecksContent opens real files whose names and contents
// disagree, also inside gzip.
func TestOpenChecksContent(t *testing.T) {
	parquetBytes := []byte("PAR1 not really, but Detect looks at the magic only")
	for _, c := range []struct {
		name    string
		content []byte
		err     []string
	}{
		{"data.csv", parquetBytes, []string{"data.csv is named .csv but its content is Parquet (starts with PAR1); rename it to .parquet"}},
		{"data.parquet", []byte("id,name\n1,x\n"), []string{"data.parquet is named .parquet but its content is text; rename it to .csv"}},
		{"data.csv", csvGzip(t, []byte("id\n1\n")), []string{"rename it to .csv.gz"}},
		{"data.csv.gz", []byte("id\n1\n"), []string{"not gzip-compressed; rename it to .csv"}},
		{"data.csv.gz", csvGzip(t, parquetBytes), []string{"holds a gzipped Parquet file"}},
		{"data.jsonl.gz", csvGzip(t, []byte("id,name\n")), []string{"does not start with a JSON object", "rename it to .csv.gz"}},
		{"data.csv.gz", csvGzip(t, []byte("a\x00b")), []string{"binary"}},
	} {
		_, err := csvOpenPath(t, csvWrite(t, c.name, c.content), fileformat.Options{})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, p := range c.err {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, p)
			}
		}
	}
}

func TestOpenTSVUsesTab(t *testing.T) {
	// Both , and tab split this file alike; the sniffer would prefer ",",
	// the .tsv name says tab.
	content := "a,b\tc\n1,2\t3\n"
	for _, name := range []string{"t.tsv", "t.tsv.gz"} {
		b := []byte(content)
		if strings.HasSuffix(name, ".gz") {
			b = csvGzip(t, b)
		}
		rows, err := csvOpenPath(t, csvWrite(t, name, b), fileformat.Options{})
		if err != nil {
			t.Fatal(err)
		}
		all, err := csvAll(rows)
		if err != nil {
			t.Fatal(err)
		}
		csvWant(t, csvNames(rows.Columns()), []string{"a_b", "c"})
		csvWant(t, all, [][]any{{"1,2", int64(3)}})
	}
	rows, err := csvOpenPath(t, csvWrite(t, "t.csv", []byte(content)), fileformat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	csvWant(t, csvNames(rows.Columns()), []string{"a", "b_c"})
}
