package fileformat

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
)

// detectHead is how many bytes Open reads to check a file's content against
// its name.
const detectHead = 4096

// extensions maps the file name endings sluice reads to their formats.
// .txt is left out on purpose: in a folder of data it is as often a note or
// a log as a table, and a rename to .csv or .tsv says which it is.
var extensions = []struct {
	ext string
	f   Format
}{
	{".csv", CSV},
	{".tsv", CSV},
	{".parquet", Parquet},
	{".jsonl", JSONL},
	{".ndjson", JSONL},
}

// KnownExtensions lists the file name endings Detect and Open accept.
const KnownExtensions = ".csv, .tsv, .parquet, .jsonl, .ndjson, and .csv.gz, .tsv.gz, .jsonl.gz, .ndjson.gz"

// FormatOf tells a file's format from its name alone, for choosing which
// files of a folder to read before opening them. ok is false for a name
// sluice does not read.
func FormatOf(name string) (f Format, gzipped, ok bool) {
	f, gzipped, _, err := formatOf(name)
	return f, gzipped, err == nil
}

func formatOf(name string) (f Format, gzipped bool, ext string, err error) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	stem := base
	if s, ok := strings.CutSuffix(base, ".gz"); ok {
		gzipped, stem = true, s
	}
	for _, e := range extensions {
		if strings.HasSuffix(stem, e.ext) && len(stem) > len(e.ext) {
			if gzipped && e.f == Parquet {
				return "", false, "", fmt.Errorf("%s: a gzipped Parquet file cannot be read in place (Parquet compresses its own pages): gunzip it, or write it with a Parquet codec such as zstd or snappy", name)
			}
			ext = e.ext
			if gzipped {
				ext += ".gz"
			}
			return e.f, gzipped, ext, nil
		}
	}
	hint := ""
	if strings.HasSuffix(stem, ".json") {
		hint = "; a .json file holding one JSON object per line is JSON Lines: rename it to .jsonl"
	}
	return "", false, "", fmt.Errorf("%s: unknown file type: sluice reads files named %s%s", name, KnownExtensions, hint)
}

// content names what the first bytes of a file look like.
type content int

const (
	contentEmpty content = iota
	contentParquet
	contentGzip
	contentZip
	contentUTF16
	contentBinary
	contentJSONObject // text starting with {
	contentJSONArray  // text starting with [
	contentText
)

func sniffContent(head []byte) (content, int) {
	switch {
	case len(head) == 0:
		return contentEmpty, 0
	case bytes.HasPrefix(head, []byte("PAR1")):
		return contentParquet, 0
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return contentGzip, 0
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return contentZip, 0
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return contentUTF16, 0
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return contentBinary, i
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte{0xEF, 0xBB, 0xBF}), " \t\r\n")
	switch {
	case len(t) == 0:
		return contentEmpty, 0
	case t[0] == '{':
		return contentJSONObject, 0
	case t[0] == '[':
		return contentJSONArray, 0
	}
	return contentText, 0
}

// describe says what a file holds, and the rename that would fit it.
func describe(c content, off int, gzipped bool) (what, rename string) {
	gz := ""
	if gzipped {
		gz = ".gz"
	}
	switch c {
	case contentParquet:
		return "Parquet (starts with PAR1)", ".parquet"
	case contentGzip:
		return "gzip-compressed (starts with 1f 8b)", ""
	case contentZip:
		return "a ZIP archive (starts with PK), perhaps a spreadsheet", ""
	case contentUTF16:
		return "UTF-16 text (starts with a UTF-16 byte order mark)", ""
	case contentBinary:
		return fmt.Sprintf("binary (a NUL byte at offset %d)", off), ""
	case contentJSONObject:
		return "JSON (starts with {)", ".jsonl" + gz
	case contentJSONArray:
		return "a JSON array (starts with [), not one JSON object per line", ""
	}
	return "text", ".csv" + gz
}

// Detect tells a file's format from its name, and checks it against the
// file's first bytes (a few KiB are plenty; fewer for a short file). For a
// gzipped file, head is the compressed bytes; Open checks the content once
// more after decompressing.
func Detect(name string, head []byte) (f Format, gzipped bool, err error) {
	f, gzipped, ext, err := formatOf(name)
	if err != nil {
		return "", false, err
	}
	c, off := sniffContent(head)
	if gzipped {
		if c == contentGzip {
			return f, true, nil
		}
		if c == contentEmpty && len(head) == 0 {
			return "", false, fmt.Errorf("%s is named %s but is empty: a gzip file has at least a header", name, ext)
		}
		what, rename := describe(c, off, false)
		if rename == ".csv" && f == CSV {
			rename = strings.TrimSuffix(ext, ".gz")
		}
		if rename == ".jsonl" && f == JSONL {
			rename = strings.TrimSuffix(ext, ".gz")
		}
		return "", false, mismatch(name, ext, what+", not gzip-compressed", rename)
	}
	if err := checkContent(name, ext, f, c, off, false); err != nil {
		return "", false, err
	}
	return f, false, nil
}

