package fileformat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicedata/sluice/internal/contract"
)

// How the Parquet code reads its source. On S3 every ReadAt is a ranged GET,
// so the footer comes in one read of the file's tail and a row group in one
// read of its column chunks; only a row group larger than
// parquetPrefetchMax is read column by column, through parquet-go's
// per-column buffers.
const (
	parquetTailRead = 256 << 10
	// parquetColumnBuffers caps the sum of parquet-go's per-column read
	// buffers; each column gets a share, within the bounds below.
	parquetColumnBuffers = 16 << 20
	parquetMinColumnBuf  = 64 << 10
	parquetMaxColumnBuf  = 1 << 20
	// parquetBatchRows is how many rows one ReadRows call decodes.
	parquetBatchRows = 128
)

// parquetPrefetchMax is the largest row group read in one go; a variable
// so that tests reach the column-by-column path with small files.
var parquetPrefetchMax int64 = 32 << 20

// ParquetMeta is what a Parquet file's footer tells without reading any data.
type ParquetMeta struct {
	Columns   []Column
	Rows      int64
	RowGroups []RowGroupMeta
}

// RowGroupMeta describes one row group.
type RowGroupMeta struct {
	Rows int64
	// CompressedBytes is the size of the row group's column chunks in the
	// file.
	CompressedBytes int64
}

// ParquetInfo reads a Parquet file's footer (usually in a single read of
// the file's last 256 KiB): its columns with their sluice types, and its row
// count in total and per row group.
func ParquetInfo(r io.ReaderAt, size int64, name string) (ParquetMeta, error) {
	pf, err := openParquetFile(r, size, name, false)
	if err != nil {
		return ParquetMeta{}, err
	}
	md := pf.md
	meta := ParquetMeta{Columns: pf.plan.columns, Rows: md.NumRows}
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		meta.RowGroups = append(meta.RowGroups, RowGroupMeta{Rows: rg.NumRows, CompressedBytes: rowGroupBytes(rg)})
	}
	return meta, nil
}

// OpenParquet streams a Parquet file's rows, row group by row group.
//
// Column types come from the file's schema:
//
//	BOOLEAN                          BOOLEAN
//	INT32 / INT(32)                  INT
//	INT(8), INT(16), UINT(8)         SHORT
//	UINT(16)                         INT
//	UINT(32), INT64 / INT(64)        LONG
//	UINT(64)                         DECIMAL(20,0), so that no value overflows
//	FLOAT, FLOAT16                   FLOAT
//	DOUBLE                           DOUBLE
//	DECIMAL(p,s), any physical type  DECIMAL(p,s), values contract.DecimalText
//	DATE                             NAIVE_DATE
//	TIMESTAMP, UTC-adjusted          UTC_DATETIME
//	TIMESTAMP, not UTC-adjusted      NAIVE_DATETIME
//	INT96 (legacy timestamps)        NAIVE_DATETIME, as DuckDB and Spark read it
//	TIME                             STRING such as "13:45:00.250000"
//	STRING, ENUM, UTF8               STRING
//	UUID                             STRING such as "0f8fad5b-d9cb-469f-a165-70867728950e"
//	JSON                             JSON (json.RawMessage)
//	BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY BINARY (also BSON, INTERVAL, geometry)
//	NULL (UNKNOWN)                   Unspecified: every value is nil
//	groups: LIST, MAP, structs       JSON: lists as arrays, maps and structs
//	                                 as objects (map keys as strings)
//
// Inside JSON values, decimals are exact numbers, dates and timestamps are
// ISO 8601 strings (with a Z when UTC-adjusted), binary is base64, and NaN
// and infinities are null since JSON has no spelling for them.
//
// Memory is bounded by one row group's compressed column chunks when they
// are at most 32 MiB (read in one ReadAt), else by parquet-go's page
// buffers, plus a batch of 128 decoded rows.
func OpenParquet(r io.ReaderAt, size int64, name string) (Rows, error) {
	pf, err := openParquetFile(r, size, name, true)
	if err != nil {
		return nil, err
	}
	pr := &parquetRows{
		pf:     pf,
		name:   name,
		buf:    make([]parquet.Row, parquetBatchRows),
		vals:   make([]any, len(pf.plan.fields)),
		cursor: make([][]parquet.Value, pf.plan.leaves),
		pos:    make([]int, pf.plan.leaves),
	}
	return pr, nil
}

// parquetFile is an open Parquet file with its sluice reading plan.
type parquetFile struct {
	name string
	src  *parquetSource
	md   *format.FileMetaData
	file *parquet.File // nil when only the footer was asked for
	plan *pqPlan
	// dataEnd is where the footer starts: column chunks must end before it.
	dataEnd int64
}

