package filetable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filestore"
)

// The partition size range, in MB (MiB, 2^20 bytes).
const (
	DefaultPartitionSizeMB = 250
	MaxPartitionSizeMB     = 1000
)

// Variables rather than constants so that tests split small files; nothing
// else sets them.
var (
	// splitThreshold is the size from which a file is split (1 GiB).
	splitThreshold int64 = 1 << 30
	// minPartitionSizeMB is the smallest partition size allowed.
	minPartitionSizeMB = 100
	// bytesPerMB is the unit of PartitionSizeMB.
	bytesPerMB int64 = 1 << 20
)

// cleanupTimeout bounds the deletes that tidy up after a failed upload,
// which run even when the upload's context was cancelled.
const cleanupTimeout = 30 * time.Second

// UploadOptions tune Upload. The zero value splits files of 1 GiB or more
// into parts of 250 MiB.
type UploadOptions struct {
	// NoAutoPartition refuses a file of 1 GiB or more instead of splitting
	// it; nothing is uploaded then.
	NoAutoPartition bool
	// PartitionSizeMB is the size of the parts a large file is split into,
	// in MiB: 100 to 1000, 0 for DefaultPartitionSizeMB.
	PartitionSizeMB int
	// Progress, when set, is called as the local file is read, with the
	// bytes read so far and the file's size.
	Progress func(done, total int64)
}

// Rename is a column name that Upload cleaned.
type Rename struct{ From, To string }

// UploadResult tells what Upload did.
type UploadResult struct {
	Table  string
	Format fileformat.Format
	// Keys are the objects of the table now, in order.
	Keys []string
	// Split is true when the file was split into parts.
	Split bool
	// Bytes is the size of the local file.
	Bytes int64
	// Renamed lists the column names that were cleaned, in column order.
	Renamed []Rename
	// Removed lists the objects of the table's previous version that are
	// gone (those not overwritten by a key of the new one).
	Removed []string
}

// Upload uploads the local CSV (.csv, .tsv), Parquet (.parquet) or JSON
// Lines (.jsonl, .ndjson) file at localPath, the text formats also
// gzip-compressed (.csv.gz etc.), as table name of st, replacing the table
// of that name if there is one (whatever its shape: a file of another
// format, or a folder, whose every object is removed). See the package
// documentation for splitting, name cleaning and how a reader never sees
// half a table.
//
// The file's extension must match its content (for a gzipped file, the
// content once decompressed too). For CSV, the delimiter, quoting and
// header are sniffed from the first rows, which must parse; for JSON
// Lines, the first lines must be JSON objects; the rest of the file is
// copied without being parsed (a record that would not parse is found
// when the table is read). A gzipped file is decompressed as it is copied,
// so a damaged or truncated one is refused; split, its parts are
// compressed again (gzip's fastest level), each a whole gzip file cut at a
// record boundary, and the partition size counts their compressed bytes.
// JSON Lines keys are kept as they are: cleaning them would mean rewriting
// every line.
//
// Memory is the splitter's buffer (1 MiB for CSV and JSON Lines, 8 MiB for
// Parquet, or a re-chunked row group's pages), for gzip a decompressor's
// and a compressor's state (about 1 MiB), plus what the store's writer
// buffers (on S3 two multipart parts), whatever the file's size.
func Upload(ctx context.Context, st filestore.Store, name, localPath string, opts UploadOptions) (UploadResult, error) {
	res, err := upload(ctx, st, name, localPath, opts)
	if err != nil {
		return res, fmt.Errorf("upload %s as table %q to %s: %w", localPath, name, st, err)
	}
	return res, nil
}

