package fileformat_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluicedata/sluice/fileformat"
)

// splitPart is a part written to a file, recording its Close.
type splitPart struct {
	f      *os.File
	closed int
}

func (p *splitPart) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *splitPart) Close() error                { p.closed++; return p.f.Close() }

// splitFiles splits in into files in a fresh folder and returns their
// contents in order.
func splitFiles(t *testing.T, in io.Reader, opts fileformat.SplitOptions) [][]byte {
	t.Helper()
	dir := t.TempDir()
	var parts []*splitPart
	n, err := fileformat.SplitCSV(context.Background(), in, opts, func(part int) (io.WriteCloser, error) {
		if part != len(parts)+1 {
			t.Fatalf("part %d asked after %d", part, len(parts))
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("part-%03d.csv", part)))
		if err != nil {
			return nil, err
		}
		p := &splitPart{f: f}
		parts = append(parts, p)
		return p, nil
	})
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	if n != len(parts) {
		t.Fatalf("SplitCSV says %d parts, wrote %d", n, len(parts))
	}
	var out [][]byte
	for i, p := range parts {
		if p.closed != 1 {
			t.Fatalf("part %d closed %d times", i+1, p.closed)
		}
		b, err := os.ReadFile(p.f.Name())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// splitInput builds a CSV whose records are often quoted and spread over
// several lines, with CRLF or LF line ends, and returns it with the length
// of its longest record.
func splitInput(r *rand.Rand, records int, crlf bool) ([]byte, int) {
	end := "\n"
	if crlf {
		end = "\r\n"
	}
	var b bytes.Buffer
	b.WriteString(`id,"multi` + end + `line name",note` + end)
	longest := 0
	for i := range records {
		start := b.Len()
		note := strings.Repeat("x", r.IntN(40))
		switch r.IntN(4) {
		case 0:
			note = `"` + note + end + `more, "" lines` + end + `"`
		case 1:
			note = `"` + note + `"`
		case 2:
			note = `in"side`
		}
		fmt.Fprintf(&b, "%d,%q,%s%s", i, "n", note, end)
		longest = max(longest, b.Len()-start)
	}
	return b.Bytes(), longest
}

// splitCheck checks parts of input split with opts: each starts with
// header, the bodies concatenate to the input after its header line, each
// body is whole records, and every part but the last has reached PartSize
// by less than one record.
func splitCheck(t *testing.T, input []byte, header []byte, parts [][]byte, partSize int64, longest int) {
	t.Helper()
	var body []byte
	for i, p := range parts {
		if !bytes.HasPrefix(p, header) {
			t.Fatalf("part %d does not start with the header %q: %q", i+1, header, p[:min(len(p), 60)])
		}
		b := p[len(header):]
		body = append(body, b...)
		if i < len(parts)-1 {
			// A part ends at the first record boundary once it holds
			// PartSize bytes and at least one record.
			if int64(len(p)) < partSize || int64(len(p)) > max(partSize, int64(len(header)))+int64(longest) {
				t.Fatalf("part %d has %d bytes; PartSize %d, longest record %d", i+1, len(p), partSize, longest)
			}
		}
		// A whole number of records: the standard reader, strict about
		// quotes, reads the part with one field count throughout.
		r := csv.NewReader(bytes.NewReader(p))
		r.LazyQuotes = true // the in"side values
		if _, err := r.ReadAll(); err != nil {
			t.Fatalf("part %d is not whole records: %v", i+1, err)
		}
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) && i < len(parts)-1 {
			t.Fatalf("part %d ends inside a line", i+1)
		}
	}
	if !bytes.Equal(body, input) {
		t.Fatalf("the parts' bodies (%d bytes) differ from the input (%d bytes)", len(body), len(input))
	}
}