// openParquetFile reads and checks the footer. parquet-go can panic on a
// corrupt footer; that becomes an error naming the file.
func openParquetFile(r io.ReaderAt, size int64, name string, withFile bool) (pf *parquetFile, err error) {
	if size < 12 {
		return nil, fmt.Errorf("fileformat: %s: %d bytes is too small for a Parquet file (truncated, or not Parquet)", name, size)
	}
	src := &parquetSource{r: r, size: size}
	n := min(size, parquetTailRead)
	src.tail = make([]byte, n)
	src.tailOff = size - n
	if err := readAtFull(r, src.tail, src.tailOff); err != nil {
		return nil, fmt.Errorf("fileformat: %s: reading the Parquet footer: %w", name, err)
	}
	magic := string(src.tail[n-4:])
	switch magic {
	case "PAR1":
	case "PARE":
		return nil, fmt.Errorf("fileformat: %s: the Parquet file is encrypted, which sluice does not read: decrypt it first", name)
	default:
		return nil, fmt.Errorf("fileformat: %s: no Parquet footer (the file should end in \"PAR1\", it ends in %q): truncated, or not a Parquet file", name, magic)
	}
	footerLen := int64(binary.LittleEndian.Uint32(src.tail[n-8 : n-4]))
	if footerLen+12 > size {
		return nil, fmt.Errorf("fileformat: %s: the Parquet footer claims %d bytes but the file has %d: truncated or corrupt", name, footerLen, size)
	}
	if footerLen+8 > n {
		// A footer larger than the tail read: one more read for all of it.
		src.tail = make([]byte, footerLen+8)
		src.tailOff = size - footerLen - 8
		if err := readAtFull(r, src.tail, src.tailOff); err != nil {
			return nil, fmt.Errorf("fileformat: %s: reading the Parquet footer: %w", name, err)
		}
	}
	dataEnd := size - footerLen - 8
	defer func() {
		if p := recover(); p != nil {
			pf, err = nil, fmt.Errorf("fileformat: %s: corrupt Parquet file: %v", name, p)
		}
	}()
	footer := src.tail[int64(len(src.tail))-footerLen-8 : int64(len(src.tail))-8]
	md := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer, md); err != nil {
		return nil, fmt.Errorf("fileformat: %s: corrupt Parquet footer: %w", name, err)
	}
	plan, err := newPQPlan(md.Schema)
	if err != nil {
		return nil, fmt.Errorf("fileformat: %s: %w", name, err)
	}
	if err := checkRowGroups(md, plan.leaves, dataEnd); err != nil {
		return nil, fmt.Errorf("fileformat: %s: %w", name, err)
	}
	pf = &parquetFile{name: name, src: src, md: md, plan: plan, dataEnd: dataEnd}
	if !withFile {
		return pf, nil
	}
	// parquet-go gives every column its own read buffer; sharing a budget
	// between the columns bounds their sum.
	buf := parquetColumnBuffers / max(plan.leaves, 1)
	buf = min(max(buf, parquetMinColumnBuf), parquetMaxColumnBuf)
	if maxRowGroupSpan(md) <= parquetPrefetchMax {
		// Every row group is read whole into memory first, so the column
		// buffers only copy from it: large ones would double the memory
		// (8 MiB of 1 MiB buffers for an 8-column file) for nothing.
		buf = parquetMinColumnBuf
	}
	f, err := parquet.OpenFile(src, size,
		parquet.SkipMagicBytes(true), // the footer's magic is checked above; the head's would cost a read
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
		parquet.OptimisticRead(false),
		parquet.ReadBufferSize(buf),
	)
	if err != nil {
		return nil, fmt.Errorf("fileformat: %s: not a valid Parquet file: %w", name, err)
	}
	src.tail = nil // the footer is decoded; keep no copy
	pf.file = f
	return pf, nil
}

