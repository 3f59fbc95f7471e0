// Package destination defines what the engine needs from a warehouse.
//
// A destination is opened for one connector's schema. Each checkpoint is one
// transaction (Tx): the engine applies schema changes and writes batches as
// they fill, in order, then commits them with the connector state.
// Destinations are registered by URL scheme (see Open), as database/sql
// drivers are.
package destination

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

// System column names, present in every table.
const (
	ColumnID      = "_sluice_id"      // surrogate key of a table without a primary key
	ColumnSynced  = "_sluice_synced"  // when the row was last written
	ColumnDeleted = "_sluice_deleted" // soft-delete flag
	LogTable      = "_sluice_log"
	StateTable    = "_sluice_state"
)

// Column is a destination column, with a normalised name.
type Column struct {
	Name      string
	Type      contract.Type
	Precision int
	Scale     int
}

func (c Column) String() string {
	if c.Type == contract.Decimal {
		return fmt.Sprintf("%s DECIMAL(%d,%d)", c.Name, c.Precision, c.Scale)
	}
	return c.Name + " " + c.Type.String()
}

// Table is a destination table. Columns are the data columns, key columns and
// _sluice_id included; _sluice_synced and _sluice_deleted are implied.
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
	// Empty is true when Describe found no rows in the table, deleted or
	// not. The engine then knows that every key it has not written itself
	// is absent.
	Empty bool
}

// Column returns the named column and whether it exists.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// ChangeKind says what a SchemaChange does.
type ChangeKind uint8

const (
	CreateTable ChangeKind = iota + 1
	AddColumn
	WidenColumn // change a column's type to a wider one, converting its values
)

// SchemaChange is one DDL step.
type SchemaChange struct {
	Kind   ChangeKind
	Table  Table  // CreateTable: the whole table; otherwise its name
	Column Column // AddColumn, WidenColumn
}

func (c SchemaChange) String() string {
	switch c.Kind {
	case CreateTable:
		cols := make([]string, len(c.Table.Columns))
		for i, col := range c.Table.Columns {
			cols[i] = col.String()
		}
		return fmt.Sprintf("create table %s (%s) key (%s)", c.Table.Name, strings.Join(cols, ", "), strings.Join(c.Table.PrimaryKey, ", "))
	case AddColumn:
		return fmt.Sprintf("add column %s.%s", c.Table.Name, c.Column)
	case WidenColumn:
		return fmt.Sprintf("widen column %s.%s", c.Table.Name, c.Column)
	}
	return "unknown change"
}

// Deletion states of a batch row.
const (
	KeepDeleted int8 = -1 // partial row: leave the flag as it is
	Live        int8 = 0
	Deleted     int8 = 1
)

// Batch is the net effect of a run of operations on one table: at most one
// row per key, in no particular order. Values are column-major.
type Batch struct {
	Table   string
	Columns []Column // the shape of Values; a subset of the table's columns
	Key     []int    // indexes into Columns of the key columns
	// Truncate soft-deletes every live row of the table before the rows
	// are applied.
	Truncate bool
	Rows     int
	Values   [][]any // Values[column][row]; nil is NULL
	// Set marks, per row, which columns a partial row changes: nil for a
	// full row (every column written, missing ones NULL), else a bitset
	// over Columns.
	Set     [][]uint64
	Deleted []int8
	// Fresh[r] reports that no row with row r's key can be in the table, so
	// the row can be inserted without a lookup: the engine tracks the keys
	// it wrote to a table that was empty when the sync started. Only full
	// rows are ever fresh. Rows past its length are not known to be fresh.
	Fresh []bool
}

// IsSet reports whether row r writes column c.
func (b *Batch) IsSet(r, c int) bool {
	s := b.Set[r]
	return s == nil || s[c/64]&(1<<(c%64)) != 0
}

// StateRecord is the connector state as kept in the destination. PrevHash is
// the hash of the state file content the committing run started from, which
// lets a restart tell a stale state file (crash between commit and file
// write) from one the user edited.
type StateRecord struct {
	State    []byte // a JSON object
	PrevHash string
}

// LogRecord is one connector log line.
type LogRecord struct {
	Time    time.Time
	Level   string
	Message string
}