func TestSplitCSV(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, crlf := range []bool{false, true} {
		input, longest := splitInput(r, 1000, crlf)
		header := bytes.Clone(input[:bytes.Index(input, []byte("note"))+4])
		if crlf {
			header = append(header, '\r')
		}
		header = append(header, '\n')
		body := input[len(header):]
		for _, size := range []int64{1, 100, 4096, 50_000, int64(len(input)) - 10, 1 << 30} {
			parts := splitFiles(t, bytes.NewReader(input), fileformat.SplitOptions{PartSize: size})
			splitCheck(t, body, header, parts, size, longest)
			if size >= int64(len(input)) && len(parts) != 1 {
				t.Fatalf("PartSize %d: %d parts for %d bytes", size, len(parts), len(input))
			}
			if size == 1 && len(parts) != 1000 {
				t.Fatalf("PartSize 1: %d parts, want one per record", len(parts))
			}
		}
		// Reads of a few bytes put quotes, doubled quotes and CRLF across
		// every chunk boundary.
		small := splitFiles(t, csvChunks{bytes.NewReader(input), rand.New(rand.NewPCG(5, 6))}, fileformat.SplitOptions{PartSize: 4096})
		whole := splitFiles(t, bytes.NewReader(input), fileformat.SplitOptions{PartSize: 4096})
		csvWant(t, small, whole)
	}
}

func TestSplitCSVRecordLongerThanPart(t *testing.T) {
	big := strings.Repeat("y", 3<<20) // over the 1 MiB buffer
	input := "a,b\n1,\"" + big + "\n" + big + "\"\n2,x\n3,\"" + big + "\"\n"
	parts := splitFiles(t, strings.NewReader(input), fileformat.SplitOptions{PartSize: 1000})
	// Part 2 is 1000 bytes only within record 3.
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	csvWant(t, string(parts[0]), "a,b\n1,\""+big+"\n"+big+"\"\n")
	csvWant(t, string(parts[1]), "a,b\n2,x\n3,\""+big+"\"\n")
}

func TestSplitCSVHeaderReplaced(t *testing.T) {
	input := "\xEF\xBB\xBFId,\"Unit Price\"\r\n1,2\r\n3,4\r\n"
	parts := splitFiles(t, strings.NewReader(input), fileformat.SplitOptions{PartSize: 1, Header: []string{"id", "unit_price"}})
	csvWant(t, parts, [][]byte{[]byte("id,unit_price\r\n1,2\r\n"), []byte("id,unit_price\r\n3,4\r\n")})

	// Kept as it is, with its byte order mark, in every part.
	parts = splitFiles(t, strings.NewReader(input), fileformat.SplitOptions{PartSize: 1})
	csvWant(t, parts, [][]byte{[]byte("\xEF\xBB\xBFId,\"Unit Price\"\r\n1,2\r\n"), []byte("\xEF\xBB\xBFId,\"Unit Price\"\r\n3,4\r\n")})

	// A quoted header name spread over two lines, after a byte order mark,
	// read one byte at a time.
	input = "\xEF\xBB\xBF\"a\nb\",c\n1,2\n3,4\n"
	parts = splitFiles(t, iotest.OneByteReader(strings.NewReader(input)), fileformat.SplitOptions{PartSize: 1})
	csvWant(t, parts, [][]byte{[]byte("\xEF\xBB\xBF\"a\nb\",c\n1,2\n"), []byte("\xEF\xBB\xBF\"a\nb\",c\n3,4\n")})

	// Names that need quotes get them; the delimiter is the file's.
	parts = splitFiles(t, strings.NewReader("a;b\n1;2\n"), fileformat.SplitOptions{PartSize: 1, Delimiter: ';', Header: []string{"x;y", `q"`}})
	csvWant(t, parts, [][]byte{[]byte("\"x;y\";\"q\"\"\"\n1;2\n")})

	// A file without a header gets one, or none.
	parts = splitFiles(t, strings.NewReader("1,2\r\n3,4\r\n"), fileformat.SplitOptions{PartSize: 1, NoHeader: true, Header: []string{"a", "b"}})
	csvWant(t, parts, [][]byte{[]byte("a,b\r\n1,2\r\n"), []byte("a,b\r\n3,4\r\n")})
	parts = splitFiles(t, strings.NewReader("1,2\n3,4"), fileformat.SplitOptions{PartSize: 1, NoHeader: true})
	csvWant(t, parts, [][]byte{[]byte("1,2\n"), []byte("3,4")})
}

func TestSplitCSVQuotesFollowTheDelimiter(t *testing.T) {
	// With ; as the delimiter, the quote after ; opens a field and the
	// line end inside it is not a boundary; one after a letter does not.
	input := "a;b\n1;\"x\ny\"\n2;5'10\"\n3;z\n"
	parts := splitFiles(t, strings.NewReader(input), fileformat.SplitOptions{PartSize: 1, Delimiter: ';'})
	csvWant(t, parts, [][]byte{[]byte("a;b\n1;\"x\ny\"\n"), []byte("a;b\n2;5'10\"\n"), []byte("a;b\n3;z\n")})
}