// checkRowGroups rejects column chunks outside the data part of the file,
// which a truncated or corrupt file would otherwise turn into confusing read
// errors deep inside parquet-go.
func checkRowGroups(md *format.FileMetaData, leaves int, dataEnd int64) error {
	var total int64
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		if len(rg.Columns) != leaves {
			return fmt.Errorf("corrupt Parquet footer: row group %d has %d column chunks, the schema %d columns", i+1, len(rg.Columns), leaves)
		}
		if rg.NumRows < 0 {
			return fmt.Errorf("corrupt Parquet footer: row group %d has %d rows", i+1, rg.NumRows)
		}
		for j := range rg.Columns {
			cc := &rg.Columns[j]
			if cc.FilePath != "" {
				return fmt.Errorf("row group %d keeps column %d in another file (%q), which sluice does not follow", i+1, j+1, cc.FilePath)
			}
			start, length := chunkRange(cc)
			if start < 4 || length < 0 || start+length > dataEnd {
				return fmt.Errorf("row group %d, column %q: its data (bytes %d to %d) is not inside the file's data (bytes 4 to %d): truncated or corrupt",
					i+1, pathString(cc.MetaData.PathInSchema), start, start+length, dataEnd)
			}
		}
		total += rg.NumRows
	}
	if total != md.NumRows {
		return fmt.Errorf("corrupt Parquet footer: %d rows in total, but its row groups add up to %d", md.NumRows, total)
	}
	return nil
}

// chunkRange is where a column chunk's pages lie in the file.
func chunkRange(cc *format.ColumnChunk) (start, length int64) {
	m := &cc.MetaData
	start = m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
		start = m.DictionaryPageOffset
	}
	if m.IndexPageOffset > 0 && m.IndexPageOffset < start {
		start = m.IndexPageOffset
	}
	return start, m.TotalCompressedSize
}

// rowGroupSpan is the byte range that covers all of a row group's chunks.
func rowGroupSpan(rg *format.RowGroup) (lo, hi int64) {
	lo, hi = math.MaxInt64, 0
	for j := range rg.Columns {
		s, l := chunkRange(&rg.Columns[j])
		lo, hi = min(lo, s), max(hi, s+l)
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// maxRowGroupSpan is the largest byte range a row group's chunks cover.
func maxRowGroupSpan(md *format.FileMetaData) int64 {
	var m int64
	for i := range md.RowGroups {
		lo, hi := rowGroupSpan(&md.RowGroups[i])
		m = max(m, hi-lo)
	}
	return m
}

func rowGroupBytes(rg *format.RowGroup) int64 {
	if rg.TotalCompressedSize > 0 {
		return rg.TotalCompressedSize
	}
	var n int64
	for j := range rg.Columns {
		n += rg.Columns[j].MetaData.TotalCompressedSize
	}
	return n
}

func pathString(p []string) string { return strings.Join(p, ".") }

// parquetSource serves parquet-go's reads: from the footer read while
// opening, from the current row group when it was read whole, and otherwise
// from the underlying ReaderAt.
type parquetSource struct {
	r    io.ReaderAt
	size int64

	tail    []byte
	tailOff int64

	win    []byte
	winOff int64
}

func (s *parquetSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if n, ok := pqServe(p, off, s.tail, s.tailOff, s.size); ok {
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	if n, ok := pqServe(p, off, s.win, s.winOff, s.size); ok {
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	return s.r.ReadAt(p, off)
}

// pqServe copies p from buf (which holds the file's bytes from bufOff) when
// buf covers it, or covers everything up to the end of the file.
func pqServe(p []byte, off int64, buf []byte, bufOff, size int64) (int, bool) {
	if len(buf) == 0 || off < bufOff {
		return 0, false
	}
	end := bufOff + int64(len(buf))
	if off+int64(len(p)) <= end || (end == size && off <= end) {
		return copy(p, buf[off-bufOff:]), true
	}
	return 0, false
}

// prefetch reads a row group's byte range in one read when it is small
// enough, reusing the buffer of the previous one.
func (s *parquetSource) prefetch(lo, hi int64) error {
	s.win = s.win[:0]
	if hi-lo <= 0 || hi-lo > parquetPrefetchMax {
		return nil
	}
	n := int(hi - lo)
	if cap(s.win) < n {
		s.win = make([]byte, n)
	}
	s.win = s.win[:n]
	if err := readAtFull(s.r, s.win, lo); err != nil {
		s.win = s.win[:0]
		return err
	}
	s.winOff = lo
	return nil
}

// readAtFull is ReadAt that treats a short read as an error even when the
// ReaderAt reports none.
func readAtFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("short read at offset %d: got %d of %d bytes (truncated file?): %w", off, n, len(p), io.ErrUnexpectedEOF)
	}
	return err
}

// parquetRows implements Rows for a Parquet file.
type parquetRows struct {
	pf   *parquetFile
	name string

	rg   int // next row group
	rows parquet.Rows
	eof  bool // rows said io.EOF with its last batch
	buf  []parquet.Row
	n, i int

	row    int64 // rows returned so far, for messages
	vals   []any
	cursor [][]parquet.Value // per leaf column: its values in the current row
	pos    []int
	asm    pqAssembler
	err    error
	closed bool
}

func (r *parquetRows) Columns() []Column { return r.pf.plan.columns }
func (r *parquetRows) Values() []any     { return r.vals }
func (r *parquetRows) Err() error        { return r.err }

func (r *parquetRows) Close() error {
	r.closed = true
	r.closeRowGroup()
	r.pf.src.win = nil
	return nil
}

func (r *parquetRows) closeRowGroup() {
	if r.rows != nil {
		func() {
			defer func() { _ = recover() }()
			r.rows.Close()
		}()
		r.rows = nil
	}
}

func (r *parquetRows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	for r.i >= r.n {
		if !r.fill() {
			return false
		}
	}
	row := r.buf[r.i]
	r.i++
	r.row++
	if err := r.convert(row); err != nil {
		r.err = err
		r.closeRowGroup()
		return false
	}
	return true
}

// fill reads the next batch of rows, moving to the next row group when one
// ends. It returns false at the end of the file or on error.
func (r *parquetRows) fill() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.err = fmt.Errorf("fileformat: %s: corrupt Parquet file (row group %d of %d): %v", r.name, max(r.rg, 1), len(r.pf.md.RowGroups), p)
			r.closeRowGroup()
			ok = false
		}
	}()
	r.i, r.n = 0, 0
	if r.rows != nil && r.eof {
		r.closeRowGroup()
	}
	if r.rows == nil {
		groups := r.pf.file.RowGroups()
		if r.rg >= len(groups) {
			return false
		}
		md := &r.pf.md.RowGroups[r.rg]
		lo, hi := rowGroupSpan(md)
		if err := r.pf.src.prefetch(lo, hi); err != nil {
			r.err = fmt.Errorf("fileformat: %s: reading row group %d of %d: %w", r.name, r.rg+1, len(groups), err)
			return false
		}
		r.rows = groups[r.rg].Rows()
		r.rg++
		r.eof = false
	}
	n, err := r.rows.ReadRows(r.buf)
	r.n = n
	switch {
	case errors.Is(err, io.EOF):
		r.eof = true
	case err != nil:
		r.err = fmt.Errorf("fileformat: %s: reading row group %d of %d: %w", r.name, r.rg, len(r.pf.md.RowGroups), err)
		r.closeRowGroup()
		return false
	case n == 0:
		// No rows and no EOF would loop forever: treat as the end of the
		// row group.
		r.eof = true
	}
	return true
}

