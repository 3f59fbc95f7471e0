package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"slices"
	"strings"
	"time"
)

// A dataset connector models its source as a table that can be read, one
// partition at a time or whole, and maybe written back. As database/sql does
// with drivers, the runtime asks a Dataset only to describe itself, and
// discovers what else it can do by type assertion: each capability below is
// an optional interface, and asking for one the connector lacks gives a
// *CapabilityError instead of a crash.

// Row is one record: column name to value.
type Row = map[string]any

// DefaultSchemaSample is how many rows are read to infer a schema the
// connector does not declare.
const DefaultSchemaSample = 1000

// DatasetInfo is what a dataset declares about itself. The runtime reads it
// once, before any other call.
type DatasetInfo struct {
	Name         string
	Params       Params
	Partitioning Partitioning // empty: not partitioned
	// StrictSchema drops the columns of read rows that are not in the
	// schema (declared, or inferred from the sample), and counts the values
	// dropped per column. Without it such columns are kept.
	StrictSchema bool
	// Append says the writer supports APPEND; OVERWRITE is always offered.
	Append bool
	// SchemaSample is how many rows infer an undeclared schema; 0 means
	// DefaultSchemaSample.
	SchemaSample int
	// Resources are read-only files shipped inside the program, usually an
	// embed.FS; describe lists them.
	Resources fs.FS
}

// Dataset is the one interface every dataset connector implements.
type Dataset interface {
	Info() DatasetInfo
}

// ReadRequest says what to read.
type ReadRequest struct {
	Config       Config   // validated, defaults filled
	Schema       []Column // nil when the connector does not declare one
	Partitioning Partitioning
	Partition    Partition // All() means the whole dataset
	// Limit is the number of rows wanted; 0 means all. A connector may
	// ignore it: the runtime stops taking rows at the limit anyway.
	Limit int64
}

// ErrLimitReached is what emit returns once the runtime has the rows it
// asked for. A connector should stop and return it (or any error emit
// returns); the runtime treats it as a normal end.
var ErrLimitReached = errors.New("record limit reached")

// RowReader is the read-rows capability. ReadRows calls emit once per row,
// in order, from the goroutine that called ReadRows, and must not touch a
// row after emitting it.
type RowReader interface {
	ReadRows(ctx context.Context, req ReadRequest, emit func(Row) error) error
}

// SchemaReader is the read-schema capability. No columns means the schema
// is unknown, and the runtime infers it from the first rows.
type SchemaReader interface {
	ReadSchema(ctx context.Context, cfg Config) ([]Column, error)
}

// WriteMode says what a writer does with the partition's rows.
type WriteMode uint8

const (
	Overwrite WriteMode = iota // replace the partition's rows
	Append                     // add to them; only if DatasetInfo.Append
)

func (m WriteMode) String() string {
	if m == Append {
		return "APPEND"
	}
	return "OVERWRITE"
}

// WriteRequest says what a writer writes.
type WriteRequest struct {
	Config       Config
	Schema       []Column // declared, or inferred from the first input rows
	Partitioning Partitioning
	Partition    Partition // All() only for a dataset that is not partitioned
	Mode         WriteMode
}

// WriteRow is one row to write: the schema's columns, and apart from them
// the values of columns the schema does not have, so that nothing is lost
// silently: the writer decides whether to store, map or refuse them.
type WriteRow struct {
	Values Row
	Extra  Row // nil when every column is in the schema
}

// RowWriter is the write-rows capability.
//
// What the runtime guarantees: Write is never called after Close or Abort;
// exactly one of Close and Abort is called once OpenWriter succeeds; Close
// only after every row was written without error; Abort on any failure (a
// bad input row, a Write error, a cancelled context, a panic), with a
// context that is not cancelled.
//
// What the connector must do: stage the rows (a temporary file, a
// transaction) and make them visible only in Close, so that a failed write
// leaves the partition's previous rows in place; in OVERWRITE mode clear the
// partition as part of that same commit; report in Close's error anything
// that did not make it.
type RowWriter interface {
	OpenWriter(ctx context.Context, req WriteRequest) (Writer, error)
}