func upload(ctx context.Context, st filestore.Store, name, localPath string, opts UploadOptions) (UploadResult, error) {
	res := UploadResult{Table: name}
	if err := checkUploadName(name); err != nil {
		return res, err
	}
	mb := opts.PartitionSizeMB
	if mb == 0 {
		mb = DefaultPartitionSizeMB
	}
	if mb < minPartitionSizeMB || mb > MaxPartitionSizeMB {
		return res, fmt.Errorf("partition size %d MB is out of range: give %d to %d", mb, minPartitionSizeMB, MaxPartitionSizeMB)
	}
	f, err := os.Open(localPath)
	if err != nil {
		return res, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return res, err
	}
	if !info.Mode().IsRegular() {
		return res, errors.New("not a regular file: upload takes a CSV, Parquet or JSON Lines file")
	}
	size := info.Size()
	res.Bytes = size
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return res, fmt.Errorf("reading the start of the file: %w", err)
	}
	format, gzipped, err := fileformat.Detect(filepath.Base(localPath), head[:n])
	if err != nil {
		return res, err
	}
	res.Format = format
	ext := uploadExt(localPath, gzipped)
	split := size >= splitThreshold
	if split && opts.NoAutoPartition {
		return res, fmt.Errorf("the file is %s, and files of %s or more are split into parts, which --no-auto-partition (UploadOptions.NoAutoPartition) turns off: allow splitting, or split the file yourself", sizeText(size), sizeText(splitThreshold))
	}
	res.Split = split

	var csvInfo fileformat.CSVInfo
	var names []string
	switch format {
	case fileformat.CSV:
		csvInfo, err = sniffCSV(f, localPath, size)
		if err != nil {
			return res, err
		}
		if csvInfo.Header {
			names = csvInfo.Names
		}
	case fileformat.JSONL:
		if err := sniffJSONL(f, localPath, size); err != nil {
			return res, err
		}
	default:
		meta, err := fileformat.ParquetInfo(f, size, localPath)
		if err != nil {
			return res, err
		}
		for _, c := range meta.Columns {
			names = append(names, c.Name)
		}
	}
	clean, _ := fileformat.CleanNames(names)
	for i, n := range names {
		if clean[i] != n {
			res.Renamed = append(res.Renamed, Rename{From: n, To: clean[i]})
		}
	}
	if res.Renamed == nil {
		clean = nil
	}

	// Leftovers of an earlier attempt at this table are removed first:
	// they are never published.
	if err := deletePrefix(ctx, st, stagingDir+"/"+name+"/"); err != nil {
		return res, fmt.Errorf("removing the leftovers of an earlier upload: %w", err)
	}
	id, err := randomID()
	if err != nil {
		return res, err
	}
	stage := keyJoin(stagingDir, name, id)
	// A gzipped file that needs no change goes up as it is; otherwise it
	// is decompressed, and its parts compressed again.
	recompress := gzipped && (split || clean != nil)
	var staged, final []string
	var cur *partWriter
	var curGz *gzipPart
	next := func(part int) (io.WriteCloser, error) {
		base := name + ext
		if split {
			base = fmt.Sprintf("part-%05d%s", part, ext)
		}
		key := keyJoin(stage, base)
		w, err := st.Create(ctx, key)
		if err != nil {
			return nil, err
		}
		staged = append(staged, key)
		if split {
			final = append(final, keyJoin(name, base))
		} else {
			final = append(final, base)
		}
		cur = &partWriter{Writer: w}
		if !recompress {
			return cur, nil
		}
		curGz = newGzipPart(cur)
		return curGz, nil
	}
	prog := &progress{total: size, fn: opts.Progress}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	partSize := int64(math.MaxInt64)
	if split {
		partSize = int64(mb) * bytesPerMB
	}
	var in io.Reader = &countingReader{r: f, p: prog}
	var measure func() int64
	if recompress {
		// The splitters read to the end of the decompressed data, which
		// the decompressor gives only once the whole file checked out.
		if in, err = newGzipReader(in); err != nil {
			return res, err
		}
		// The partition size counts what the store gets.
		measure = func() int64 { return curGz.n }
	}
	switch {
	case !split && clean == nil && gzipped:
		// The compressed bytes as they are, decompressed on the side so
		// that a damaged file is refused.
		err = copyWholeChecked(ctx, next, in)
	case !split && clean == nil:
		// Nothing to change: the bytes as they are.
		err = copyWhole(ctx, next, in)
	case format == fileformat.CSV:
		_, err = fileformat.SplitCSV(ctx, in, fileformat.SplitOptions{
			PartSize:  partSize,
			Delimiter: csvInfo.Delimiter,
			Quote:     csvInfo.Quote,
			Header:    clean,
			NoHeader:  !csvInfo.Header,
			Measure:   measure,
		}, next)
	case format == fileformat.JSONL:
		_, err = fileformat.SplitLines(ctx, in, fileformat.SplitOptions{PartSize: partSize, Measure: measure}, next)
	default:
		_, err = fileformat.SplitParquet(ctx, &countingReaderAt{r: f, p: prog}, size, fileformat.ParquetSplitOptions{
			PartSize: partSize,
			Names:    clean,
		}, next)
	}
	if err == nil && cur != nil && !cur.closed {
		err = errors.New("the last part was left open")
	}
	if err != nil {
		if cur != nil && !cur.closed {
			cur.Abort()
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := deletePrefix(cctx, st, stage+"/"); cerr != nil {
			err = fmt.Errorf("%w (and removing the parts written so far failed: %v; the next upload of this table removes them)", err, cerr)
		}
		removeEmptyDirs(st, stage)
		return res, fmt.Errorf("nothing was published, the table is as it was: %w", err)
	}
	prog.report(size)

	removed, err := publish(ctx, st, name, staged, final)
	if err != nil {
		return res, err
	}
	removeEmptyDirs(st, stage)
	res.Keys, res.Removed = final, removed
	return res, nil
}