func (r *parquetRows) convert(row parquet.Row) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("fileformat: %s: row %d: corrupt Parquet data: %v", r.name, r.row, p)
		}
	}()
	plan := r.pf.plan
	if plan.flat {
		if len(row) != len(plan.fields) {
			return fmt.Errorf("fileformat: %s: row %d: %d values for %d columns: corrupt Parquet data", r.name, r.row, len(row), len(plan.fields))
		}
		for j, f := range plan.fields {
			v, err := f.leaf.value(row[j])
			if err != nil {
				return fmt.Errorf("fileformat: %s: row %d, column %q: %w", r.name, r.row, f.name, err)
			}
			r.vals[j] = v
		}
		return nil
	}
	// Values come grouped by leaf column, in column order.
	clear(r.cursor)
	for k := 0; k < len(row); {
		c := row[k].Column()
		s := k
		for k < len(row) && row[k].Column() == c {
			k++
		}
		if c < 0 || c >= len(r.cursor) || r.cursor[c] != nil {
			return fmt.Errorf("fileformat: %s: row %d: values of leaf column %d out of order: corrupt Parquet data", r.name, r.row, c+1)
		}
		r.cursor[c] = row[s:k]
	}
	for c := range r.cursor {
		if len(r.cursor[c]) == 0 {
			return fmt.Errorf("fileformat: %s: row %d: no value for column %q: corrupt Parquet data", r.name, r.row, plan.paths[c])
		}
		r.pos[c] = 0
	}
	a := &r.asm
	a.cols, a.pos = r.cursor, r.pos
	for j, f := range plan.fields {
		if f.leafCol >= 0 && !f.repeated {
			v, err := f.leaf.value(r.cursor[f.leafCol][0])
			if err != nil {
				return fmt.Errorf("fileformat: %s: row %d, column %q: %w", r.name, r.row, f.name, err)
			}
			r.pos[f.leafCol] = 1
			r.vals[j] = v
			continue
		}
		v, err := a.top(f)
		if err != nil {
			return fmt.Errorf("fileformat: %s: row %d, column %q: %w", r.name, r.row, f.name, err)
		}
		r.vals[j] = v
	}
	for c := range r.cursor {
		if r.pos[c] != len(r.cursor[c]) {
			return fmt.Errorf("fileformat: %s: row %d: column %q has %d values, %d were used: corrupt repetition levels", r.name, r.row, plan.paths[c], len(r.cursor[c]), r.pos[c])
		}
	}
	return nil
}

