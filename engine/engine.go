// Package engine turns a connector's operation stream into committed
// warehouse state.
//
// It normalises names, infers, enforces and widens types, computes surrogate
// keys, and folds the operations on each key into their net effect. Each
// checkpoint is one destination transaction: full batches are written into
// it as they fill, each after the schema changes it needs, and the
// checkpoint commits them with the state. Writes and commits run on a
// writer goroutine (writer.go) behind the connector. It knows destinations
// only through destination.Destination.
package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// Options tune an Engine. The zero value is usable.
type Options struct {
	// BatchRows is how many distinct keys of one table are held in memory
	// before they are written to the destination. Default 16,384: larger
	// batches measured no faster and hold more memory (BENCHMARKS.md).
	BatchRows int
	// KeyFilterBytes bounds the memory each table that was empty when the
	// sync started may use to remember the keys written to it (see
	// keyFilter). Past it, every row of the table is merged rather than
	// inserted. Default 32 MiB; negative: no filter.
	KeyFilterBytes int
	// PrevHash is the hash of the state file the run started from (see
	// destination.StateRecord).
	PrevHash string
	// OnSchemaChange is told of each table or column added and each column
	// widened, when the engine decides it.
	OnSchemaChange func(destination.SchemaChange)
	// OnCommit runs after each successful commit with the state just
	// committed, so the caller can write its state file; it returns the
	// hash of what it wrote, the PrevHash of the next commit.
	OnCommit func(state []byte) (hash string, err error)
	// Now gives _sluice_synced; default time.Now.
	Now func() time.Time
}

// Counts are the operations a table received.
type Counts struct {
	Upserts, Updates, Deletes, Truncates int64
}

type opKind uint8

const (
	opUpsert opKind = iota
	opUpdate
	opDelete
)

func (k opKind) String() string {
	return [...]string{"upsert", "update", "delete"}[k]
}

// Engine implements contract.Ops over a destination. Its methods are not safe
// for concurrent use: a connector emits from one goroutine.
type Engine struct {
	ctx  context.Context
	dest destination.Destination
	opts Options

	tables   map[string]*table // by normalised name
	bySource map[string]*table
	order    []*table // creation order, for stable commits and summaries

	w           *writer      // nil until Start
	buffered    int          // rows held in memory, all tables
	ops         atomic.Int64 // read by the progress line from another goroutine
	checkpoints int64
	state       []byte // last committed state
	dirty       bool   // something to commit beyond the last commit
	inTx        bool   // a job of the open transaction has been submitted
	synced      time.Time
	err         error // sticky: once set, every call returns it
	// noFileLoader: the destination's Tx has no FileLoader (loadfile.go).
	noFileLoader bool

	hashBuf []byte
	keyBuf  []byte
	// last is the table of the last operation, under the engine's own copy
	// of the name it was asked by: a connector mostly emits runs of
	// operations on one table.
	last     *table
	lastName string
}