// checkContent checks uncompressed content c against format f.
func checkContent(name, ext string, f Format, c content, off int, gzipped bool) error {
	ok := false
	switch f {
	case CSV:
		ok = c == contentEmpty || c == contentText || c == contentJSONObject || c == contentJSONArray
	case JSONL:
		ok = c == contentEmpty || c == contentJSONObject
	case Parquet:
		ok = c == contentParquet
	}
	if ok {
		return nil
	}
	what, rename := describe(c, off, gzipped)
	switch {
	case c == contentGzip && f == Parquet:
		return fmt.Errorf("%s is named %s but is gzip-compressed; gunzip it (Parquet compresses its own pages)", name, ext)
	case c == contentGzip && !gzipped:
		rename = ext + ".gz"
	case c == contentUTF16:
		return fmt.Errorf("%s is %s: sluice reads UTF-8 only; convert it (e.g. iconv -f UTF-16 -t UTF-8)", name, what)
	case c == contentEmpty && f == Parquet:
		return fmt.Errorf("%s is named %s but is empty; a Parquet file starts with PAR1", name, ext)
	case c == contentText && f == JSONL:
		return fmt.Errorf("%s is named %s but does not start with a JSON object ({); JSON Lines holds one object per line. If it is CSV, rename it to %s", name, ext, rename)
	case c == contentJSONArray && f == JSONL:
		return fmt.Errorf("%s is named %s but holds a JSON array (starts with [); JSON Lines holds one object per line: convert it (e.g. jq -c '.[]')", name, ext)
	case c == contentParquet && gzipped:
		return fmt.Errorf("%s is named %s but holds a gzipped Parquet file; gunzip it and name it .parquet", name, ext)
	}
	return mismatch(name, ext, what, rename)
}

func mismatch(name, ext, what, rename string) error {
	if rename != "" && rename != ext {
		return fmt.Errorf("%s is named %s but its content is %s; rename it to %s", name, ext, what, rename)
	}
	return fmt.Errorf("%s is named %s but its content is %s; sluice reads %s", name, ext, what, KnownExtensions)
}

// Open reads a file in the format its name says, after checking the name
// against the content. Gzipped CSV and JSON Lines are decompressed as they
// stream. A .tsv file has a tab delimiter unless opts says otherwise.
//
// Open reads src from its current position for CSV and JSON Lines, and
// through ReadAt for Parquet. Closing the Rows does not close src.
func Open(name string, src Source, opts Options) (Rows, error) {
	head := make([]byte, detectHead)
	n, err := io.ReadFull(src, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("%s: reading the start of the file: %w", name, err)
	}
	head = head[:n]
	f, gzipped, err := Detect(name, head)
	if err != nil {
		return nil, err
	}
	if f == Parquet {
		return OpenParquet(src, src.Size(), name)
	}
	var r io.Reader = io.MultiReader(bytes.NewReader(head), src)
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: not a valid gzip file: %w", name, err)
		}
		gz := &gzipErrors{r: zr}
		inner := make([]byte, detectHead)
		// ReadFull's own io.ErrUnexpectedEOF means a short file; the
		// decompressor's, wrapped by gzipErrors, a damaged one.
		n, err := io.ReadFull(gz, inner)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%s: decompressing the start of the file: %w", name, err)
		}
		inner = inner[:n]
		_, _, ext, _ := formatOf(name)
		c, off := sniffContent(inner)
		if err := checkContent(name, ext, f, c, off, true); err != nil {
			return nil, err
		}
		r = io.MultiReader(bytes.NewReader(inner), gz)
	}
	if f == JSONL {
		return OpenJSONL(r, name, opts)
	}
	if opts.CSV.Delimiter == 0 && strings.HasSuffix(strings.TrimSuffix(strings.ToLower(name), ".gz"), ".tsv") {
		opts.CSV.Delimiter = '\t'
	}
	return OpenCSV(r, name, opts)
}

// gzipErrors says that an error from the decompressor is about the file's
// compression, not its CSV or JSON.
type gzipErrors struct {
	r io.Reader
}

func (g *gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("the gzip stream is damaged or cut short (%w); check the file or download it again", err)
	}
	return n, err
}