// pqPlan is how the top-level fields of a Parquet schema become sluice
// columns.
type pqPlan struct {
	fields  []*pqNode
	columns []Column
	leaves  int
	paths   []string // per leaf column, for messages
	flat    bool     // every top-level field is a non-repeated leaf
}

type pqKind uint8

const (
	pqLeafNode pqKind = iota
	pqStruct
	pqList
	pqMap
)

// pqNode is a schema node with the levels needed to assemble nested values.
type pqNode struct {
	name     string
	key      []byte // `"name":` for objects
	kind     pqKind
	optional bool
	repeated bool
	def, rep int // the node's own definition and repetition levels

	children []*pqNode
	first    int // first leaf column under the node
	nleaves  int
	leafCol  int // the leaf's column, -1 for groups
	leaf     *pqLeaf

	// For a LIST: elemChild says the element is the repeated group's only
	// child rather than the repeated node itself.
	elemChild bool
}

func newPQPlan(schema []format.SchemaElement) (*pqPlan, error) {
	if len(schema) == 0 {
		return nil, errors.New("corrupt Parquet footer: no schema")
	}
	b := &planBuilder{schema: schema, next: 1}
	root := &schema[0]
	nchildren := int(root.NumChildren.V)
	plan := &pqPlan{flat: true}
	for range nchildren {
		n, err := b.node(0, 0, 1)
		if err != nil {
			return nil, err
		}
		plan.fields = append(plan.fields, n)
		col := Column{Name: n.name, Type: contract.JSON}
		if n.leafCol >= 0 && !n.repeated {
			col = n.leaf.col
			col.Name = n.name
		} else {
			plan.flat = false
		}
		plan.columns = append(plan.columns, col)
	}
	if b.next != len(schema) {
		return nil, fmt.Errorf("corrupt Parquet schema: %d elements, %d are reachable from the root", len(schema), b.next)
	}
	plan.leaves = b.leaves
	plan.paths = b.paths
	return plan, nil
}

type planBuilder struct {
	schema []format.SchemaElement
	next   int
	leaves int
	paths  []string
	stack  []string
}

// maxNesting bounds recursion on a hostile schema.
const maxNesting = 100

func (b *planBuilder) node(def, rep, depth int) (*pqNode, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("Parquet schema nested more than %d levels deep", maxNesting)
	}
	if b.next >= len(b.schema) {
		return nil, errors.New("corrupt Parquet schema: it promises more fields than it has")
	}
	el := &b.schema[b.next]
	b.next++
	n := &pqNode{name: el.Name, leafCol: -1, first: b.leaves}
	n.key = appendJSONString(nil, el.Name)
	n.key = append(n.key, ':')
	switch el.RepetitionType.V {
	case format.Optional:
		n.optional = true
		def++
	case format.Repeated:
		n.repeated = true
		def++
		rep++
	}
	n.def, n.rep = def, rep
	if !el.NumChildren.Valid || el.Type.Valid {
		leaf, err := leafOf(el)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", el.Name, err)
		}
		n.kind, n.leaf, n.leafCol, n.nleaves = pqLeafNode, leaf, b.leaves, 1
		b.leaves++
		b.paths = append(b.paths, pathString(append(b.stack, el.Name)))
		return n, nil
	}
	if el.NumChildren.V < 0 {
		return nil, fmt.Errorf("corrupt Parquet schema: group %q has %d children", el.Name, el.NumChildren.V)
	}
	b.stack = append(b.stack, el.Name)
	for range int(el.NumChildren.V) {
		c, err := b.node(def, rep, depth+1)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, c)
	}
	b.stack = b.stack[:len(b.stack)-1]
	n.nleaves = b.leaves - n.first
	n.kind = pqStruct
	ct, hasCT := el.ConvertedType.Get()
	switch el.LogicalType.Value.(type) {
	case *format.ListType:
		n.kind = pqList
	case *format.MapType:
		n.kind = pqMap
	default:
		if hasCT && ct == deprecated.List {
			n.kind = pqList
		} else if hasCT && (ct == deprecated.Map || ct == deprecated.MapKeyValue) {
			n.kind = pqMap
		}
	}
	// Shapes that do not follow the LIST and MAP layouts are read as what
	// they are: structs with repeated fields.
	switch n.kind {
	case pqList:
		if len(n.children) != 1 || !n.children[0].repeated {
			n.kind = pqStruct
			break
		}
		// The backward-compatibility rules of the Parquet spec's LIST.
		r := n.children[0]
		n.elemChild = r.kind != pqLeafNode && len(r.children) == 1 &&
			r.name != "array" && r.name != n.name+"_tuple"
	case pqMap:
		if len(n.children) != 1 || !n.children[0].repeated || n.children[0].kind == pqLeafNode ||
			len(n.children[0].children) == 0 || n.children[0].children[0].kind != pqLeafNode {
			n.kind = pqStruct
		}
	}
	return n, nil
}

