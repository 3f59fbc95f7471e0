package fileformat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// ParquetSplitOptions tune SplitParquet.
type ParquetSplitOptions struct {
	// PartSize is the size a part aims for, in bytes; required.
	PartSize int64
	// Names, when non-nil, renames the top-level columns in order (one name
	// per column, such as the cleaned names a destination uses).
	Names []string
}

// splitName names the file in SplitParquet's errors, which is given no name:
// the caller wraps them with its own.
const splitName = "Parquet file to split"

const (
	// splitCopyBuffer is the size of each read when row groups are copied.
	splitCopyBuffer = 8 << 20
	// rechunkFlushBytes is how much a re-chunked part buffers (as estimated
	// by parquet-go, uncompressed) before it writes a row group.
	rechunkFlushBytes = 16 << 20
	rechunkBatchRows  = 256
)

// SplitParquet cuts a Parquet file into parts of about opts.PartSize bytes,
// each a complete Parquet file with the same schema (renamed when
// opts.Names is set). It calls next for the writer of each part, numbered
// from 1, writes the part, and closes that writer; it returns how many parts
// it wrote.
//
// Consecutive row groups go into a part while it stays within PartSize, and
// are copied byte for byte (their pages are not decoded), so values are
// preserved exactly, whatever their type or encoding. A single row group
// larger than PartSize is re-chunked by rows into as many parts as its size
// needs: its rows are decoded and written again by parquet-go (each column
// with the file's compression codec), in row groups of about 16 MiB before
// compression. A file without row groups gives one part with the schema and
// no rows.
//
// The parts keep the file's schema elements, statistics and key/value
// metadata, except that a rename drops the "ARROW:schema" and "pandas"
// entries, which spell the old names; they have no page index or bloom
// filters (readers do without them).
//
// Memory is bounded by an 8 MiB copy buffer, or for a re-chunked row group
// by its pages and the part's current row group. On error SplitParquet
// returns it, with the number of parts begun, without closing the current
// part's writer: the caller aborts the upload.
func SplitParquet(ctx context.Context, r io.ReaderAt, size int64, opts ParquetSplitOptions, next func(part int) (io.WriteCloser, error)) (parts int, err error) {
	if opts.PartSize <= 0 {
		return 0, fmt.Errorf("fileformat: SplitParquet needs a PartSize above 0, got %d", opts.PartSize)
	}
	if next == nil {
		return 0, errors.New("fileformat: SplitParquet needs a next function that opens each part")
	}
	pf, err := openParquetFile(r, size, splitName, true)
	if err != nil {
		return 0, err
	}
	s := &pqSplitter{ctx: ctx, r: r, pf: pf, opts: opts, next: next}
	if err := s.prepare(); err != nil {
		return 0, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("fileformat: %s: corrupt Parquet file (in part %d): %v", splitName, s.parts, p)
		}
		parts = s.parts
	}()
	md := pf.md
	var group []int
	var groupBytes int64
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		err := s.copyPart(group)
		group, groupBytes = group[:0], 0
		return err
	}
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		b := rowGroupBytes(rg)
		if b > opts.PartSize && rg.NumRows > 1 {
			if err := flush(); err != nil {
				return s.parts, err
			}
			if err := s.rechunk(i, b); err != nil {
				return s.parts, err
			}
			continue
		}
		if len(group) > 0 && groupBytes+b > opts.PartSize {
			if err := flush(); err != nil {
				return s.parts, err
			}
		}
		group = append(group, i)
		groupBytes += b
	}
	if err := flush(); err != nil {
		return s.parts, err
	}
	if s.parts == 0 {
		if err := s.copyPart(nil); err != nil {
			return s.parts, err
		}
	}
	return s.parts, nil
}

type pqSplitter struct {
	ctx   context.Context
	r     io.ReaderAt
	pf    *parquetFile
	opts  ParquetSplitOptions
	next  func(part int) (io.WriteCloser, error)
	parts int

	schema  []format.SchemaElement // renamed
	kv      []format.KeyValue
	topOf   []int // leaf column → top-level field
	copyBuf []byte
}