// Destination is one connector's schema in a warehouse.
type Destination interface {
	// Describe lists the tables of the schema; system tables excluded.
	Describe(ctx context.Context) ([]Table, error)
	// ReadState returns the last committed state, or nil if none.
	ReadState(ctx context.Context) (*StateRecord, error)
	// Begin opens the transaction of one checkpoint. Every row it writes
	// gets synced as its _sluice_synced. At most one is open at a time.
	Begin(ctx context.Context, synced time.Time) (Tx, error)
	// Log stores log records outside of any sync transaction, so that the
	// logs of a failed run survive it.
	Log(ctx context.Context, recs []LogRecord) error
	Close() error
}

// Tx is one checkpoint: schema changes and batches applied in the order
// given, then the state, all visible together at Commit or not at all. The
// engine hands batches over as they fill, so a destination should write
// them through rather than hold them: memory then stays bounded by the
// batch, however far apart the connector's checkpoints are.
type Tx interface {
	// Apply makes schema changes. A batch that needs a change comes after
	// it; a change may come after batches of the same table.
	Apply(ctx context.Context, changes []SchemaChange) error
	// Write merges a batch into its table.
	Write(ctx context.Context, b *Batch) error
	// Commit stores the state and makes everything durable at once.
	Commit(ctx context.Context, state StateRecord) error
	// Rollback drops everything since Begin. It is safe after a failed
	// Commit or a failed Write.
	Rollback() error
}

// Opener opens a destination for the schema named in the options.
type Opener func(ctx context.Context, u *url.URL, opts Options) (Destination, error)

// Options are the settings every destination takes.
type Options struct {
	Schema string // the connector's schema, already normalised
}

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
)

// Register makes a destination available under a URL scheme.
func Register(scheme string, o Opener) {
	mu.Lock()
	defer mu.Unlock()
	openers[scheme] = o
}

// Open opens the destination a URL names, such as duckdb:///path/warehouse.db.
func Open(ctx context.Context, rawURL string, opts Options) (Destination, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The parse error quotes the URL, which may hold a password.
		return nil, fmt.Errorf("destination URL is not a valid URL")
	}
	mu.Lock()
	o, ok := openers[u.Scheme]
	schemes := make([]string, 0, len(openers))
	for s := range openers {
		schemes = append(schemes, s)
	}
	mu.Unlock()
	if !ok {
		sort.Strings(schemes)
		return nil, fmt.Errorf("destination URL: unknown scheme %q (known: %s)", u.Scheme, strings.Join(schemes, ", "))
	}
	return o(ctx, u, opts)
}

// FileLoader is an optional capability of a Tx: loading a whole local file
// through the warehouse's own reader (DuckDB's read_csv and read_parquet)
// inside the transaction, so that the rows commit with the checkpoint's
// state. The engine finds it by type assertion; a Tx without it gets the
// file's rows as batches.
type FileLoader interface {
	// LoadFile writes every row of the file into its table as a full row
	// upsert would, each row with the transaction's _sluice_synced: the
	// rows of the file replace those with the same key, and among the
	// file's own rows with one key the last wins. The engine has applied
	// the schema changes the file needs and written the table's earlier
	// batches.
	//
	// When it cannot guarantee exactly that result (a type it cannot read
	// as the connector's reader does, a value that does not read as its
	// column's type) it returns Handled false and leaves the table as it
	// was, and the transaction usable. An error (an unreadable file) ends
	// the transaction, as a failed Write does.
	LoadFile(ctx context.Context, f FileLoad) (FileLoadResult, error)
}

// FileLoad is a file for FileLoader.LoadFile, with warehouse names.
type FileLoad struct {
	Table  string
	Path   string
	Format contract.FileFormat
	CSV    contract.CSVDialect
	// Columns are the file's columns in the file's order: the warehouse
	// column each one fills and its type, which is the table column's
	// type. A column with an empty Name is not loaded.
	Columns []Column
	// Constants fill their columns with one value for every row, in the
	// engine's canonical form for the column's type (see engine/types.go).
	Constants []FileConstant
	// RowNumber is the column that gets each row's 1-based position in
	// the file; empty for none.
	RowNumber string
}

// FileConstant is a column a file load fills with one value.
type FileConstant struct {
	Column Column
	Value  any
}

// FileLoadResult is what LoadFile did.
type FileLoadResult struct {
	Handled bool
	Rows    int64
	// Reason says why the file was not handled.
	Reason string
}