// New makes an engine writing to dest. Call Start before any operation.
func New(dest destination.Destination, opts Options) *Engine {
	if opts.BatchRows <= 0 {
		opts.BatchRows = 1 << 14
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyFilterBytes == 0 {
		opts.KeyFilterBytes = 32 << 20
	}
	return &Engine{
		dest:     dest,
		opts:     opts,
		tables:   map[string]*table{},
		bySource: map[string]*table{},
	}
}

// Start reads the destination's tables, applies the declared schema, and
// remembers the state the sync starts from (a JSON object, or nil).
func (e *Engine) Start(ctx context.Context, declared []contract.Table, startState []byte) error {
	e.ctx = ctx
	e.w = newWriter(e.dest, e.opts.PrevHash, e.opts.OnCommit)
	if startState == nil {
		startState = []byte("{}")
	}
	e.state = startState
	existing, err := e.dest.Describe(ctx)
	if err != nil {
		return fmt.Errorf("read warehouse tables: %w", err)
	}
	for _, dt := range existing {
		t := e.newTable(dt.Name, dt.Name)
		t.inDest = true
		if !dt.Empty {
			t.keys = nil // its keys are unknown
		}
		t.key = slices.Clone(dt.PrimaryKey)
		for _, c := range dt.Columns {
			t.addColumn(c.Name, c.Name, c, false, true)
		}
		t.hashKey = len(t.key) == 1 && t.key[0] == destination.ColumnID
		t.resolveKey()
		e.tables[t.name] = t
		e.order = append(e.order, t)
	}
	seen := map[string]string{}
	for i, dt := range declared {
		if err := e.declare(dt, seen); err != nil {
			return fmt.Errorf("schema: table %d (%q): %w", i+1, dt.Name, err)
		}
	}
	return nil
}

func (e *Engine) declare(dt contract.Table, seen map[string]string) error {
	name, err := Normalize(dt.Name)
	if err != nil {
		return err
	}
	if prev, ok := seen[name]; ok {
		if prev == dt.Name {
			return fmt.Errorf("table %q is declared twice", dt.Name)
		}
		return fmt.Errorf("tables %q and %q both normalise to %q: rename one", prev, dt.Name, name)
	}
	seen[name] = dt.Name
	key := make([]string, 0, len(dt.PrimaryKey))
	for _, k := range dt.PrimaryKey {
		n, err := Normalize(k)
		if err != nil {
			return fmt.Errorf("primary key: %w", err)
		}
		if slices.Contains(key, n) {
			return fmt.Errorf("primary key names column %q twice", k)
		}
		key = append(key, n)
	}
	if len(key) == 0 {
		key = []string{destination.ColumnID}
	}
	t, exists := e.tables[name]
	if !exists {
		t = e.newTable(name, dt.Name)
		t.key = key
		t.hashKey = key[0] == destination.ColumnID
		e.tables[name] = t
		e.order = append(e.order, t)
	} else if !slices.Equal(t.key, key) {
		return fmt.Errorf("the warehouse table %q has primary key (%s) but the schema declares (%s): run `sluice reset`, or drop the table, to change a key",
			name, strings.Join(t.key, ", "), strings.Join(key, ", "))
	}
	t.declared = true
	t.source = dt.Name
	e.bySource[dt.Name] = t
	if t.hashKey {
		if _, ok := t.byName[destination.ColumnID]; !ok {
			t.addColumn(destination.ColumnID, destination.ColumnID, destination.Column{Name: destination.ColumnID, Type: contract.String}, true, false)
		}
	}
	for _, dc := range dt.Columns {
		cname, err := Normalize(dc.Name)
		if err != nil {
			return fmt.Errorf("column: %w", err)
		}
		col := destination.Column{Name: cname, Type: dc.Type, Precision: dc.Precision, Scale: dc.Scale}
		if dc.Type == contract.Unspecified || dc.Type > contract.JSON {
			return fmt.Errorf("column %q: unknown type %d (use one of the sdk type constants)", dc.Name, dc.Type)
		}
		if dc.Type == contract.Decimal && (dc.Precision < 1 || dc.Precision > maxDecimalPrecision || dc.Scale < 0 || dc.Scale > dc.Precision) {
			return fmt.Errorf("column %q: DECIMAL needs a precision from 1 to 38 and a scale from 0 to the precision (got %d, %d)", dc.Name, dc.Precision, dc.Scale)
		}
		if dc.Type != contract.Decimal {
			col.Precision, col.Scale = 0, 0
		}
		if i, ok := t.byName[cname]; ok {
			c := &t.cols[i]
			if c.declared {
				return fmt.Errorf("columns %q and %q both normalise to %q", c.source, dc.Name, cname)
			}
			if !sameType(c.dest, col) {
				if !sameType(widen(c.dest, col), col) {
					return fmt.Errorf("column %q is %s in the warehouse and cannot hold the declared %s: run `sluice reset`, or drop the table", cname, c.dest, col)
				}
				if c.isKey {
					// Warehouses cannot change a key column's type in place.
					return fmt.Errorf("key column %q is %s in the warehouse and the schema declares %s: run `sluice reset`, or drop the table, to change a key column's type", cname, c.dest, col)
				}
				c.col = col
				e.schemaChange(destination.SchemaChange{Kind: destination.WidenColumn, Table: destination.Table{Name: t.name}, Column: col})
			}
			c.declared, c.claimed = true, true
			c.source = strings.Clone(dc.Name)
			t.bySource[c.source] = i
			continue
		}
		t.cols[t.addColumn(dc.Name, cname, col, true, false)].claimed = true
		if t.inDest {
			e.schemaChange(destination.SchemaChange{Kind: destination.AddColumn, Table: destination.Table{Name: t.name}, Column: col})
		}
	}
	// Key columns the schema gives no type get one from the first row; a
	// table that must be created before any row arrives makes them STRING.
	t.resolveKey()
	if !t.inDest {
		e.schemaChange(destination.SchemaChange{Kind: destination.CreateTable, Table: t.destTable()})
	}
	// Declared tables, columns and wider types are made even if no row
	// arrives.
	if !t.inDest || len(t.pendingChanges()) > 0 {
		e.dirty = true
	}
	return nil
}

// Upsert implements contract.Ops.
func (e *Engine) Upsert(table string, row map[string]any) error {
	return e.apply(opUpsert, table, row, nil)
}

// UpsertWith implements contract.ExtraUpserter.
func (e *Engine) UpsertWith(table string, row map[string]any, extra []contract.Field) error {
	return e.apply(opUpsert, table, row, extra)
}

// Update implements contract.Ops.
func (e *Engine) Update(table string, row map[string]any) error {
	return e.apply(opUpdate, table, row, nil)
}

// Delete implements contract.Ops.
func (e *Engine) Delete(table string, keys map[string]any) error {
	return e.apply(opDelete, table, keys, nil)
}

// Truncate implements contract.Ops.
func (e *Engine) Truncate(table string) error {
	e.ops.Add(1)
	if err := e.check(); err != nil {
		return err
	}
	t, err := e.table(table)
	if err != nil {
		return e.fail(fmt.Errorf("operation %d (truncate %q): %w", e.ops.Load(), table, err))
	}
	t.counts.Truncates++
	b := t.batch
	// What the batch holds was synced before the truncate: it ends deleted.
	for r := range b.Deleted {
		b.Deleted[r] = destination.Deleted
	}
	b.Truncate = true
	e.dirty = true
	return nil
}

// Checkpoint implements contract.Ops.
func (e *Engine) Checkpoint(state any) error {
	e.ops.Add(1)
	if err := e.check(); err != nil {
		return err
	}
	b, err := marshalState(state)
	if err != nil {
		return e.fail(fmt.Errorf("operation %d (checkpoint): %w", e.ops.Load(), err))
	}
	e.checkpoints++
	if err := e.commit(b); err != nil {
		return e.fail(err)
	}
	return nil
}

func marshalState(state any) ([]byte, error) {
	if state == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("state cannot be written as JSON: %w", err)
	}
	if string(b) == "null" { // a nil map
		return []byte("{}"), nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("state must be a JSON object, got %s", truncate(string(b), 40))
	}
	return b, nil
}

