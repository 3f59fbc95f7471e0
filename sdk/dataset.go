package sdk

import (
	"os"

	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/internal/contract"
)

// A dataset connector models its source as a table: read whole or one
// partition at a time, maybe written back. It implements Dataset, and any of
// the optional capabilities RowReader, SchemaReader, RowWriter,
// PartitionLister, PartitionChecker and RecordCounter, which the runtime
// discovers by type assertion, as database/sql does with a driver's:
//
//	type readings struct{}
//
//	func (readings) Info() sdk.DatasetInfo { return sdk.DatasetInfo{Name: "readings"} }
//	func (readings) ReadRows(ctx context.Context, req sdk.ReadRequest, emit func(sdk.Row) error) error { ... }
//
//	func main() { sdk.MainDataset(readings{}) }
//
// MainDataset gives the program the commands read, write, partitions, count
// and describe; OpenDataset runs the same capabilities from Go, in tests.
type (
	Dataset          = contract.Dataset
	DatasetInfo      = contract.DatasetInfo
	Row              = contract.Row
	RowReader        = contract.RowReader
	ReadRequest      = contract.ReadRequest
	SchemaReader     = contract.SchemaReader
	RowWriter        = contract.RowWriter
	WriteRequest     = contract.WriteRequest
	WriteRow         = contract.WriteRow
	WriteMode        = contract.WriteMode
	Writer           = contract.Writer
	PartitionLister  = contract.PartitionLister
	PartitionChecker = contract.PartitionChecker
	RecordCounter    = contract.RecordCounter
	CapabilityError  = contract.CapabilityError

	Partitioning = contract.Partitioning
	Dimension    = contract.Dimension
	Period       = contract.Period
	Partition    = contract.Partition

	Param     = contract.Param
	Params    = contract.Params
	ParamType = contract.ParamType

	DatasetHandle = contract.DatasetHandle
	ReadOptions   = contract.ReadOptions
	ReadResult    = contract.ReadResult
	WriteOptions  = contract.WriteOptions
	WriteResult   = contract.WriteResult
)

// Write modes.
const (
	Overwrite = contract.Overwrite
	Append    = contract.Append
)

// Periods of a partition dimension; Discrete is a dimension of plain
// string values.
const (
	Discrete = contract.Discrete
	Year     = contract.Year
	Month    = contract.Month
	Day      = contract.Day
	Hour     = contract.Hour
)

// Parameter types.
const (
	ParamString      = contract.ParamString
	ParamText        = contract.ParamText
	ParamInt         = contract.ParamInt
	ParamDouble      = contract.ParamDouble
	ParamBoolean     = contract.ParamBoolean
	ParamSelect      = contract.ParamSelect
	ParamMultiSelect = contract.ParamMultiSelect
	ParamSecret      = contract.ParamSecret
	ParamKeyValue    = contract.ParamKeyValue
)

// DefaultSchemaSample is how many rows infer an undeclared schema.
const DefaultSchemaSample = contract.DefaultSchemaSample

var (
	// ErrLimitReached is what emit returns once the runtime has the rows it
	// asked for: return it from ReadRows.
	ErrLimitReached = contract.ErrLimitReached
	// ErrBadPartitionID is wrapped by every malformed partition id error.
	ErrBadPartitionID = contract.ErrBadPartitionID
)

// Capabilities names what d can do: "read rows", "read schema", ...
func Capabilities(d Dataset) []string { return contract.Capabilities(d) }

// OpenDataset validates cfg against d's parameters and returns a handle
// that runs d's capabilities as the command line does.
func OpenDataset(d Dataset, cfg Config) (*DatasetHandle, error) { return contract.OpenDataset(d, cfg) }

// MainDataset runs a dataset connector's command line and exits with its
// status.
func MainDataset(d Dataset) {
	os.Exit(cli.RunDataset(d, os.Args[1:]))
}