// uploadExt is the extension the table's objects get: the local file's,
// lower case, with .gz kept (".csv.gz").
func uploadExt(localPath string, gzipped bool) string {
	base := strings.ToLower(filepath.Base(localPath))
	if !gzipped {
		return filepath.Ext(base)
	}
	stem := strings.TrimSuffix(base, ".gz")
	return filepath.Ext(stem) + ".gz"
}

// checkUploadName refuses a name that would not read back as the table
// asked for.
func checkUploadName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, _, ok := fileformat.FormatOf(name); ok {
		return fmt.Errorf("%q is a file name; give the table's name without an extension, such as %q", name, tableNameOf(name))
	}
	if strings.HasSuffix(name, ".") || strings.TrimSpace(name) != name {
		return fmt.Errorf("table name %q ends in a dot or has spaces around it", name)
	}
	return nil
}

// sniffCSV reads the first rows of a CSV file for its delimiter, quoting
// and header.
func sniffCSV(f *os.File, localPath string, size int64) (fileformat.CSVInfo, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fileformat.CSVInfo{}, err
	}
	rows, err := fileformat.Open(localPath, sizedFile{f, size}, fileformat.Options{})
	if err != nil {
		return fileformat.CSVInfo{}, err
	}
	defer rows.Close()
	cr, ok := rows.(*fileformat.CSVRows)
	if !ok {
		return fileformat.CSVInfo{}, fmt.Errorf("%s: read as CSV, but the reader tells no CSV details (%T)", localPath, rows)
	}
	return cr.Info(), nil
}

// sniffJSONL reads the first lines of a JSON Lines file (gzipped or not),
// the reader's type sample, which must be JSON objects.
func sniffJSONL(f *os.File, localPath string, size int64) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rows, err := fileformat.Open(localPath, sizedFile{f, size}, fileformat.Options{})
	if err != nil {
		return err
	}
	defer rows.Close()
	for n := 0; n < fileformat.DefaultSampleRows && rows.Next(); n++ {
	}
	return rows.Err()
}

type sizedFile struct {
	*os.File
	size int64
}

func (s sizedFile) Size() int64 { return s.size }