// Finish commits what was emitted after the last checkpoint, with the last
// checkpointed state (or the starting state): the rows are kept, and the next
// sync starts where the last checkpoint said.
func (e *Engine) Finish(ctx context.Context) error {
	e.ctx = ctx
	if err := e.check(); err != nil {
		return err
	}
	if e.dirty {
		if err := e.commit(e.state); err != nil {
			return err
		}
	}
	if err := e.w.close(); err != nil {
		return e.fail(err)
	}
	return nil
}

// Abort ends a failed sync: what was written since the last checkpoint is
// rolled back, and what was committed stays.
func (e *Engine) Abort(ctx context.Context) error {
	if e.w == nil {
		return nil
	}
	e.w.close()
	return nil
}

// Err returns the error that stopped the engine, if any.
func (e *Engine) Err() error {
	if e.err == nil && e.w != nil {
		if err := e.w.failed(); err != nil {
			e.err = err
		}
	}
	return e.err
}

// Ops returns the number of operations received so far.
func (e *Engine) Ops() int64 { return e.ops.Load() }

// Checkpoints returns the number of checkpoints received so far.
func (e *Engine) Checkpoints() int64 { return e.checkpoints }

// TableCounts lists each table that received operations, in first-seen order.
func (e *Engine) TableCounts() []TableCount {
	var out []TableCount
	for _, t := range e.order {
		if t.counts != (Counts{}) {
			out = append(out, TableCount{Table: t.name, Counts: t.counts})
		}
	}
	return out
}

// TableCount is one line of the summary.
type TableCount struct {
	Table string
	Counts
}

func (e *Engine) check() error {
	if e.err != nil {
		return e.err
	}
	if err := e.w.failed(); err != nil {
		return e.fail(err)
	}
	if err := e.ctx.Err(); err != nil {
		return e.fail(fmt.Errorf("sync cancelled: %w", err))
	}
	return nil
}

func (e *Engine) fail(err error) error {
	if e.err == nil {
		e.err = err
	}
	return e.err
}

func (e *Engine) schemaChange(c destination.SchemaChange) {
	if e.opts.OnSchemaChange != nil {
		e.opts.OnSchemaChange(c)
	}
}

// table finds or creates the table a source name refers to.
func (e *Engine) table(source string) (*table, error) {
	if e.last != nil && source == e.lastName {
		return e.last, nil
	}
	t, err := e.lookupTable(source)
	if err == nil {
		e.last, e.lastName = t, strings.Clone(source)
	}
	return t, err
}

func (e *Engine) lookupTable(source string) (*table, error) {
	if t, ok := e.bySource[source]; ok {
		return t, nil
	}
	name, err := Normalize(source)
	if err != nil {
		return nil, fmt.Errorf("table name: %w", err)
	}
	if t, ok := e.tables[name]; ok {
		if t.declared && t.source != source {
			return nil, fmt.Errorf("table names %q and %q both normalise to %q: use one spelling", t.source, source, name)
		}
		if t.claimed && t.source != source {
			return nil, fmt.Errorf("table names %q and %q both normalise to %q: use one spelling", t.source, source, name)
		}
		t.source, t.claimed = source, true
		e.bySource[source] = t
		return t, nil
	}
	t := e.newTable(name, source)
	t.claimed = true
	t.key = []string{destination.ColumnID}
	t.hashKey = true
	t.addColumn(destination.ColumnID, destination.ColumnID, destination.Column{Name: destination.ColumnID, Type: contract.String}, true, false)
	t.resolveKey()
	e.tables[name] = t
	e.bySource[source] = t
	e.order = append(e.order, t)
	e.schemaChange(destination.SchemaChange{Kind: destination.CreateTable, Table: t.destTable()})
	return t, nil
}

// apply folds one row operation into its table's batch.
func (e *Engine) apply(kind opKind, tableName string, row map[string]any, extra []contract.Field) error {
	e.ops.Add(1)
	if err := e.check(); err != nil {
		return err
	}
	t, err := e.table(tableName)
	if err != nil {
		return e.fail(fmt.Errorf("operation %d (%s into %q): %w", e.ops.Load(), kind, tableName, err))
	}
	if err := e.fold(kind, t, row, extra); err != nil {
		return e.fail(fmt.Errorf("operation %d (%s into table %q): %w", e.ops.Load(), kind, t.name, err))
	}
	switch kind {
	case opUpsert:
		t.counts.Upserts++
	case opUpdate:
		t.counts.Updates++
	case opDelete:
		t.counts.Deletes++
	}
	e.dirty = true
	if t.batch.Rows >= e.opts.BatchRows {
		if err := e.stage(t); err != nil {
			return e.fail(err)
		}
	} else if e.buffered >= 4*e.opts.BatchRows {
		if err := e.stageAll(); err != nil {
			return e.fail(err)
		}
	}
	return nil
}