type leafKind uint8

const (
	lkBool leafKind = iota
	lkInt32
	lkUint32
	lkInt64
	lkUint64
	lkFloat
	lkDouble
	lkFloat16
	lkDecimalInt // INT32 or INT64 unscaled
	lkDecimalBytes
	lkDate
	lkTimestamp
	lkInt96
	lkTime
	lkString
	lkUUID
	lkJSON
	lkBinary
	lkNull
)

// pqLeaf converts the values of one leaf column.
type pqLeaf struct {
	kind  leafKind
	col   Column
	scale int
	unit  int64 // timestamps and times: nanoseconds per unit
	utc   bool
	big   big.Int
	// scratch holds a decimal's text before it becomes a string.
	scratch []byte
}

func leafOf(el *format.SchemaElement) (*pqLeaf, error) {
	if !el.Type.Valid {
		return nil, errors.New("corrupt Parquet schema: a leaf without a physical type")
	}
	phys := el.Type.V
	l := &pqLeaf{}
	need := func(ok bool, what string) error {
		if !ok {
			return fmt.Errorf("%s on physical type %s is not valid Parquet", what, phys)
		}
		return nil
	}
	set := func(k leafKind, t contract.Type) { l.kind, l.col.Type = k, t }
	decimal := func(p, s int32) error {
		if s < 0 || p <= 0 || s > p {
			return fmt.Errorf("DECIMAL(%d,%d) is not a valid decimal type", p, s)
		}
		l.col.Precision, l.col.Scale, l.scale = int(p), int(s), int(s)
		switch phys {
		case format.Int32, format.Int64:
			set(lkDecimalInt, contract.Decimal)
		case format.ByteArray, format.FixedLenByteArray:
			set(lkDecimalBytes, contract.Decimal)
		default:
			return need(false, "DECIMAL")
		}
		return nil
	}
	intType := func(bits int, signed bool) error {
		switch {
		case bits == 64 && phys == format.Int64 && signed:
			set(lkInt64, contract.Long)
		case bits == 64 && phys == format.Int64:
			set(lkUint64, contract.Decimal)
			l.col.Precision = 20
		case bits <= 32 && phys == format.Int32:
			switch {
			case signed && bits <= 16, !signed && bits <= 8:
				set(lkInt32, contract.Short)
			case signed || bits <= 16:
				set(lkInt32, contract.Int)
			default:
				set(lkUint32, contract.Long)
			}
		default:
			return fmt.Errorf("INT(%d, signed=%t) on physical type %s is not valid Parquet", bits, signed, phys)
		}
		return nil
	}
	timeUnit := func(u format.TimeUnit) int64 {
		switch u.Value.(type) {
		case *format.MilliSeconds:
			return 1e6
		case *format.NanoSeconds:
			return 1
		}
		return 1e3
	}
	switch lt := el.LogicalType.Value.(type) {
	case *format.StringType, *format.EnumType:
		set(lkString, contract.String)
		return l, need(phys == format.ByteArray || phys == format.FixedLenByteArray, "STRING")
	case *format.UUIDType:
		set(lkUUID, contract.String)
		return l, need(phys == format.FixedLenByteArray && el.TypeLength.V == 16, "UUID")
	case *format.JsonType:
		set(lkJSON, contract.JSON)
		return l, need(phys == format.ByteArray, "JSON")
	case *format.BsonType, *format.GeometryType, *format.GeographyType:
		set(lkBinary, contract.Binary)
		return l, need(phys == format.ByteArray || phys == format.FixedLenByteArray, "a binary logical type")
	case *format.DecimalType:
		return l, decimal(lt.Precision, lt.Scale)
	case *format.DateType:
		set(lkDate, contract.NaiveDate)
		return l, need(phys == format.Int32, "DATE")
	case *format.TimeType:
		set(lkTime, contract.String)
		l.unit = timeUnit(lt.Unit)
		return l, need((phys == format.Int32 && l.unit == 1e6) || (phys == format.Int64 && l.unit != 1e6), "TIME")
	case *format.TimestampType:
		set(lkTimestamp, contract.NaiveDateTime)
		if lt.IsAdjustedToUTC {
			l.col.Type, l.utc = contract.UTCDateTime, true
		}
		l.unit = timeUnit(lt.Unit)
		return l, need(phys == format.Int64, "TIMESTAMP")
	case *format.IntType:
		return l, intType(int(lt.BitWidth), lt.IsSigned)
	case *format.NullType:
		set(lkNull, contract.Unspecified)
		return l, nil
	case *format.Float16Type:
		set(lkFloat16, contract.Float)
		return l, need(phys == format.FixedLenByteArray && el.TypeLength.V == 2, "FLOAT16")
	}
	if ct, ok := el.ConvertedType.Get(); ok {
		switch ct {
		case deprecated.UTF8, deprecated.Enum:
			set(lkString, contract.String)
			return l, need(phys == format.ByteArray || phys == format.FixedLenByteArray, "UTF8")
		case deprecated.Json:
			set(lkJSON, contract.JSON)
			return l, need(phys == format.ByteArray, "JSON")
		case deprecated.Decimal:
			return l, decimal(el.Precision.V, el.Scale.V)
		case deprecated.Date:
			set(lkDate, contract.NaiveDate)
			return l, need(phys == format.Int32, "DATE")
		case deprecated.TimeMillis:
			set(lkTime, contract.String)
			l.unit = 1e6
			return l, need(phys == format.Int32, "TIME_MILLIS")
		case deprecated.TimeMicros:
			set(lkTime, contract.String)
			l.unit = 1e3
			return l, need(phys == format.Int64, "TIME_MICROS")
		case deprecated.TimestampMillis, deprecated.TimestampMicros:
			// The legacy annotations mean instants (UTC-adjusted).
			set(lkTimestamp, contract.UTCDateTime)
			l.utc, l.unit = true, 1e3
			if ct == deprecated.TimestampMillis {
				l.unit = 1e6
			}
			return l, need(phys == format.Int64, "TIMESTAMP")
		case deprecated.Int8:
			return l, intType(8, true)
		case deprecated.Int16:
			return l, intType(16, true)
		case deprecated.Int32:
			return l, intType(32, true)
		case deprecated.Int64:
			return l, intType(64, true)
		case deprecated.Uint8:
			return l, intType(8, false)
		case deprecated.Uint16:
			return l, intType(16, false)
		case deprecated.Uint32:
			return l, intType(32, false)
		case deprecated.Uint64:
			return l, intType(64, false)
		}
	}
	switch phys {
	case format.Boolean:
		set(lkBool, contract.Boolean)
	case format.Int32:
		set(lkInt32, contract.Int)
	case format.Int64:
		set(lkInt64, contract.Long)
	case format.Int96:
		set(lkInt96, contract.NaiveDateTime)
	case format.Float:
		set(lkFloat, contract.Float)
	case format.Double:
		set(lkDouble, contract.Double)
	case format.ByteArray, format.FixedLenByteArray:
		set(lkBinary, contract.Binary)
	default:
		return nil, fmt.Errorf("unknown Parquet physical type %d", phys)
	}
	return l, nil
}

