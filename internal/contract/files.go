package contract

// Optional capabilities of Ops for connectors that read files. As with the
// dataset capabilities, a connector asks for one by type assertion and
// carries on without it when the runtime lacks it:
//
//	if d, ok := ops.(ColumnDeclarer); ok { ... }
//	if l, ok := ops.(FileLoader); ok { ... }

// ColumnDeclarer is implemented by Ops that accept column declarations
// mid-sync, for sources whose types are known only once read (a CSV file's
// column that holds numbers in its first rows and text further on, or a
// folder whose files differ).
type ColumnDeclarer interface {
	// DeclareColumns declares columns of a table as Schema's Table.Columns
	// would: a column the table lacks is added with its type, and a column
	// of a narrower type is widened to hold it (INT -> LONG -> DECIMAL or
	// DOUBLE -> STRING, dates to datetimes) before the next row is
	// written. A column that is already as wide or wider keeps its type,
	// and later values are converted into it. Declared columns are
	// enforced from then on. A key column cannot widen: that is an error.
	DeclareColumns(table string, columns []Column) error
}

// FileFormat is the format of a LocalFile.
type FileFormat string

// The formats a FileLoader may take.
const (
	FileCSV     FileFormat = "csv"
	FileParquet FileFormat = "parquet"
)

// CSVDialect says exactly how a CSV file is written, as a reader found it
// (fileformat.CSVInfo): a loader must read it this way, not sniff again.
type CSVDialect struct {
	Delimiter byte
	// Quote encloses fields; a quote inside a quoted field is doubled.
	Quote  byte
	Header bool
	// Gzip says the file is gzip-compressed.
	Gzip bool
}

// LocalFile is a file on the local file system, described so that a
// FileLoader can load it with the warehouse's own reader and give the
// warehouse exactly the rows the connector would have upserted one by one.
type LocalFile struct {
	Path   string
	Format FileFormat
	CSV    CSVDialect // FileCSV only
	// Columns are the file's columns in the file's order, named and typed
	// as the connector's reader gives them (fileformat). A column with an
	// empty Name is not loaded.
	//
	// For CSV, each value is read as fileformat.OpenCSV reads a value of
	// its column's type: spaces around numbers, booleans and times are
	// ignored, an unquoted empty field is NULL, a quoted empty one ("") is
	// the empty string in a STRING column and NULL in others. When any
	// value does not read as its column's type, the loader does not load
	// the file (Handled false).
	Columns []Column
	// Constants are columns every row of the file gets the same value in
	// (the values of Hive partition folders, the file's name).
	Constants []ColumnValue
	// RowNumber names a column that gets each row's 1-based position in
	// the file (the record number after the header, for CSV); empty for
	// none.
	RowNumber string
}

// ColumnValue is a column and the value every row of a file has in it.
// A Column without a type takes the type its value implies.
type ColumnValue struct {
	Column Column
	Value  any
}

// FileLoaded is the outcome of FileLoader.LoadFile.
type FileLoaded struct {
	// Handled is false when the loader could not guarantee the result
	// that upserting the rows would give (a type it cannot read exactly,
	// a value that does not read as its column's type, a destination
	// without a bulk reader): nothing was written, and the connector
	// upserts the file's rows itself.
	Handled bool
	// Rows is the number of rows loaded: each counts as one upsert.
	Rows int64
	// Reason says why the file was not handled, for a FINE log.
	Reason string
}

// FileLoader is implemented by Ops that can load a whole local file into a
// table through the warehouse's own reader (DuckDB's read_csv and
// read_parquet), inside the open checkpoint: the rows commit with the next
// Checkpoint, atomically with the state, as upserts would.
//
// LoadFile(table, f) has the effect of one Upsert per row of f in file
// order (so that, for duplicate keys, the last row wins): Columns, then
// Constants and RowNumber, are the row's columns; the table's key columns
// must be among them. Operations emitted before it on the table are applied
// first.
type FileLoader interface {
	LoadFile(table string, f LocalFile) (FileLoaded, error)
}