func (e *Engine) fold(kind opKind, t *table, row map[string]any, extra []contract.Field) error {
	n := len(t.cols)
	vals := slices.Grow(t.scratch[:0], n)[:n]
	clear(vals)
	raw := slices.Grow(t.raw[:0], n)[:n]
	clear(raw)
	present := slices.Grow(t.present[:0], (n+63)/64)[:(n+63)/64]
	clear(present)
	givenID := false
	unknown := t.unknown[:0]
	take := func(k string, v any) error {
		i, ok := t.column(k)
		if !ok {
			if v != nil { // a NULL in a column never seen says nothing
				unknown = append(unknown, contract.Field{Name: k, Value: v})
			}
			return nil
		}
		c := &t.cols[i]
		if c.source != k {
			// k named the column before another spelling claimed it.
			return fmt.Errorf("columns %q and %q both normalise to %q: use one spelling", c.source, k, c.col.Name)
		}
		c.claimed = true
		if k == destination.ColumnID {
			givenID = true
		}
		return e.setValue(t, i, v, vals, raw, present)
	}
	for k, v := range row {
		if len(extra) > 0 && slices.ContainsFunc(extra, func(f contract.Field) bool { return f.Name == k }) {
			continue // replaced
		}
		if err := take(k, v); err != nil {
			return err
		}
	}
	for _, f := range extra {
		if err := take(f.Name, f.Value); err != nil {
			return err
		}
	}
	if len(unknown) > 0 {
		// New columns are added in name order, so that the table's column
		// order does not depend on map iteration.
		slices.SortFunc(unknown, func(a, b contract.Field) int { return strings.Compare(a.Name, b.Name) })
		for _, f := range unknown {
			i, err := e.newColumn(t, f.Name)
			if err != nil {
				return err
			}
			for len(vals) < len(t.cols) {
				vals, raw = append(vals, nil), append(raw, nil)
			}
			for len(present)*64 < len(t.cols) {
				present = append(present, 0)
			}
			if err := e.setValue(t, i, f.Value, vals, raw, present); err != nil {
				return err
			}
		}
	}
	t.unknown = unknown[:0]
	t.scratch, t.raw, t.present = vals, raw, present

	// The key.
	if t.hashKey {
		idx := t.keyIdx[0]
		switch {
		case givenID:
			id, ok := vals[idx].(string)
			if !ok || id == "" {
				return fmt.Errorf("%s must be the non-empty string sluice gave the row", destination.ColumnID)
			}
		case kind == opUpdate:
			return fmt.Errorf("table %q has no primary key: an update must name the row by %s (or declare a primary key in Schema)", t.source, destination.ColumnID)
		default:
			var id string
			id, e.hashBuf = rowHash(e.hashBuf, t.names, raw, t.sorted)
			vals[idx] = id
			present[idx/64] |= 1 << (idx % 64)
		}
	}
	for _, i := range t.keyIdx {
		if vals[i] == nil {
			return fmt.Errorf("the row has no value for primary key column %q", t.cols[i].source)
		}
	}
	b := t.batch
	hashes := t.keys != nil && t.mono != monoOn
	// A key above every key of the batch is in no row of it: while keys
	// rise, as a load in key order's do, the batch needs no index.
	rising := !t.indexed && t.above(b, vals)
	var key []byte
	if hashes || !rising {
		key = e.keyBuf[:0]
		for _, i := range t.keyIdx {
			key = appendCanon(key, vals[i])
		}
		e.keyBuf = key
	}
	r, exists := 0, false
	if !rising {
		t.indexBatch()
		r, exists = t.index[string(key)]
	}
	if !exists {
		r = b.Rows
		if !rising {
			t.index[string(key)] = r
		}
		if hashes {
			t.hashes = append(t.hashes, maphash.Bytes(keySeed, key))
		}
		b.Rows++
		e.buffered++
		for c := range vals {
			b.Values[c] = append(b.Values[c], vals[c])
		}
		switch kind {
		case opUpsert:
			b.Set = append(b.Set, nil)
			b.Deleted = append(b.Deleted, destination.Live)
		case opUpdate:
			b.Set = append(b.Set, slices.Clone(present))
			b.Deleted = append(b.Deleted, destination.KeepDeleted)
		case opDelete:
			b.Set = append(b.Set, keyMask(t))
			for c := range vals {
				if !t.cols[c].isKey {
					b.Values[c][r] = nil
				}
			}
			b.Deleted = append(b.Deleted, destination.Deleted)
		}
		return nil
	}
	switch kind {
	case opUpsert:
		for c := range vals {
			b.Values[c][r] = vals[c]
		}
		b.Set[r] = nil
		b.Deleted[r] = destination.Live
	case opUpdate:
		for c := range vals {
			if present[c/64]&(1<<(c%64)) != 0 {
				b.Values[c][r] = vals[c]
			}
		}
		if s := b.Set[r]; s != nil {
			for w := range present {
				s[w] |= present[w]
			}
		}
	case opDelete:
		b.Deleted[r] = destination.Deleted
	}
	return nil
}