// value converts a leaf value to the Go type of its sluice column.
func (l *pqLeaf) value(v parquet.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	switch l.kind {
	case lkBool:
		return v.Boolean(), nil
	case lkInt32:
		return int64(v.Int32()), nil
	case lkUint32:
		return int64(uint32(v.Int32())), nil
	case lkInt64:
		return v.Int64(), nil
	case lkUint64:
		return contract.DecimalText(strconv.FormatUint(uint64(v.Int64()), 10)), nil
	case lkFloat:
		return float64(v.Float()), nil
	case lkDouble:
		return v.Double(), nil
	case lkFloat16:
		b := v.ByteArray()
		if len(b) != 2 {
			return nil, fmt.Errorf("FLOAT16 value of %d bytes: corrupt Parquet data", len(b))
		}
		return float64(halfToFloat(binary.LittleEndian.Uint16(b))), nil
	case lkDecimalInt, lkDecimalBytes:
		s, err := l.decimalText(l.scratch[:0], v)
		if err != nil {
			return nil, err
		}
		l.scratch = s
		return contract.DecimalText(s), nil
	case lkDate:
		return time.Unix(int64(v.Int32())*86400, 0).UTC(), nil
	case lkTimestamp:
		return l.timestamp(v), nil
	case lkInt96:
		return int96Time(v.Int96()), nil
	case lkTime:
		return string(l.appendTime(nil, v)), nil
	case lkString:
		return string(v.ByteArray()), nil
	case lkUUID:
		b := v.ByteArray()
		if len(b) != 16 {
			return nil, fmt.Errorf("UUID value of %d bytes: corrupt Parquet data", len(b))
		}
		return string(appendUUID(nil, b)), nil
	case lkJSON:
		b := v.ByteArray()
		if !jsonValid(b) {
			return nil, fmt.Errorf("the JSON column holds text that is not JSON: %.40q", b)
		}
		return jsonRaw(b), nil
	case lkBinary:
		return append([]byte(nil), v.ByteArray()...), nil
	case lkNull:
		return nil, nil
	}
	return nil, fmt.Errorf("unhandled Parquet leaf kind %d", l.kind)
}

