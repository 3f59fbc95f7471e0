package fileformat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluicedata/sluice/fileformat"
)

// memPart is a part kept in memory, recording its Close.
type memPart struct {
	bytes.Buffer
	closed int
}

func (p *memPart) Close() error { p.closed++; return nil }

// splitMem runs split over in and returns the parts, each closed once.
func splitMem(t *testing.T, split func(context.Context, io.Reader, fileformat.SplitOptions, func(int) (io.WriteCloser, error)) (int, error),
	in io.Reader, opts fileformat.SplitOptions, cur **memPart) []string {
	t.Helper()
	var parts []*memPart
	n, err := split(t.Context(), in, opts, func(part int) (io.WriteCloser, error) {
		if part != len(parts)+1 {
			t.Fatalf("part %d asked after %d", part, len(parts))
		}
		p := &memPart{}
		parts = append(parts, p)
		if cur != nil {
			*cur = p
		}
		return p, nil
	})
	if err != nil {
		t.Fatalf("split: %v", err)
	}
	if n != len(parts) {
		t.Fatalf("split says %d parts, wrote %d", n, len(parts))
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		if p.closed != 1 {
			t.Fatalf("part %d closed %d times", i+1, p.closed)
		}
		out[i] = p.String()
	}
	return out
}

// With Measure, the part size is what Measure says, and a part still ends
// only outside a quoted field: here the input arrives in chunks whose first
// ends inside a quoted field that holds a line end, after Measure has
// passed PartSize.
func TestSplitCSVMeasureCutsOutsideQuotes(t *testing.T) {
	in := "id,note\n1,\"first\nsecond, still the field\"\n2,plain\n3,\"x\ny\"\n"
	var cur *memPart
	measured := 0
	opts := fileformat.SplitOptions{PartSize: 10, Measure: func() int64 {
		measured++
		// Twice the bytes written, as a stand-in for a count that is
		// not the written bytes.
		return 2 * int64(cur.Len())
	}}
	// Chunks: "id,note\n1,\"first" ends inside the quoted field.
	r := iotest.HalfReader(strings.NewReader(in))
	parts := splitMem(t, fileformat.SplitCSV, r, opts, &cur)
	want := []string{
		"id,note\n1,\"first\nsecond, still the field\"\n",
		"id,note\n2,plain\n",
		"id,note\n3,\"x\ny\"\n",
	}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Errorf("parts %q\nwant %q", parts, want)
	}
	if measured == 0 {
		t.Error("Measure was never called")
	}
}

func TestSplitLines(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "{\"id\": %d, \"note\": \"line\\nend %d\"}\n", i, i)
	}
	in := b.String()
	for _, c := range []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"whole", func() io.Reader { return strings.NewReader(in) }, 4096},
		{"one byte reads", func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) }, 7000},
		{"part size 1", func() io.Reader { return strings.NewReader(in) }, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			parts := splitMem(t, fileformat.SplitLines, c.r(), fileformat.SplitOptions{PartSize: c.size}, nil)
			if len(parts) < 2 {
				t.Fatalf("%d parts", len(parts))
			}
			if strings.Join(parts, "") != in {
				t.Fatal("the parts do not give back the input")
			}
			longest := 0
			for _, l := range strings.SplitAfter(in, "\n") {
				longest = max(longest, len(l))
			}
			for i, p := range parts {
				if !strings.HasSuffix(p, "\n") || !strings.HasPrefix(p, "{") {
					t.Fatalf("part %d cuts a line: %q ... %q", i+1, p[:min(20, len(p))], p[max(0, len(p)-20):])
				}
				if int64(len(p)) > c.size+int64(longest) {
					t.Errorf("part %d is %d bytes for a part size of %d", i+1, len(p), c.size)
				}
			}
		})
	}
	// A last line without a line end stays so; an empty input gives one
	// empty part.
	if parts := splitMem(t, fileformat.SplitLines, strings.NewReader("{}\n{}\n{\"a\":1}"), fileformat.SplitOptions{PartSize: 2}, nil); fmt.Sprint(parts) != fmt.Sprint([]string{"{}\n", "{}\n", "{\"a\":1}"}) {
		t.Errorf("parts %q", parts)
	}
	if parts := splitMem(t, fileformat.SplitLines, strings.NewReader(""), fileformat.SplitOptions{PartSize: 2}, nil); fmt.Sprint(parts) != fmt.Sprint([]string{""}) {
		t.Errorf("empty input: parts %q", parts)
	}
	// Measure: whole buffers go to a part until it says PartSize is passed.
	var cur *memPart
	parts := splitMem(t, fileformat.SplitLines, &chunkReader{r: strings.NewReader(in), n: 4096},
		fileformat.SplitOptions{PartSize: 10_000, Measure: func() int64 { return int64(cur.Len()) / 4 }}, &cur)
	if strings.Join(parts, "") != in || len(parts) < 4 {
		t.Errorf("with Measure: %d parts, joined equal %v", len(parts), strings.Join(parts, "") == in)
	}
	for i, p := range parts[:len(parts)-1] {
		if n := len(p) / 4; n < 10_000 || n > 10_000+4096/4+100 {
			t.Errorf("with Measure: part %d measures %d for a part size of 10000", i+1, n)
		}
	}
}

// chunkReader reads at most n bytes at a time.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestSplitLinesErrors(t *testing.T) {
	ctx := t.Context()
	next := func(int) (io.WriteCloser, error) { return &memPart{}, nil }
	if _, err := fileformat.SplitLines(ctx, strings.NewReader("{}\n"), fileformat.SplitOptions{}, next); err == nil || !strings.Contains(err.Error(), "PartSize is 0") {
		t.Errorf("no part size: %v", err)
	}
	if _, err := fileformat.SplitLines(ctx, errReader{}, fileformat.SplitOptions{PartSize: 10}, next); err == nil || !strings.Contains(err.Error(), "split lines: reading after 0 bytes: cable cut") {
		t.Errorf("read error: %v", err)
	}
	w := &splitFailWriter{}
	if _, err := fileformat.SplitLines(ctx, strings.NewReader("{}\n"), fileformat.SplitOptions{PartSize: 10}, func(int) (io.WriteCloser, error) { return w, nil }); err == nil || !strings.Contains(err.Error(), "split lines: writing part 1: disk full") || w.closed {
		t.Errorf("write error: %v (closed %v)", err, w.closed)
	}
	if _, err := fileformat.SplitLines(ctx, strings.NewReader("{}\n"), fileformat.SplitOptions{PartSize: 10}, func(int) (io.WriteCloser, error) { return nil, errors.New("no room") }); err == nil || !strings.Contains(err.Error(), "opening part 1: no room") {
		t.Errorf("open error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := fileformat.SplitLines(cctx, strings.NewReader("{}\n"), fileformat.SplitOptions{PartSize: 10}, next); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