// above reports whether the key in vals is above the key of the batch's
// last row (so above every row's, while the batch's keys rise): compared as
// keyCompare does, whose order makes equal keys exactly the equal
// canonical ones. An empty batch holds no key.
func (t *table) above(b *destination.Batch, vals []any) bool {
	if b.Rows == 0 {
		return true
	}
	for _, i := range t.keyIdx {
		c, ok := valueCompare(vals[i], b.Values[i][b.Rows-1])
		if !ok || c < 0 {
			return false
		}
		if c > 0 {
			return true
		}
	}
	return false // equal
}

// indexBatch puts the batch's rows in t.index, once its keys stop rising.
func (t *table) indexBatch() {
	if t.indexed {
		return
	}
	b := t.batch
	for r := 0; r < b.Rows; r++ {
		key := t.indexBuf[:0]
		for _, i := range t.keyIdx {
			key = appendCanon(key, b.Values[i][r])
		}
		t.indexBuf = key
		t.index[string(key)] = r
	}
	t.indexed = true
}

// setValue converts v for column i into vals (the stored form) and raw (the
// form the row hash reads: the value's own canonical form, so that a column
// widening later does not change the hash of a row sent again).
func (e *Engine) setValue(t *table, i int, v any, vals, raw []any, present []uint64) error {
	present[i/64] |= 1 << (i % 64)
	if v == nil {
		return nil
	}
	c := &t.cols[i]
	if c.declared {
		cv, err := coerce(v, c.col)
		if err != nil {
			return fmt.Errorf("column %q: value %s does not fit %s: %w", c.source, showValue(v), c.col.Type, err)
		}
		vals[i], raw[i] = cv, cv
		return nil
	}
	col, canon, _, err := infer(v)
	if err != nil {
		return fmt.Errorf("column %q: %w", c.source, err)
	}
	raw[i] = canon
	if !sameType(c.col, col) {
		w := col
		if c.col.Type != contract.Unspecified {
			w = widen(c.col, col)
		}
		if !sameType(w, c.col) {
			if c.col.Type != contract.Unspecified && c.isKey {
				return fmt.Errorf("key column %q holds %s values, and now a %s value %s: declare the key column's type in Schema", c.source, c.col.Type, col.Type, showValue(v))
			}
			kind := destination.WidenColumn
			if c.col.Type == contract.Unspecified {
				kind = destination.AddColumn
			} else if t.batch.Rows > 0 {
				// Stage the rows taken so far in the old type first: the
				// destination then converts them exactly as it converts the
				// committed and staged ones, so that a value reads the same
				// whichever of the three it was in when the column widened.
				if err := e.stage(t); err != nil {
					return err
				}
			}
			w.Name = c.col.Name
			c.col = w
			e.schemaChange(destination.SchemaChange{Kind: kind, Table: destination.Table{Name: t.name}, Column: c.col})
		}
		if !sameType(col, c.col) {
			if canon, err = coerce(canon, c.col); err != nil {
				return fmt.Errorf("column %q: value %s does not fit %s: %w", c.source, showValue(v), c.col.Type, err)
			}
		}
	}
	vals[i] = canon
	return nil
}

func keyMask(t *table) []uint64 {
	m := make([]uint64, (len(t.cols)+63)/64)
	for _, i := range t.keyIdx {
		m[i/64] |= 1 << (i % 64)
	}
	return m
}

func (e *Engine) newColumn(t *table, source string) (int, error) {
	name, err := Normalize(source)
	if err != nil {
		return 0, fmt.Errorf("column name: %w", err)
	}
	if i, ok := t.byName[name]; ok {
		c := &t.cols[i]
		if c.claimed && c.source != source {
			return 0, fmt.Errorf("columns %q and %q both normalise to %q: use one spelling", c.source, source, name)
		}
		// The column's name in the warehouse (or a key column's name in the
		// schema) was not used in this sync: this spelling claims it.
		delete(t.bySource, c.source)
		c.source, c.claimed = strings.Clone(source), true
		t.bySource[c.source] = i
		return i, nil
	}
	i := t.addColumn(source, name, destination.Column{Name: name}, false, false)
	t.cols[i].claimed = true
	return i, nil
}

// stage hands a table's batch to the writer, with the schema changes it
// needs, into the open transaction.
func (e *Engine) stage(t *table) error {
	changes := t.pendingChanges()
	b := t.prepare()
	if b == nil && len(changes) == 0 {
		return nil
	}
	j := writeJob{ctx: e.ctx, changes: changes}
	if b != nil {
		e.buffered -= b.Rows
		j.batches = []*destination.Batch{b}
	}
	t.markApplied()
	cols, rows := len(t.batch.Values), t.batch.Rows
	e.submit(j)
	if b != nil {
		// After submit, which may wait for the writer: the batches it
		// wrote meanwhile are then free for reuse.
		t.handOff(e.w.free, cols, rows)
	}
	return e.w.failed()
}