// Writer takes the rows of one write.
type Writer interface {
	Write(ctx context.Context, row WriteRow) error
	Close(ctx context.Context) error // commit
	Abort(ctx context.Context) error // discard; the partition keeps its rows
}

// PartitionLister is the list-partitions capability: every partition id.
type PartitionLister interface {
	ListPartitions(ctx context.Context, cfg Config) ([]string, error)
}

// PartitionChecker is the partition-exists capability.
type PartitionChecker interface {
	PartitionExists(ctx context.Context, cfg Config, p Partition) (bool, error)
}

// RecordCounter is the records-count capability; p.All() asks for the
// whole dataset.
type RecordCounter interface {
	CountRecords(ctx context.Context, cfg Config, p Partition) (int64, error)
}

// capabilities names each optional interface as errors and describe do.
var capabilities = []struct {
	name, iface string
	has         func(Dataset) bool
}{
	{"read rows", "RowReader", func(d Dataset) bool { _, ok := d.(RowReader); return ok }},
	{"read schema", "SchemaReader", func(d Dataset) bool { _, ok := d.(SchemaReader); return ok }},
	{"write rows", "RowWriter", func(d Dataset) bool { _, ok := d.(RowWriter); return ok }},
	{"list partitions", "PartitionLister", func(d Dataset) bool { _, ok := d.(PartitionLister); return ok }},
	{"partition exists", "PartitionChecker", func(d Dataset) bool { _, ok := d.(PartitionChecker); return ok }},
	{"records count", "RecordCounter", func(d Dataset) bool { _, ok := d.(RecordCounter); return ok }},
}

// Capabilities names what d can do, in a fixed order.
func Capabilities(d Dataset) []string {
	var out []string
	for _, c := range capabilities {
		if c.has(d) {
			out = append(out, c.name)
		}
	}
	return out
}

// CapabilityError says a dataset cannot do what was asked. It matches
// errors.ErrUnsupported.
type CapabilityError struct {
	Dataset    string
	Capability string // "write rows", "append", ...
	Reason     string
}

func (e *CapabilityError) Error() string {
	return fmt.Sprintf("dataset %q has no %q capability: %s", e.Dataset, e.Capability, e.Reason)
}

func (e *CapabilityError) Is(target error) bool { return target == errors.ErrUnsupported }

// DatasetHandle runs a dataset's capabilities as the command line does:
// configuration validated, partition ids parsed, limits enforced, schemas
// inferred. It is to a Dataset what sql.DB is to a driver.
type DatasetHandle struct {
	d    Dataset
	info DatasetInfo
	cfg  Config
}

// OpenDataset validates d's declarations and cfg against its parameters.
func OpenDataset(d Dataset, cfg Config) (*DatasetHandle, error) {
	info := d.Info()
	if err := info.Partitioning.Validate(); err != nil {
		return nil, fmt.Errorf("dataset %q: %w", info.Name, err)
	}
	valid, err := info.Params.Validate(cfg)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: configuration: %w", info.Name, err)
	}
	return &DatasetHandle{d: d, info: info, cfg: valid}, nil
}

// Info returns what the dataset declared when it was opened.
func (h *DatasetHandle) Info() DatasetInfo { return h.info }

// Config returns a copy of the validated configuration, defaults filled.
func (h *DatasetHandle) Config() Config {
	out := make(Config, len(h.cfg))
	for k, v := range h.cfg {
		out[k] = v
	}
	return out
}

// Secrets returns the values the runtime must mask in its output.
func (h *DatasetHandle) Secrets() []string { return h.info.Params.Secrets(h.cfg) }