// copyWhole copies r into the single object next opens.
func copyWhole(ctx context.Context, next func(int) (io.WriteCloser, error), r io.Reader) error {
	w, err := next(1)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		return err
	}
	return w.Close()
}

// ctxReader stops a copy once the context is cancelled: a local file
// never blocks, so nothing else would.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// partWriter remembers whether the splitter closed it, so that a failed
// upload aborts only a part still open.
type partWriter struct {
	filestore.Writer
	closed bool
}

func (w *partWriter) Close() error {
	w.closed = true
	return w.Writer.Close()
}

// progress counts the bytes read from the local file. A lock, because
// parquet-go may read from more than one goroutine when a row group is
// re-chunked.
type progress struct {
	mu          sync.Mutex
	done, total int64
	fn          func(done, total int64)
}

func (p *progress) add(n int) {
	if n > 0 {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.set(p.done + int64(n))
	}
}

func (p *progress) report(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set(done)
}

func (p *progress) set(done int64) {
	// A Parquet split reads the footer more than once: never past the end.
	p.done = min(done, p.total)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(n)
	return n, err
}

type countingReaderAt struct {
	r io.ReaderAt
	p *progress
}

func (c *countingReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(b, off)
	c.p.add(n)
	return n, err
}

// marker is what the marker object holds, for a person who finds it.
type marker struct {
	Note    string    `json:"note"`
	Started time.Time `json:"started"`
	Keys    []string  `json:"keys,omitempty"`
}

// publish moves the staged objects to their final keys and removes every
// other object of the table's previous version. When that is more than one
// atomic step, the marker makes readers refuse the table until it is done;
// an interruption leaves the marker, which the next upload or Remove
// clears.
func publish(ctx context.Context, st filestore.Store, name string, staged, final []string) (removed []string, err error) {
	old, hasMarker, err := tableObjects(ctx, st, name)
	if err != nil {
		return nil, fmt.Errorf("listing the table to replace: %w", err)
	}
	keep := make(map[string]bool, len(final))
	for _, k := range final {
		keep[k] = true
	}
	// One object replacing at most itself is a single rename, which
	// readers see whole (local rename; S3 copy).
	single := len(final) == 1 && (len(old) == 0 || len(old) == 1 && old[0] == final[0])
	markerKey := keyJoin(name, markerName)
	if !single {
		if err := writeMarker(ctx, st, markerKey, "an upload is replacing this table", final); err != nil {
			return nil, err
		}
	}
	incomplete := func(err error) error {
		return fmt.Errorf("publishing failed midway: %w; the table reads as incomplete until the upload is run again (or the table removed)", err)
	}
	for i := range staged {
		if err := st.Rename(ctx, staged[i], final[i]); err != nil {
			if single && !hasMarker {
				return nil, fmt.Errorf("publishing: %w; the table is as it was", err)
			}
			return nil, incomplete(err)
		}
	}
	for _, k := range old {
		if keep[k] {
			continue
		}
		if err := st.Delete(ctx, k); err != nil {
			return nil, incomplete(fmt.Errorf("removing %s of the previous version: %w", k, err))
		}
		removed = append(removed, k)
	}
	if !single || hasMarker {
		if err := st.Delete(ctx, markerKey); err != nil {
			return nil, incomplete(fmt.Errorf("removing the marker %s: %w", markerKey, err))
		}
	}
	return removed, nil
}

func writeMarker(ctx context.Context, st filestore.Store, key, note string, keys []string) error {
	b, err := json.MarshalIndent(marker{Note: note + "; if this stays, the change was interrupted: run it again", Started: time.Now().UTC(), Keys: keys}, "", "  ")
	if err != nil {
		return err
	}
	w, err := st.Create(ctx, key)
	if err != nil {
		return fmt.Errorf("writing the marker %s: %w", key, err)
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return fmt.Errorf("writing the marker %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing the marker %s: %w", key, err)
	}
	return nil
}