// prepare completes the table's batch for the destination; nil if it holds
// nothing.
func (t *table) prepare() *destination.Batch {
	b := t.batch
	if b.Rows == 0 && !b.Truncate {
		return nil
	}
	b.Columns = b.Columns[:0]
	for i := range t.cols {
		col := t.cols[i].col
		if col.Type == contract.Unspecified {
			col.Type = contract.String // only NULLs so far
		}
		b.Columns = append(b.Columns, col)
	}
	b.Key = t.keyIdx
	for i := len(b.Set); i < b.Rows; i++ {
		b.Set = append(b.Set, nil)
	}
	t.markFresh(b)
	return b
}

// keySeed hashes keys for the key filters, which live only in memory.
var keySeed = maphash.MakeSeed()

// markFresh marks the batch's full rows whose keys the table cannot hold
// yet, and records every full row's key as written.
func (t *table) markFresh(b *destination.Batch) {
	if t.keys == nil {
		return
	}
	if t.mono == monoUndecided {
		t.mono = monoOff
		if ascending(b) {
			t.mono = monoOn
		}
	}
	if t.mono == monoOn {
		t.markAscending(b)
		return
	}
	if len(t.hashes) != b.Rows {
		return
	}
	b.Fresh = slices.Grow(b.Fresh[:0], b.Rows)[:b.Rows]
	clear(b.Fresh)
	for r, h := range t.hashes {
		if b.Set[r] != nil {
			continue // a partial row never inserts
		}
		fresh := !t.keys.mayContain(h)
		if !t.keys.add(h) {
			// Too many keys to remember: from here on the table is
			// merged. Rows already marked are new all the same.
			t.keys = nil
			return
		}
		b.Fresh[r] = fresh
	}
}

// Whether a table's keys are tracked by their maximum rather than by the
// key filter, decided on its first batch.
const (
	monoUndecided = iota
	monoOn
	monoOff
)

// ascending reports whether a batch's full rows have keys that rise from
// row to row (99 % of steps at least): a load in key order, which needs no
// filter, only the largest key written. A key of several columns, such as
// the (_partition, _row) of a dataset sync, rises as a tuple (keyCompare).
func ascending(b *destination.Batch) bool {
	if len(b.Key) == 0 {
		return false
	}
	prev := -1
	steps, up := 0, 0
	for r := 0; r < b.Rows; r++ {
		if b.Set[r] != nil {
			continue
		}
		if prev < 0 {
			if !orderedKey(b, r) {
				return false
			}
		} else {
			c, ok := keyCompare(b, r, prev)
			if !ok {
				return false
			}
			if c > 0 {
				up++
			}
		}
		prev = r
		steps++
	}
	return steps > 1 && up*100 >= (steps-1)*99
}

// orderedKey reports whether row r's key values all have a type keyCompare
// orders, in key columns of a type whose warehouse equality is that of the
// canonical values (not JSON, say, which PostgreSQL compares as jsonb).
func orderedKey(b *destination.Batch, r int) bool {
	for _, c := range b.Key {
		switch b.Columns[c].Type {
		case contract.Short, contract.Int, contract.Long, contract.String,
			contract.NaiveDate, contract.NaiveDateTime, contract.UTCDateTime:
		default:
			return false
		}
		switch b.Values[c][r].(type) {
		case int64, string, time.Time:
		default:
			return false
		}
	}
	return true
}

// keyCompare compares the keys of rows r and s of a batch, column by
// column. Tracking keys by their maximum needs an order in which two keys
// are equal exactly when the warehouse holds them as one key: canonical
// integers compare as numbers, strings bytewise (as the warehouses' VARCHAR
// and TEXT equality does), times (cut to microseconds) by instant. Any
// other type, or two types in one column, even one the comparison did not
// need to reach, is not ordered (ok false), and the table falls back to
// the key filter or to merging.
func keyCompare(b *destination.Batch, r, s int) (c int, ok bool) {
	for _, col := range b.Key {
		d, ok := valueCompare(b.Values[col][r], b.Values[col][s])
		if !ok {
			return 0, false
		}
		if c == 0 {
			c = d
		}
	}
	return c, true
}

// maxCompare is keyCompare of row r against the largest key written.
func (t *table) maxCompare(b *destination.Batch, r int) (c int, ok bool) {
	for i, col := range b.Key {
		d, ok := valueCompare(b.Values[col][r], t.monoMax[i])
		if !ok {
			return 0, false
		}
		if c == 0 {
			c = d
		}
	}
	return c, true
}

func valueCompare(a, b any) (int, bool) {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y), true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y), true
		}
	}
	return 0, false
}

// markAscending marks fresh the full rows whose key is above every key
// written to the table: none of those can be in it. Other full rows are
// left for the destination to look up. Should the order break down (more
// than 1 % of rows below the maximum), or a key value not be ordered, the
// table stops being tracked: the rows marked so far are new all the same.
func (t *table) markAscending(b *destination.Batch) {
	b.Fresh = slices.Grow(b.Fresh[:0], b.Rows)[:b.Rows]
	clear(b.Fresh)
	for r := 0; r < b.Rows; r++ {
		if b.Set[r] != nil {
			continue
		}
		above := t.monoRows == 0
		if above {
			if !orderedKey(b, r) {
				t.keys, t.mono = nil, monoOff
				return
			}
		} else {
			c, ok := t.maxCompare(b, r)
			if !ok {
				t.keys, t.mono = nil, monoOff
				return
			}
			above = c > 0
		}
		t.monoRows++
		if above {
			b.Fresh[r] = true
			// The values, not the batch's arrays: those are reused.
			t.monoMax = t.monoMax[:0]
			for _, col := range b.Key {
				t.monoMax = append(t.monoMax, b.Values[col][r])
			}
		} else {
			t.monoLate++
		}
	}
	if t.monoLate > 1000 && t.monoLate*100 > t.monoRows {
		t.keys, t.mono = nil, monoOff
	}
}