// Require returns a *CapabilityError unless the dataset has the capability
// ("read rows", ..., or "append"), so that a caller can fail before it
// prepares any input.
func (h *DatasetHandle) Require(capability string) error {
	if capability == "append" {
		if _, ok := h.d.(RowWriter); !ok || !h.info.Append {
			return &CapabilityError{h.info.Name, "append", "the connector does not declare it (DatasetInfo.Append); write without append to overwrite the partition"}
		}
		return nil
	}
	for _, c := range capabilities {
		if c.name == capability && c.has(h.d) {
			return nil
		}
	}
	return h.missing(capability)
}

func (h *DatasetHandle) missing(capability string) error {
	for _, c := range capabilities {
		if c.name == capability {
			return &CapabilityError{h.info.Name, capability, "the connector does not implement sdk." + c.iface}
		}
	}
	return &CapabilityError{h.info.Name, capability, "not declared"}
}

func (h *DatasetHandle) sample() int {
	if h.info.SchemaSample > 0 {
		return h.info.SchemaSample
	}
	return DefaultSchemaSample
}

// declared returns the connector's own schema, nil if it has none.
func (h *DatasetHandle) declared(ctx context.Context) ([]Column, error) {
	sr, ok := h.d.(SchemaReader)
	if !ok {
		return nil, nil
	}
	cols, err := sr.ReadSchema(ctx, h.Config())
	if err != nil {
		return nil, fmt.Errorf("dataset %q: read schema: %w", h.info.Name, err)
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if c.Name == "" || seen[c.Name] {
			return nil, fmt.Errorf("dataset %q: read schema: column name %q is empty or repeated", h.info.Name, c.Name)
		}
		seen[c.Name] = true
	}
	return cols, nil
}

// Schema returns the declared schema, or one inferred from the first
// SchemaSample rows (inferred is then true).
func (h *DatasetHandle) Schema(ctx context.Context) (cols []Column, inferred bool, err error) {
	if cols, err := h.declared(ctx); err != nil || len(cols) > 0 {
		return cols, false, err
	}
	if _, ok := h.d.(RowReader); !ok {
		return nil, false, &CapabilityError{h.info.Name, "read schema", "the connector declares no schema, and without sdk.RowReader none can be inferred"}
	}
	res, err := h.Read(ctx, ReadOptions{Limit: int64(h.sample())}, func(Row) error { return nil })
	return res.Schema, true, err
}

// ReadOptions says which rows Read delivers.
type ReadOptions struct {
	Partition string // a partition id; empty for the whole dataset
	Limit     int64  // 0 or negative: all rows
}

// ReadResult describes what a Read delivered.
type ReadResult struct {
	Rows int64
	// Schema is every column delivered, in order: the declared or sampled
	// columns, then columns first seen later.
	Schema   []Column
	Inferred bool
	// Dropped counts, per column, the values a strict schema dropped.
	Dropped map[string]int64
}

// Read streams rows to fn. It stops at the limit whatever the connector
// does, and returns fn's error as it is.
func (h *DatasetHandle) Read(ctx context.Context, opts ReadOptions, fn func(Row) error) (ReadResult, error) {
	rr, ok := h.d.(RowReader)
	if !ok {
		return ReadResult{}, h.missing("read rows")
	}
	part, err := h.info.Partitioning.Parse(opts.Partition)
	if err != nil {
		return ReadResult{}, err
	}
	declared, err := h.declared(ctx)
	if err != nil {
		return ReadResult{}, err
	}
	limit := max(opts.Limit, 0)
	t := newTracker(declared, h.info.StrictSchema, h.sample())
	var n int64
	var fnErr error
	emit := func(row Row) error {
		switch {
		case fnErr != nil:
			return fnErr
		case limit > 0 && n >= limit:
			return ErrLimitReached
		case ctx.Err() != nil:
			return ctx.Err()
		}
		row = t.observe(row)
		n++
		if fnErr = fn(row); fnErr != nil {
			return fnErr
		}
		if limit > 0 && n >= limit {
			return ErrLimitReached
		}
		return nil
	}
	err = rr.ReadRows(ctx, ReadRequest{Config: h.Config(), Schema: declared, Partitioning: h.info.Partitioning, Partition: part, Limit: limit}, emit)
	res := ReadResult{Rows: n, Schema: t.cols, Inferred: len(declared) == 0, Dropped: t.dropped}
	switch {
	case fnErr != nil:
		return res, fnErr
	case err != nil && !errors.Is(err, ErrLimitReached):
		return res, fmt.Errorf("dataset %q: read rows: %w", h.info.Name, err)
	case ctx.Err() != nil && (limit == 0 || n < limit):
		// The connector swallowed the cancellation: the rows are not all
		// there.
		return res, fmt.Errorf("dataset %q: read rows: %w", h.info.Name, ctx.Err())
	}
	return res, nil
}