// prepare checks the options against the schema and builds the schema the
// parts carry.
func (s *pqSplitter) prepare() error {
	md, plan := s.pf.md, s.pf.plan
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			cc := &md.RowGroups[i].Columns[j]
			if cc.CryptoMetadata.Value != nil || len(cc.EncryptedColumnMetadata) > 0 {
				return fmt.Errorf("fileformat: %s: column %q is encrypted, which sluice does not split: decrypt the file first", splitName, pathString(cc.MetaData.PathInSchema))
			}
		}
	}
	s.topOf = make([]int, plan.leaves)
	for t, f := range plan.fields {
		for c := f.first; c < f.first+f.nleaves; c++ {
			s.topOf[c] = t
		}
	}
	s.schema = slices.Clone(md.Schema)
	s.kv = slices.Clone(md.KeyValueMetadata)
	if s.opts.Names == nil {
		return nil
	}
	if len(s.opts.Names) != len(plan.fields) {
		return fmt.Errorf("fileformat: SplitParquet: %d names given for %d columns: give one name per top-level column, in order", len(s.opts.Names), len(plan.fields))
	}
	seen := make(map[string]int, len(s.opts.Names))
	for i, n := range s.opts.Names {
		if n == "" {
			return fmt.Errorf("fileformat: SplitParquet: the new name of column %d (%q) is empty", i+1, plan.fields[i].name)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("fileformat: SplitParquet: columns %d and %d would both be named %q", j+1, i+1, n)
		}
		seen[n] = i
	}
	// The top-level fields are the root's children in the depth-first list.
	idx := 1
	for i := range plan.fields {
		s.schema[idx].Name = s.opts.Names[i]
		idx = skipSchemaSubtree(s.schema, idx)
	}
	// These entries describe the columns by their old names; a reader that
	// trusts them would look for columns that are no longer there.
	s.kv = slices.DeleteFunc(s.kv, func(kv format.KeyValue) bool {
		return kv.Key == "ARROW:schema" || kv.Key == "pandas"
	})
	return nil
}

// skipSchemaSubtree returns the index after the subtree starting at i.
func skipSchemaSubtree(schema []format.SchemaElement, i int) int {
	n := int(schema[i].NumChildren.V)
	i++
	for range n {
		i = skipSchemaSubtree(schema, i)
	}
	return i
}

// renameChunk points a column chunk's path at the new top-level name.
func (s *pqSplitter) renameChunk(cc *format.ColumnChunk, leaf int) {
	if s.opts.Names == nil || len(cc.MetaData.PathInSchema) == 0 {
		return
	}
	p := slices.Clone(cc.MetaData.PathInSchema)
	p[0] = s.opts.Names[s.topOf[leaf]]
	cc.MetaData.PathInSchema = p
}

// pqPartWriter counts what reaches the part, and can swallow what parquet-go
// writes after the row groups (its page index and footer), which the part
// replaces with its own footer.
type pqPartWriter struct {
	ctx     context.Context
	w       io.Writer
	n       int64
	discard bool
}

func (p *pqPartWriter) Write(b []byte) (int, error) {
	if p.discard {
		return len(b), nil
	}
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

func (s *pqSplitter) open() (io.WriteCloser, *pqPartWriter, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, nil, err
	}
	part := s.parts + 1
	w, err := s.next(part)
	if err != nil {
		return nil, nil, fmt.Errorf("fileformat: opening part %d of the split Parquet file: %w", part, err)
	}
	if w == nil {
		return nil, nil, fmt.Errorf("fileformat: opening part %d of the split Parquet file: next returned no writer", part)
	}
	s.parts = part
	return w, &pqPartWriter{ctx: s.ctx, w: w}, nil
}