func (e *Engine) stageAll() error {
	for _, t := range e.order {
		if err := e.stage(t); err != nil {
			return err
		}
	}
	return nil
}

// submit queues a job, choosing _sluice_synced when it is the first of a
// transaction. Every row of one transaction gets the same value.
func (e *Engine) submit(j writeJob) {
	if !e.inTx {
		e.synced = e.opts.Now().UTC()
		e.inTx = true
	}
	j.synced = e.synced
	if j.state != nil {
		e.inTx = false
	}
	e.w.submit(j, e.filtering())
}

// filtering reports whether a table's key filter holds memory. The
// writer's queue then stays one job deep: the filter takes up to
// KeyFilterBytes, and the batches a deeper queue holds would come on top
// (a 20M-row hash-keyed load peaked at 351 MB with them, 303 without).
func (e *Engine) filtering() bool {
	for _, t := range e.order {
		if t.keys != nil && len(t.keys.gens) > 0 {
			return true
		}
	}
	return false
}

// commit hands the writer what is left of the checkpoint (schema changes and
// the batches still in memory) and the state to commit with it.
func (e *Engine) commit(state []byte) error {
	j := writeJob{ctx: e.ctx, state: state}
	type shape struct {
		t          *table
		cols, rows int
	}
	var handed []shape
	for _, t := range e.order {
		j.changes = append(j.changes, t.pendingChanges()...)
		if b := t.prepare(); b != nil {
			j.batches = append(j.batches, b)
			e.buffered -= b.Rows
			handed = append(handed, shape{t, len(b.Values), b.Rows})
		}
		t.markApplied()
	}
	// The engine goes on as if the commit succeeded: if it fails, the
	// writer's error stops the sync before anything else is committed.
	e.state = state
	e.dirty = false
	e.submit(j)
	for _, h := range handed {
		h.t.handOff(e.w.free, h.cols, h.rows)
	}
	return e.w.failed()
}

// table is the engine's view of one destination table.
type table struct {
	name, source string
	declared     bool
	claimed      bool // a source name has been bound to it in this run
	inDest       bool
	key          []string
	keyIdx       []int
	hashKey      bool

	cols     []column
	names    []string // normalised names, by column index
	sorted   []int    // column indexes in name order, for the row hash
	byName   map[string]int
	bySource map[string]int
	slots    [nameSlots]nameSlot // bySource by the address of a name's bytes

	batch *destination.Batch
	index map[string]int // key -> batch row, once indexed
	// indexed: index holds the batch's rows. Until then their keys rise
	// from row to row (see above).
	indexed  bool
	indexBuf []byte
	// keys holds the keys written to the table, when it was empty at the
	// start of the sync: nil once unknown. hashes are the batch rows' keys
	// for it.
	keys   *keyFilter
	hashes []uint64
	// mono: the keys are tracked by their maximum (see markAscending).
	mono               int
	monoMax            []any // the largest key written, by key column
	monoRows, monoLate int64
	scratch            []any // per-row buffers, reused
	raw                []any
	present            []uint64
	unknown            []contract.Field
	counts             Counts
}

type column struct {
	source   string
	col      destination.Column // current type; Unspecified until a value arrives
	dest     destination.Column // as in the destination; Type 0 if not there yet
	declared bool
	claimed  bool
	isKey    bool
}

func (e *Engine) newTable(name, source string) *table {
	var keys *keyFilter
	if e.opts.KeyFilterBytes > 0 {
		keys = newKeyFilter(e.opts.KeyFilterBytes)
	}
	return &table{
		keys:     keys,
		name:     name,
		source:   source,
		byName:   map[string]int{},
		bySource: map[string]int{},
		batch:    &destination.Batch{Table: name},
		index:    map[string]int{},
	}
}

func (t *table) addColumn(source, name string, col destination.Column, declared, inDest bool) int {
	i := len(t.cols)
	col.Name = name
	c := column{source: source, col: col, declared: declared}
	if inDest {
		c.dest = col
	}
	c.source = strings.Clone(source) // the engine's own: see column
	t.cols = append(t.cols, c)
	t.names = append(t.names, name)
	t.byName[name] = i
	t.bySource[c.source] = i
	t.sorted = append(t.sorted, i)
	sort.Slice(t.sorted, func(a, b int) bool { return t.names[t.sorted[a]] < t.names[t.sorted[b]] })
	rows := t.batch.Rows
	t.batch.Values = append(t.batch.Values, make([]any, rows, max(rows, 16)))
	for r, s := range t.batch.Set {
		if s != nil && len(s)*64 < len(t.cols) {
			t.batch.Set[r] = append(s, 0)
		}
	}
	if slices.Contains(t.key, name) {
		t.cols[i].isKey = true
	}
	return i
}