func TestSplitCSVEmptyAndHeaderOnly(t *testing.T) {
	csvWant(t, splitFiles(t, strings.NewReader(""), fileformat.SplitOptions{PartSize: 10}), [][]byte{{}})
	csvWant(t, splitFiles(t, strings.NewReader("a,b\n"), fileformat.SplitOptions{PartSize: 10}), [][]byte{[]byte("a,b\n")})
	csvWant(t, splitFiles(t, strings.NewReader("a,b"), fileformat.SplitOptions{PartSize: 10, Header: []string{"x", "y"}}), [][]byte{[]byte("x,y")})
}

type splitFailWriter struct{ closed bool }

func (w *splitFailWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (w *splitFailWriter) Close() error              { w.closed = true; return nil }

func TestSplitCSVErrors(t *testing.T) {
	input := strings.Repeat("1,2\n", 1000)
	ctx := context.Background()

	// next fails.
	_, err := fileformat.SplitCSV(ctx, strings.NewReader(input), fileformat.SplitOptions{PartSize: 100}, func(part int) (io.WriteCloser, error) {
		return nil, errors.New("bucket gone")
	})
	csvErrHas(t, err, "opening part 1", "bucket gone")

	// A write fails: the error comes back and the part is not closed.
	w := &splitFailWriter{}
	_, err = fileformat.SplitCSV(ctx, strings.NewReader(input), fileformat.SplitOptions{PartSize: 100}, func(int) (io.WriteCloser, error) { return w, nil })
	csvErrHas(t, err, "writing part 1", "disk full")
	if w.closed {
		t.Fatal("a failed part was closed")
	}

	// Reading fails.
	in := io.MultiReader(strings.NewReader(input), errReader{})
	_, err = fileformat.SplitCSV(ctx, in, fileformat.SplitOptions{PartSize: 100}, func(int) (io.WriteCloser, error) { return nopWriteCloser{io.Discard}, nil })
	csvErrHas(t, err, "reading after 4000 bytes", "cable cut")

	// Cancelled.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = fileformat.SplitCSV(cctx, strings.NewReader(input), fileformat.SplitOptions{PartSize: 100}, func(int) (io.WriteCloser, error) { return nopWriteCloser{io.Discard}, nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}

	_, err = fileformat.SplitCSV(ctx, strings.NewReader(input), fileformat.SplitOptions{}, nil)
	csvErrHas(t, err, "PartSize")
	_, err = fileformat.SplitCSV(ctx, strings.NewReader(input), fileformat.SplitOptions{PartSize: 1, Delimiter: '"'}, nil)
	csvErrHas(t, err, "must differ")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("cable cut") }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// splitCounter counts bytes, hiding io.Discard's ReaderFrom so that both
// benchmarks move the bytes through a buffer.
type splitCounter struct{ n int64 }

func (c *splitCounter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }
func (c *splitCounter) Close() error                { return nil }

// BenchmarkSplitCSV splits 64 MiB of CSV into 8 MiB parts, next to a plain
// copy of the same bytes through a 1 MiB buffer.
func BenchmarkSplitCSV(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	buf.WriteString("id,name,note,amount\n")
	for i := 0; buf.Len() < 64<<20; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&buf, "%d,user_%d,\"a note, with \"\"quotes\"\"\nand a line end\",%d.%02d\n", i, r.IntN(1e6), r.IntN(1e4), r.IntN(100))
		} else {
			fmt.Fprintf(&buf, "%d,user_%d,plain note %d,%d.%02d\n", i, r.IntN(1e6), r.IntN(1e6), r.IntN(1e4), r.IntN(100))
		}
	}
	data := buf.Bytes()
	b.Run("split", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			var c splitCounter
			n, err := fileformat.SplitCSV(context.Background(), struct{ io.Reader }{bytes.NewReader(data)}, fileformat.SplitOptions{PartSize: 8 << 20}, func(int) (io.WriteCloser, error) { return &c, nil })
			if err != nil || n < 8 {
				b.Fatalf("%d parts, %v", n, err)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		cb := make([]byte, 1<<20)
		for range b.N {
			var c splitCounter
			if _, err := io.CopyBuffer(struct{ io.Writer }{&c}, struct{ io.Reader }{bytes.NewReader(data)}, cb); err != nil {
				b.Fatal(err)
			}
		}
	})
}