func (l *pqLeaf) timestamp(v parquet.Value) time.Time {
	x := v.Int64()
	switch l.unit {
	case 1e6:
		return time.UnixMilli(x).UTC()
	case 1e3:
		return time.UnixMicro(x).UTC()
	}
	return time.Unix(0, x).UTC()
}

// int96Time decodes the legacy Impala/Spark timestamp: nanoseconds of the
// day, then the Julian day number.
func int96Time(i deprecated.Int96) time.Time {
	nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
	day := int64(int32(i[2])) - 2440588 // Julian day of 1970-01-01
	return time.Unix(day*86400, nanos).UTC()
}

// decimalText appends the exact text of a decimal value.
func (l *pqLeaf) decimalText(dst []byte, v parquet.Value) ([]byte, error) {
	var digitBuf [20]byte
	var digits []byte
	var neg bool
	switch v.Kind() {
	case parquet.Int32:
		x := int64(v.Int32())
		neg = x < 0
		digits = strconv.AppendUint(digitBuf[:0], pqAbs(x), 10)
	case parquet.Int64:
		x := v.Int64()
		neg = x < 0
		digits = strconv.AppendUint(digitBuf[:0], pqAbs(x), 10)
	default:
		b := v.ByteArray()
		switch {
		case len(b) == 0:
			return nil, errors.New("empty DECIMAL value: corrupt Parquet data")
		case len(b) <= 8:
			// Sign-extend the big-endian two's complement.
			var x int64
			if b[0]&0x80 != 0 {
				x = -1
			}
			for _, c := range b {
				x = x<<8 | int64(c)
			}
			neg = x < 0
			digits = strconv.AppendUint(digitBuf[:0], pqAbs(x), 10)
		default:
			l.big.SetBytes(b)
			if b[0]&0x80 != 0 {
				var m big.Int
				m.Lsh(big.NewInt(1), uint(8*len(b)))
				l.big.Sub(&l.big, &m)
			}
			neg = l.big.Sign() < 0
			l.big.Abs(&l.big)
			digits = l.big.Append(nil, 10)
		}
	}
	return appendDecimalText(dst, neg, digits, l.scale), nil
}

func pqAbs(x int64) uint64 {
	if x < 0 {
		return uint64(-(x + 1)) + 1
	}
	return uint64(x)
}

// appendDecimalText places the decimal point scale digits from the right.
func appendDecimalText(dst []byte, neg bool, digits []byte, scale int) []byte {
	if neg && !(len(digits) == 1 && digits[0] == '0') {
		dst = append(dst, '-')
	}
	if scale == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	k := len(digits) - scale
	dst = append(dst, digits[:k]...)
	dst = append(dst, '.')
	return append(dst, digits[k:]...)
}

// appendTime writes a TIME value as HH:MM:SS with the digits of its unit.
func (l *pqLeaf) appendTime(dst []byte, v parquet.Value) []byte {
	var x int64
	if v.Kind() == parquet.Int32 {
		x = int64(v.Int32())
	} else {
		x = v.Int64()
	}
	ns := x * l.unit
	if ns < 0 {
		ns = 0
	}
	sec := ns / 1e9
	frac := ns % 1e9
	dst = append(dst, pqTwoDigits(sec/3600)...)
	dst = append(dst, ':')
	dst = append(dst, pqTwoDigits(sec/60%60)...)
	dst = append(dst, ':')
	dst = append(dst, pqTwoDigits(sec%60)...)
	digits := 9
	switch l.unit {
	case 1e6:
		digits, frac = 3, frac/1e6
	case 1e3:
		digits, frac = 6, frac/1e3
	}
	dst = append(dst, '.')
	s := strconv.FormatInt(frac, 10)
	for range digits - len(s) {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func pqTwoDigits(x int64) string {
	if x < 10 {
		return "0" + strconv.FormatInt(x, 10)
	}
	return strconv.FormatInt(x, 10)
}

func appendUUID(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&15])
	}
	return dst
}

// halfToFloat converts an IEEE 754 half-precision float.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 * float32(math.Pow(2, -14))
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