// nameSlots is the size of a table's column cache (column): a power of
// two, several times the columns of a usual row, so that few names share a
// slot.
const nameSlots = 128

type nameSlot struct {
	p   *byte // the first byte of a name a row used
	col int
}

// column finds the column a row's key names, as bySource does. A connector
// names columns with the same few strings, string literals or the keys of
// a map it reuses, so a table first looks the name up by the address of its
// bytes, which costs less than hashing them (Go's map hashes every key of
// every row). A hit is confirmed against the column's own copy of its
// name: a connector that reuses one buffer for several names (decoders that
// do not copy their strings do) gets a miss, never a wrong column.
func (t *table) column(k string) (int, bool) {
	if len(k) == 0 {
		i, ok := t.bySource[k]
		return i, ok
	}
	p := unsafe.StringData(k)
	h := uint64(uintptr(unsafe.Pointer(p))) * 0x9e3779b97f4a7c15 >> (64 - 7)
	for _, s := range [2]uint64{h, h ^ 1} {
		if e := &t.slots[s]; e.p == p && t.cols[e.col].source == k {
			return e.col, true
		}
	}
	i, ok := t.bySource[k]
	if ok && t.cols[i].source == k {
		e := &t.slots[h]
		if e.p != nil {
			e = &t.slots[h^1]
		}
		*e = nameSlot{p: p, col: i}
	}
	return i, ok
}

// resolveKey finds the key columns, adding any the schema did not type.
func (t *table) resolveKey() {
	t.keyIdx = t.keyIdx[:0]
	for _, k := range t.key {
		i, ok := t.byName[k]
		if !ok {
			i = t.addColumn(k, k, destination.Column{Name: k}, false, false)
		}
		t.cols[i].isKey = true
		t.keyIdx = append(t.keyIdx, i)
	}
}

// handOff starts the table's next batch once its last one, of cols columns
// and rows rows, went to the writer (which owns it from then on: it is not
// read here). It takes the arrays of a batch the writer is done with when
// there is one, so that a load allocates its batch arrays a few times, not
// once per batch, and grows none row by row.
func (t *table) handOff(free <-chan *destination.Batch, cols, rows int) {
	var b *destination.Batch
	select {
	case b = <-free:
	default:
		b = &destination.Batch{}
	}
	prev := b.Values
	*b = destination.Batch{Table: t.name, Columns: b.Columns[:0], Set: b.Set[:0], Deleted: b.Deleted[:0], Fresh: b.Fresh[:0]}
	clear(b.Set[:cap(b.Set)]) // drop the old partial-row masks
	b.Values = make([][]any, cols)
	for i := range b.Values {
		if i < len(prev) {
			v := prev[i]
			clear(v[:cap(v)]) // let the old values go
			b.Values[i] = v[:0]
		} else {
			b.Values[i] = make([]any, 0, max(rows, 16))
		}
	}
	t.batch = b
	clear(t.index)
	t.indexed = false
	t.hashes = t.hashes[:0]
}

// destTable is the table as it should exist in the destination now.
func (t *table) destTable() destination.Table {
	dt := destination.Table{Name: t.name, PrimaryKey: t.key}
	for _, c := range t.cols {
		col := c.col
		if col.Type == contract.Unspecified {
			if !c.isKey {
				continue
			}
			col.Type = contract.String
		}
		dt.Columns = append(dt.Columns, col)
	}
	return dt
}

// pendingChanges diffs the table against what the destination has.
func (t *table) pendingChanges() []destination.SchemaChange {
	if !t.inDest {
		if !t.declared && t.batchEmpty() && !t.claimed {
			return nil
		}
		return []destination.SchemaChange{{Kind: destination.CreateTable, Table: t.destTable()}}
	}
	var out []destination.SchemaChange
	for _, c := range t.cols {
		switch {
		case c.col.Type == contract.Unspecified:
		case c.dest.Type == contract.Unspecified:
			out = append(out, destination.SchemaChange{Kind: destination.AddColumn, Table: destination.Table{Name: t.name}, Column: c.col})
		case !sameType(c.dest, c.col):
			out = append(out, destination.SchemaChange{Kind: destination.WidenColumn, Table: destination.Table{Name: t.name}, Column: c.col})
		}
	}
	return out
}

func (t *table) batchEmpty() bool { return t.batch.Rows == 0 && !t.batch.Truncate }

// markApplied records that the destination will have the table as it is
// now, once the job just prepared is carried out.
func (t *table) markApplied() {
	t.inDest = t.inDest || t.declared || t.claimed
	for i := range t.cols {
		c := &t.cols[i]
		if c.col.Type != contract.Unspecified || (c.isKey && t.inDest) {
			if c.col.Type == contract.Unspecified {
				c.col.Type = contract.String
			}
			c.dest = c.col
		}
	}
}

func showValue(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = fmt.Sprintf("%q", x)
	case []byte:
		s = fmt.Sprintf("%d bytes", len(x))
	default:
		s = fmt.Sprintf("%v (%T)", v, v)
	}
	return truncate(s, 80)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var _ contract.Ops = (*Engine)(nil)

var _ contract.ExtraUpserter = (*Engine)(nil)
