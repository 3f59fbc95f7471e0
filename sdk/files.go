package sdk

import "github.com/sluicedata/sluice/internal/contract"

// Optional capabilities of Ops for connectors that read files, found by type
// assertion as database/sql's optional driver interfaces are:
//
//	if l, ok := ops.(sdk.FileLoader); ok {
//		res, err := l.LoadFile("events", sdk.LocalFile{...})
//		if err == nil && !res.Handled { /* upsert the rows yourself */ }
//	}
//
// ColumnDeclarer declares (adds or widens) columns mid-sync; FileLoader
// loads a whole local file through the warehouse's own reader. See
// each type's documentation.
type (
	ColumnDeclarer = contract.ColumnDeclarer
	FileLoader     = contract.FileLoader
	LocalFile      = contract.LocalFile
	FileFormat     = contract.FileFormat
	CSVDialect     = contract.CSVDialect
	ColumnValue    = contract.ColumnValue
	FileLoaded     = contract.FileLoaded
)

// The formats a FileLoader may take.
const (
	FileCSV     = contract.FileCSV
	FileParquet = contract.FileParquet
)
