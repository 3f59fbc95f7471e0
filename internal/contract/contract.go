// Package contract holds the types shared by connectors and the runtime.
//
// It is a leaf package: the engine and the destinations import it, and the
// public sdk package re-exports it, so that sdk.Main can start the engine
// without an import cycle. Connector authors never import it directly.
package contract

import (
	"context"
	"fmt"
	"strings"
)

// Config is a connector's configuration: string keys to string values, as
// read from configuration.json.
type Config map[string]string

// State is what a connector checkpoints: any JSON object. It is empty on the
// first sync and after a reset.
type State map[string]any

// Ops is how Update delivers data. Every call may block while the
// destination catches up (backpressure), and returns an error once the sync
// cannot go on (a bad value, a cancelled context, a failed write): Update
// should then return that error.
type Ops interface {
	// Upsert writes a whole row by primary key: insert, or replace every
	// column; columns not given become NULL.
	Upsert(table string, row map[string]any) error
	// Update changes only the given columns of an existing row; a key that
	// is not in the table is ignored.
	Update(table string, row map[string]any) error
	// Delete marks the row with these key values as deleted (a soft delete).
	// For a table without a primary key, pass the whole row or its
	// _sluice_id.
	Delete(table string, keys map[string]any) error
	// Truncate marks every row of the table synced before the call as
	// deleted.
	Truncate(table string) error
	// Checkpoint commits everything emitted so far together with state,
	// which must marshal to a JSON object. The next sync starts from it.
	Checkpoint(state any) error
}

// ExtraUpserter is an Ops that upserts a row with values added to it,
// without the caller copying the row into a map of its own: the dataset
// runtime adds a partition and a position to every row it reads. A value in
// extra replaces the row's value of the same name.
type ExtraUpserter interface {
	UpsertWith(table string, row map[string]any, extra []Field) error
}

// Field is one named value.
type Field struct {
	Name  string
	Value any
}

// UpdateFunc reads the source and emits operations.
type UpdateFunc func(ctx context.Context, config Config, state State, ops Ops) error

// SchemaFunc declares the tables a connector delivers.
type SchemaFunc func(ctx context.Context, config Config) ([]Table, error)

// Connector is what a connector program hands to sdk.Main.
type Connector struct {
	// Name names the warehouse schema the connector writes into. Empty
	// means the name of the folder the connector runs in.
	Name   string
	Update UpdateFunc // required
	Schema SchemaFunc // optional
}

// Table declares one destination table.
type Table struct {
	Name string
	// PrimaryKey lists the key columns; empty means the table is keyed by
	// _sluice_id, a hash of each row's values.
	PrimaryKey []string
	// Columns declares types for some or all columns. Undeclared columns
	// are inferred from the values.
	Columns []Column
}

// Column declares one column's type. Precision and Scale apply to Decimal
// only, and are required there.
type Column struct {
	Name      string
	Type      Type
	Precision int
	Scale     int
}

// Type is a sluice column type.
type Type uint8

// The sluice types. Unspecified is the zero value: a column whose type is
// inferred from its values.
const (
	Unspecified Type = iota
	Boolean
	Short
	Int
	Long
	Decimal
	Float
	Double
	NaiveDate
	NaiveDateTime
	UTCDateTime
	Binary
	XML
	String
	JSON
)

var typeNames = [...]string{
	Unspecified:   "UNSPECIFIED",
	Boolean:       "BOOLEAN",
	Short:         "SHORT",
	Int:           "INT",
	Long:          "LONG",
	Decimal:       "DECIMAL",
	Float:         "FLOAT",
	Double:        "DOUBLE",
	NaiveDate:     "NAIVE_DATE",
	NaiveDateTime: "NAIVE_DATETIME",
	UTCDateTime:   "UTC_DATETIME",
	Binary:        "BINARY",
	XML:           "XML",
	String:        "STRING",
	JSON:          "JSON",
}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType reads a type name such as "LONG" or "utc_datetime".
func ParseType(s string) (Type, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for i, n := range typeNames {
		if i != int(Unspecified) && n == u {
			return Type(i), nil
		}
	}
	return Unspecified, fmt.Errorf("unknown type %q (want one of BOOLEAN, SHORT, INT, LONG, DECIMAL, FLOAT, DOUBLE, NAIVE_DATE, NAIVE_DATETIME, UTC_DATETIME, BINARY, XML, STRING, JSON)", s)
}

// DecimalText is an exact decimal number in its text form, such as "-12.50".
// Rows carry it where a float would lose digits; an undeclared column that
// receives one is inferred as DECIMAL.
type DecimalText string
