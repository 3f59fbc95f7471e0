// Package destination defines what the engine needs from a warehouse.
//
// A destination is opened for one connector's schema. The engine stages
// batches that fill up before a checkpoint, and at each checkpoint asks the
// destination to apply schema changes, merge the staged batches in order and
// then the batches still in memory, and store the connector state, all in
// one transaction. Destinations are registered by URL scheme (see Open), as
// database/sql drivers are.
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

// SchemaChange is one DDL step, applied at the start of a commit.
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
}

// IsSet reports whether row r writes column c.
func (b *Batch) IsSet(r, c int) bool {
	s := b.Set[r]
	return s == nil || s[c/64]&(1<<(c%64)) != 0
}

// Staged is a batch moved out of memory, waiting for a commit.
type Staged interface {
	Table() string
}

// StateRecord is the connector state as kept in the destination. PrevHash is
// the hash of the state file content the committing run started from, which
// lets a restart tell a stale state file (crash between commit and file
// write) from one the user edited.
type StateRecord struct {
	State    []byte // a JSON object
	PrevHash string
}

// Commit is one atomic step: schema changes, then staged batches in order,
// then batches still in memory (each newer than any staged batch of its
// table), then state.
type Commit struct {
	Changes []SchemaChange
	Staged  []Staged
	Batches []*Batch
	State   StateRecord
	Synced  time.Time // the _sluice_synced value of every row written
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
	// Stage moves a batch out of memory. It is not visible in the tables
	// until a Commit names it.
	Stage(ctx context.Context, b *Batch) (Staged, error)
	// Commit applies c in one transaction: all of it or none of it.
	Commit(ctx context.Context, c Commit) error
	// Discard drops staged batches that will not be committed.
	Discard(ctx context.Context, staged []Staged) error
	// Log stores log records outside of any sync transaction, so that the
	// logs of a failed run survive it.
	Log(ctx context.Context, recs []LogRecord) error
	Close() error
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
