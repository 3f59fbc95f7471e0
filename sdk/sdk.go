// Package sdk is the one package a sluice connector imports.
//
// A connector is a Go program with an Update function, and optionally a
// Schema function, handed to Main:
//
//	func main() {
//		sdk.Main(sdk.Connector{Update: update, Schema: schema})
//	}
//
// Main gives the program its command line: `go run . debug` syncs into a
// local DuckDB warehouse (files/warehouse.db), `go run . reset` starts over.
// Run `go run . help` for the rest.
package sdk

import (
	"log/slog"
	"os"

	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/internal/contract"
)

// The connector contract; see each type's documentation.
type (
	Connector  = contract.Connector
	UpdateFunc = contract.UpdateFunc
	SchemaFunc = contract.SchemaFunc
	Ops        = contract.Ops
	Config     = contract.Config
	State      = contract.State
	Table      = contract.Table
	Column     = contract.Column
	Type       = contract.Type
	Decimal    = contract.DecimalText
)

// Column types.
const (
	Boolean       = contract.Boolean
	Short         = contract.Short
	Int           = contract.Int
	Long          = contract.Long
	DecimalType   = contract.Decimal
	Float         = contract.Float
	Double        = contract.Double
	NaiveDate     = contract.NaiveDate
	NaiveDateTime = contract.NaiveDateTime
	UTCDateTime   = contract.UTCDateTime
	Binary        = contract.Binary
	XML           = contract.XML
	String        = contract.String
	JSON          = contract.JSON
)

// ParseType reads a type name such as "LONG" or "utc_datetime".
func ParseType(s string) (Type, error) { return contract.ParseType(s) }

// Main runs the connector's command line and exits with its status.
func Main(c Connector) {
	os.Exit(cli.RunConnector(c, os.Args[1:]))
}

// Log levels, for slog users: the runtime's handler names them FINE, INFO,
// WARNING and SEVERE.
const (
	LevelFine    = contract.LevelFine
	LevelInfo    = contract.LevelInfo
	LevelWarning = contract.LevelWarning
	LevelSevere  = contract.LevelSevere
)

// Fine logs detail for local debugging; it shows only with --verbose.
func Fine(msg string, args ...any) { contract.Log(LevelFine, msg, nil, args...) }

// Info logs progress and status.
func Info(msg string, args ...any) { contract.Log(LevelInfo, msg, nil, args...) }

// Warning logs a condition that may degrade the sync if not addressed.
func Warning(msg string, args ...any) { contract.Log(LevelWarning, msg, nil, args...) }

// Severe logs a failure, with the error that caused it (may be nil).
func Severe(msg string, err error, args ...any) { contract.Log(LevelSevere, msg, err, args...) }

// Logger returns the run's logger, for code that takes a *slog.Logger.
func Logger() *slog.Logger { return slog.Default() }