// WriteOptions says where Write writes.
type WriteOptions struct {
	Partition string // required for a partitioned dataset
	Mode      WriteMode
	// Columns is the input's column order, such as a CSV header. Rows are
	// maps, so an inferred schema would otherwise sort its columns by name.
	Columns []string
}

// WriteResult describes what a Write wrote.
type WriteResult struct {
	Rows   int64
	Schema []Column
	Extra  map[string]int64 // values handed apart, per column not in the schema
}

// Write writes rows into one partition through the connector's writer (see
// RowWriter for who guarantees what on failure). Without a declared schema,
// the first SchemaSample rows give it.
func (h *DatasetHandle) Write(ctx context.Context, opts WriteOptions, rows iter.Seq2[Row, error]) (res WriteResult, err error) {
	rw, ok := h.d.(RowWriter)
	if !ok {
		return res, h.missing("write rows")
	}
	if opts.Mode == Append {
		if err := h.Require("append"); err != nil {
			return res, err
		}
	}
	part, err := h.info.Partitioning.Parse(opts.Partition)
	if err != nil {
		return res, err
	}
	if part.All() && len(h.info.Partitioning) > 0 {
		return res, fmt.Errorf("dataset %q is partitioned (%s): name the partition to write, like %q", h.info.Name, h.info.Partitioning, h.info.Partitioning.Example())
	}
	if res.Schema, err = h.declared(ctx); err != nil {
		return res, err
	}
	next, stop := iter.Pull2(rows)
	defer stop()
	var buffered []Row
	if len(res.Schema) == 0 {
		t := newTracker(nil, false, h.sample())
		for len(buffered) < h.sample() {
			row, err, ok := next()
			if !ok {
				break
			}
			if err != nil {
				return res, fmt.Errorf("input: %w", err)
			}
			t.observe(row)
			buffered = append(buffered, row)
		}
		res.Schema = t.cols
		slices.SortStableFunc(res.Schema, func(a, b Column) int {
			return orderIn(opts.Columns, a.Name) - orderIn(opts.Columns, b.Name)
		})
	}
	inSchema := make(map[string]bool, len(res.Schema))
	for _, c := range res.Schema {
		inSchema[c.Name] = true
	}

	w, err := rw.OpenWriter(ctx, WriteRequest{Config: h.Config(), Schema: res.Schema, Partitioning: h.info.Partitioning, Partition: part, Mode: opts.Mode})
	if err != nil {
		return res, fmt.Errorf("dataset %q: open writer: %w", h.info.Name, err)
	}
	done := false
	defer func() {
		// Also on a panic, so that the connector can drop what it staged.
		if !done {
			if aerr := w.Abort(context.WithoutCancel(ctx)); aerr != nil {
				err = errors.Join(err, fmt.Errorf("dataset %q: abort write: %w", h.info.Name, aerr))
			}
		}
	}()
	write := func(row Row) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		wr := WriteRow{Values: row}
		for k := range row {
			if !inSchema[k] {
				wr = splitRow(row, inSchema)
				break
			}
		}
		for k := range wr.Extra {
			if res.Extra == nil {
				res.Extra = map[string]int64{}
			}
			res.Extra[k]++
		}
		if err := w.Write(ctx, wr); err != nil {
			return fmt.Errorf("dataset %q: write row %d: %w", h.info.Name, res.Rows+1, err)
		}
		res.Rows++
		return nil
	}
	for _, row := range buffered {
		if err := write(row); err != nil {
			return res, err
		}
	}
	for {
		row, err, ok := next()
		if !ok {
			break
		}
		if err != nil {
			return res, fmt.Errorf("input: %w", err)
		}
		if err := write(row); err != nil {
			return res, err
		}
	}
	done = true
	if err := w.Close(ctx); err != nil {
		return res, fmt.Errorf("dataset %q: close writer: %w", h.info.Name, err)
	}
	return res, nil
}