// tableObjects lists every object of table name: the root files that name
// it and everything in its folder (hidden and unknown files too: the folder
// is the table's), except the marker, which hasMarker tells. A folder that
// holds no data file and no marker is not the table's, and is left alone.
func tableObjects(ctx context.Context, st filestore.Store, name string) (keys []string, hasMarker bool, err error) {
	var folder []string
	isTable := false
	for o, err := range st.List(ctx, name) {
		if err != nil {
			return nil, false, err
		}
		rest, inFolder := strings.CutPrefix(o.Key, name+"/")
		switch {
		case inFolder && rest == markerName:
			hasMarker = true
		case inFolder:
			folder = append(folder, o.Key)
			if classify(o.Key).kind == entryFolderFile {
				isTable = true
			}
		case !strings.Contains(o.Key, "/"):
			if e := classify(o.Key); e.kind == entryFileTable && e.table == name {
				keys = append(keys, o.Key)
			}
		}
	}
	if isTable || hasMarker {
		keys = append(keys, folder...)
	}
	return keys, hasMarker, nil
}

// Remove deletes table name: the root files and the folder that give it
// (every object in the folder), and what a failed upload of it left behind. A multi-object table is marked
// incomplete first, so that an interrupted removal is never read as a
// smaller table. It returns how many objects it deleted; a missing table
// is an error wrapping ErrNotFound with the closest names.
func Remove(ctx context.Context, st filestore.Store, name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("remove table %q from %s: %w", name, st, err)
	}
	b, err := New(st).collect(ctx, name, false)
	if err != nil {
		return 0, fmt.Errorf("remove table %q from %s: %w", name, st, err)
	}
	staging := stagingDir + "/" + name + "/"
	if !b.exists() {
		if err := deletePrefix(ctx, st, staging); err != nil {
			return 0, fmt.Errorf("remove table %q from %s: removing upload leftovers: %w", name, st, err)
		}
		return 0, New(st).notFound(ctx, name, b.unknown)
	}
	old, hasMarker, err := tableObjects(ctx, st, name)
	if err != nil {
		return 0, fmt.Errorf("remove table %q from %s: %w", name, st, err)
	}
	markerKey := keyJoin(name, markerName)
	if len(old) > 1 && !hasMarker {
		if err := writeMarker(ctx, st, markerKey, "this table is being removed", nil); err != nil {
			return 0, fmt.Errorf("remove table %q from %s: %w", name, st, err)
		}
		hasMarker = true
	}
	n := 0
	for _, k := range old {
		if err := st.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("remove table %q from %s: %w; %d of %d objects removed, the table reads as incomplete: run the removal again", name, st, err, n, len(old))
		}
		n++
	}
	if hasMarker {
		if err := st.Delete(ctx, markerKey); err != nil {
			return n, fmt.Errorf("remove table %q from %s: removing the marker %s: %w; run the removal again", name, st, markerKey, err)
		}
	}
	if err := deletePrefix(ctx, st, staging); err != nil {
		return n, fmt.Errorf("remove table %q from %s: the table is gone, but removing upload leftovers failed: %w", name, st, err)
	}
	return n, nil
}

// deletePrefix deletes every object under prefix.
func deletePrefix(ctx context.Context, st filestore.Store, prefix string) error {
	var keys []string
	for o, err := range st.List(ctx, prefix) {
		if err != nil {
			return err
		}
		keys = append(keys, o.Key)
	}
	for _, k := range keys {
		if err := st.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// removeEmptyDirs removes the staging folders that renames emptied on a
// local store (its Rename, unlike Delete, leaves the source's folders).
func removeEmptyDirs(st filestore.Store, key string) {
	for k := key; k != "." && k != "" && k != "/"; k = path.Dir(k) {
		p, ok := st.Local(k)
		if !ok || os.Remove(p) != nil {
			return
		}
	}
}

func randomID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("choosing a staging name: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// sizeText writes a byte count for people: 1.5 GiB, 250 MiB, 12 KiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[exp]
}
