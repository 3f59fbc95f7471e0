// Package fileformat turns the bytes of a CSV, Parquet or JSON Lines file into
// typed rows, and cuts large files into parts at record or row-group
// boundaries for upload.
//
// Values in rows use the Go types the sync engine takes: nil, bool, int64,
// float64, string, []byte, time.Time (NAIVE_DATE and NAIVE_DATETIME hold the
// wall clock in UTC; UTC_DATETIME is UTC), contract.DecimalText (sdk.Decimal)
// for exact decimals and json.RawMessage for JSON.
package fileformat

import (
	"io"

	"github.com/sluicedata/sluice/internal/contract"
)

// Format is a file format.
type Format string

// The formats sluice reads.
const (
	CSV     Format = "csv"
	Parquet Format = "parquet"
	JSONL   Format = "jsonl"
)

// Column is a column of a file, with the sluice type it maps to.
type Column = contract.Column

// Rows streams a file's rows. Memory is bounded by one row (plus the
// format's own buffer: a Parquet page, a CSV read buffer), never by the file.
//
//	for rows.Next() {
//		vals := rows.Values() // one value per column, in Columns() order
//	}
//	if err := rows.Err(); err != nil { ... }
type Rows interface {
	Columns() []Column
	Next() bool
	// Values is only valid until the next call to Next.
	Values() []any
	Err() error
	Close() error
}

// Source is a file to read: sequentially (CSV, JSON Lines) or at any offset
// (Parquet reads its footer first). filestore.Reader and *os.File (with a
// Size method) satisfy it.
type Source interface {
	io.Reader
	io.ReaderAt
	Size() int64
}

// DefaultSampleRows is how many rows type inference looks at by default.
const DefaultSampleRows = 1000

// Options tune reading. The zero value sniffs everything.
type Options struct {
	// SampleRows is how many rows CSV and JSON Lines type inference reads
	// before the first row is returned (default DefaultSampleRows).
	SampleRows int
	CSV        CSVOptions
}

// CSVOptions override what the CSV sniffer would find.
type CSVOptions struct {
	// Delimiter is the field separator; 0 sniffs among , ; tab and |.
	Delimiter byte
	// Header says whether the first record holds column names; nil sniffs.
	Header *bool
	// Quote encloses fields that hold delimiters, quotes or line ends;
	// 0 means ". A quote inside a quoted field is doubled.
	Quote byte
	// DecimalAsDouble reads fixed-point columns (such as amounts, 12.50)
	// as DOUBLE rather than exact DECIMAL.
	DecimalAsDouble bool
	// MaxRecordBytes bounds one record, and so the memory a quote that is
	// never closed can take (default DefaultMaxRecordBytes, 64 MiB).
	MaxRecordBytes int
}