// orderIn ranks name by its place in names; names not there come after.
func orderIn(names []string, name string) int {
	if i := slices.Index(names, name); i >= 0 {
		return i
	}
	return len(names)
}

func splitRow(row Row, inSchema map[string]bool) WriteRow {
	wr := WriteRow{Values: make(Row, len(row)), Extra: Row{}}
	for k, v := range row {
		if inSchema[k] {
			wr.Values[k] = v
		} else {
			wr.Extra[k] = v
		}
	}
	return wr
}

// Partitions lists the dataset's partitions, each id checked.
func (h *DatasetHandle) Partitions(ctx context.Context) ([]Partition, error) {
	pl, ok := h.d.(PartitionLister)
	if !ok {
		return nil, h.missing("list partitions")
	}
	ids, err := pl.ListPartitions(ctx, h.Config())
	if err != nil {
		return nil, fmt.Errorf("dataset %q: list partitions: %w", h.info.Name, err)
	}
	out := make([]Partition, 0, len(ids))
	for _, id := range ids {
		p, err := h.info.Partitioning.Parse(id)
		if err == nil && p.All() {
			err = errors.New("an empty id")
		}
		if err != nil {
			return nil, fmt.Errorf("dataset %q: list partitions: the connector listed %w", h.info.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// PartitionExists reports whether the partition exists; a malformed id is
// an error, not false.
func (h *DatasetHandle) PartitionExists(ctx context.Context, id string) (bool, error) {
	pc, ok := h.d.(PartitionChecker)
	if !ok {
		return false, h.missing("partition exists")
	}
	p, err := h.info.Partitioning.Parse(id)
	if err != nil {
		return false, err
	}
	if p.All() {
		return false, fmt.Errorf("dataset %q: partition exists needs a partition id, like %q", h.info.Name, h.info.Partitioning.Example())
	}
	ok, err = pc.PartitionExists(ctx, h.Config(), p)
	if err != nil {
		return false, fmt.Errorf("dataset %q: partition exists: %w", h.info.Name, err)
	}
	return ok, nil
}

// Count returns the number of records of one partition, or of the whole
// dataset for an empty id.
func (h *DatasetHandle) Count(ctx context.Context, partition string) (int64, error) {
	rc, ok := h.d.(RecordCounter)
	if !ok {
		return 0, h.missing("records count")
	}
	p, err := h.info.Partitioning.Parse(partition)
	if err != nil {
		return 0, err
	}
	n, err := rc.CountRecords(ctx, h.Config(), p)
	if err != nil {
		return 0, fmt.Errorf("dataset %q: records count: %w", h.info.Name, err)
	}
	return n, nil
}

// tracker follows the columns of a stream of rows: it infers the types of
// undeclared columns, keeps columns first seen after the sample, and under a
// strict schema drops the columns the schema lacks, counting them.
type tracker struct {
	cols     []Column
	index    map[string]int
	declared int // cols[:declared] came from the connector and never change
	strict   bool
	sample   int
	rows     int
	dropped  map[string]int64
	fresh    []string
}

func newTracker(declared []Column, strict bool, sample int) *tracker {
	t := &tracker{cols: slices.Clone(declared), index: map[string]int{}, declared: len(declared), strict: strict, sample: sample}
	for i, c := range t.cols {
		t.index[c.Name] = i
	}
	return t
}

func (t *tracker) observe(row Row) Row {
	t.rows++
	if t.onlyDeclared(row) {
		return row
	}
	// The schema is closed once declared, or once the sample is read.
	closed := t.declared > 0 || t.rows > t.sample
	t.fresh = t.fresh[:0]
	var drop bool
	for k, v := range row {
		i, ok := t.index[k]
		switch {
		case ok && i >= t.declared:
			merge(&t.cols[i], v)
		case ok:
		case t.strict && closed:
			drop = true
		default:
			t.fresh = append(t.fresh, k)
		}
	}
	// Map order is random; sorting makes the inferred column order stable.
	slices.Sort(t.fresh)
	for _, k := range t.fresh {
		t.index[k] = len(t.cols)
		c := Column{Name: k}
		merge(&c, row[k])
		t.cols = append(t.cols, c)
	}
	if !drop {
		return row
	}
	// A copy: the connector's map is not ours to change.
	kept := make(Row, len(row))
	for k, v := range row {
		if _, ok := t.index[k]; ok {
			kept[k] = v
			continue
		}
		if t.dropped == nil {
			t.dropped = map[string]int64{}
		}
		t.dropped[k]++
	}
	return kept
}

// onlyDeclared reports whether every column of row is a declared one, the
// usual case, in which observe has nothing to record, merge or drop. It
// looks the declared names up in the row rather than the row's names up in
// the index: a small map is scanned without hashing, and ranging over a map
// costs more than over a slice. Schemas much wider than the row are left to
// the full check, which then costs less.
func (t *tracker) onlyDeclared(row Row) bool {
	if t.declared == 0 || len(row) > t.declared || t.declared > 2*len(row)+8 {
		return false
	}
	found := 0
	for _, c := range t.cols[:t.declared] {
		if _, ok := row[c.Name]; ok {
			found++
		}
	}
	return found == len(row)
}

func merge(c *Column, v any) {
	c.Type, c.Scale = widen(c.Type, c.Scale, v)
	c.Precision = 0
	if c.Type == Decimal {
		c.Precision = 38 // the widest DECIMAL, as the engine infers it
	}
}

// widen merges the type of v into a column's inferred type (and decimal
// scale). It follows the engine's inference for Go values, in short: the
// engine also coerces and tracks the warehouse, which a dataset's
// description does not need.
func widen(t Type, scale int, v any) (Type, int) {
	var vt Type
	vscale := 0
	switch x := v.(type) {
	case nil:
		return t, scale
	case bool:
		vt = Boolean
	case int8, int16, uint8:
		vt = Short
	case int32, uint16:
		vt = Int
	case int, int64, uint, uint32, uint64:
		vt = Long
	case float32:
		vt = Float
	case float64:
		vt = Double
	case json.Number:
		vt = Double
		if _, err := x.Int64(); err == nil {
			vt = Long
		}
	case DecimalText:
		vt = Decimal
		if i := strings.IndexByte(string(x), '.'); i >= 0 {
			vscale = len(x) - i - 1
		}
	case string:
		vt = String
	case []byte:
		vt = Binary
	case time.Time:
		vt = UTCDateTime
	default:
		vt = JSON
	}
	scale = max(scale, vscale)
	switch {
	case t == Unspecified || t == vt:
		return vt, scale
	case numeric(t) && numeric(vt):
		switch {
		case t == Float || t == Double || vt == Float || vt == Double:
			return Double, 0
		case t == Decimal || vt == Decimal:
			return Decimal, scale
		}
		return max(t, vt), 0 // Short < Int < Long
	}
	return String, 0
}

func numeric(t Type) bool { return t >= Short && t <= Double }