// copyPart writes the row groups given, byte for byte, as one part.
func (s *pqSplitter) copyPart(groups []int) error {
	wc, pw, err := s.open()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(pw, "PAR1"); err != nil {
		return s.writeErr(err)
	}
	md := s.pf.md
	var rgs []format.RowGroup
	var rows int64
	// Chunks land in the part in file order; adjacent ones (usually all of
	// a part's) form runs that are copied in a few large reads.
	var runs []byteRange
	pos := pw.n // where the next chunk lands in the part
	for ord, g := range groups {
		src := &md.RowGroups[g]
		rg := *src
		rg.Columns = slices.Clone(src.Columns)
		rg.Ordinal = int16(ord)
		rg.TotalCompressedSize = 0
		order := make([]int, len(rg.Columns))
		for j := range order {
			order[j] = j
		}
		slices.SortFunc(order, func(a, b int) int {
			sa, _ := chunkRange(&rg.Columns[a])
			sb, _ := chunkRange(&rg.Columns[b])
			return int(min(max(sa-sb, -1), 1))
		})
		prevEnd := int64(0)
		for k, j := range order {
			cc := &rg.Columns[j]
			start, length := chunkRange(cc)
			if k > 0 && start < prevEnd {
				return fmt.Errorf("fileformat: %s: row group %d: column chunks overlap at byte %d: corrupt file", splitName, g+1, start)
			}
			prevEnd = start + length
			if n := len(runs); n > 0 && start == runs[n-1].end() {
				runs[n-1].length += length
			} else {
				runs = append(runs, byteRange{start, length})
			}
			s.moveChunk(cc, start, length, pos-start)
			s.renameChunk(cc, j)
			if k == 0 {
				rg.FileOffset = pos
			}
			pos += length
			rg.TotalCompressedSize += length
		}
		rows += rg.NumRows
		rgs = append(rgs, rg)
	}
	for _, r := range runs {
		if err := s.copyRange(pw, r.start, r.length); err != nil {
			return err
		}
	}
	if pw.n != pos {
		return fmt.Errorf("fileformat: %s: copied %d bytes where %d were planned", splitName, pw.n, pos)
	}
	fmd := format.FileMetaData{
		Version:          md.Version,
		Schema:           s.schema,
		NumRows:          rows,
		RowGroups:        rgs,
		KeyValueMetadata: s.kv,
		CreatedBy:        md.CreatedBy,
		ColumnOrders:     md.ColumnOrders,
	}
	return s.finish(wc, pw, &fmd)
}

type byteRange struct{ start, length int64 }

func (r byteRange) end() int64 { return r.start + r.length }

// moveChunk shifts a copied chunk's offsets by delta and drops what the
// part does not carry (page index, bloom filter).
func (s *pqSplitter) moveChunk(cc *format.ColumnChunk, start, length, delta int64) {
	m := &cc.MetaData
	m.DataPageOffset += delta
	if m.DictionaryPageOffset > 0 {
		m.DictionaryPageOffset += delta
	}
	if m.IndexPageOffset > 0 {
		m.IndexPageOffset += delta
	}
	if cc.FileOffset >= start && cc.FileOffset <= start+length {
		cc.FileOffset += delta
	} else {
		cc.FileOffset = start + delta
	}
	m.BloomFilterOffset, m.BloomFilterLength = 0, 0
	cc.OffsetIndexOffset, cc.OffsetIndexLength = 0, 0
	cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0
}

func (s *pqSplitter) copyRange(pw *pqPartWriter, start, length int64) error {
	if s.copyBuf == nil {
		s.copyBuf = make([]byte, min(splitCopyBuffer, s.pf.dataEnd))
	}
	for length > 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		b := s.copyBuf[:min(int64(len(s.copyBuf)), length)]
		if err := readAtFull(s.r, b, start); err != nil {
			return fmt.Errorf("fileformat: %s: reading bytes %d to %d: %w", splitName, start, start+int64(len(b)), err)
		}
		if _, err := pw.Write(b); err != nil {
			return s.writeErr(err)
		}
		start += int64(len(b))
		length -= int64(len(b))
	}
	return nil
}

func (s *pqSplitter) writeErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("fileformat: writing part %d of the split Parquet file: %w", s.parts, err)
}

// finish writes the footer and closes the part.
func (s *pqSplitter) finish(wc io.WriteCloser, pw *pqPartWriter, fmd *format.FileMetaData) error {
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), fmd)
	if err != nil {
		return fmt.Errorf("fileformat: encoding the footer of part %d: %w", s.parts, err)
	}
	footer = binary.LittleEndian.AppendUint32(footer, uint32(len(footer)))
	footer = append(footer, "PAR1"...)
	if _, err := pw.Write(footer); err != nil {
		return s.writeErr(err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("fileformat: closing part %d of the split Parquet file: %w", s.parts, err)
	}
	return nil
}

// rechunk cuts row group g, of b bytes, into parts by rows: its rows are
// decoded and written again, since a part must end at a row group boundary.
func (s *pqSplitter) rechunk(g int, b int64) error {
	md := s.pf.md
	rg := &md.RowGroups[g]
	n := rg.NumRows
	k := min((b+s.opts.PartSize-1)/s.opts.PartSize, n)
	per := (n + k - 1) / k

	lo, hi := rowGroupSpan(rg)
	if err := s.pf.src.prefetch(lo, hi); err != nil {
		return fmt.Errorf("fileformat: %s: reading row group %d: %w", splitName, g+1, err)
	}
	defer func() { s.pf.src.win = nil }()
	rows := s.pf.file.RowGroups()[g].Rows()
	defer rows.Close()
	buf := make([]parquet.Row, rechunkBatchRows)
	left := n
	for left > 0 {
		if err := s.rechunkPart(g, rows, buf, min(per, left)); err != nil {
			return err
		}
		left -= min(per, left)
	}
	return nil
}

// rechunkPart writes the next count rows of rows as one part.
func (s *pqSplitter) rechunkPart(g int, rows parquet.Rows, buf []parquet.Row, count int64) error {
	wc, pw, err := s.open()
	if err != nil {
		return err
	}
	w := parquet.NewWriter(pw, s.pf.file.Schema(), parquet.WriteBufferSize(0))
	for count > 0 {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		batch := buf[:min(int64(len(buf)), count)]
		n, rerr := rows.ReadRows(batch)
		if n > 0 {
			if _, err := w.WriteRows(batch[:n]); err != nil {
				return s.writeErr(err)
			}
			count -= int64(n)
			if w.Size()-pw.n > rechunkFlushBytes {
				if err := w.Flush(); err != nil {
					return s.writeErr(err)
				}
			}
		}
		switch {
		case count == 0:
		case rerr != nil && !errors.Is(rerr, io.EOF):
			return fmt.Errorf("fileformat: %s: reading row group %d: %w", splitName, g+1, rerr)
		case rerr != nil || n == 0:
			return fmt.Errorf("fileformat: %s: row group %d ended %d rows before the %d its metadata promises: corrupt file", splitName, g+1, count, s.pf.md.RowGroups[g].NumRows)
		}
	}
	if err := w.Flush(); err != nil {
		return s.writeErr(err)
	}
	// parquet-go's page index and footer describe the old names and a
	// schema rebuilt from its own types; the part gets the file's own
	// schema instead, which its pages match column for column.
	pw.discard = true
	if err := w.Close(); err != nil {
		return s.writeErr(err)
	}
	pw.discard = false
	wmd := w.File().Metadata()
	var total int64
	rgs := make([]format.RowGroup, len(wmd.RowGroups))
	for i := range wmd.RowGroups {
		rg := wmd.RowGroups[i]
		rg.Columns = slices.Clone(rg.Columns)
		for j := range rg.Columns {
			cc := &rg.Columns[j]
			cc.MetaData.BloomFilterOffset, cc.MetaData.BloomFilterLength = 0, 0
			cc.OffsetIndexOffset, cc.OffsetIndexLength = 0, 0
			cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0
			s.renameChunk(cc, j)
		}
		rg.Ordinal = int16(i)
		total += rg.NumRows
		rgs[i] = rg
	}
	fmd := format.FileMetaData{
		Version:          wmd.Version,
		Schema:           s.schema,
		NumRows:          total,
		RowGroups:        rgs,
		KeyValueMetadata: s.kv,
		CreatedBy:        wmd.CreatedBy,
		ColumnOrders:     s.pf.md.ColumnOrders,
	}
	return s.finish(wc, pw, &fmd)
}
