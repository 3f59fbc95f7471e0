// Package files is sluice's built-in files connector: it syncs the tables of
// a file store, a local folder or an S3 prefix (see filetable for what makes
// a table), into the warehouse, incrementally. It is written against the
// same SDK as any other connector; the two things it needs beyond Upsert,
// Delete and Checkpoint are optional capabilities of Ops
// (contract.ColumnDeclarer and contract.FileLoader), without which it still
// works, more slowly and with types inferred from values.
//
// # Configuration
//
// Every value is a string (see Params and Doc):
//
//	{
//	  "root": "s3://bucket/raw",           // or /data/raw, file:///data/raw
//	  "tables": "users, orders",           // default: every table at the root
//	  "primary_key": "{\"users\": \"id\", \"orders\": \"order_id,line\"}",
//	  "endpoint": "http://127.0.0.1:9000", "region": "us-east-1", "path_style": "true",
//	  "access_key_id": "...", "secret_access_key": "..."
//	}
//
// secret_access_key and session_token are secrets: they are masked in every
// output and never stored in the state or the warehouse.
//
// # Rows
//
// Every row gets two lineage columns: _file, the file's key in the store
// (such as "events/date=2024-03-01/part-0.csv"), and _line, the row's
// 1-based position among the file's rows (for CSV the record number after
// the header, which is the line number less one unless a quoted field spans
// lines). Hive partition values are columns, as filetable reads them.
//
// A table with a primary_key is upserted by that key: the last row of a key
// wins, whichever file it is in (files are read in key order). Its rows are
// only ever upserted: a row whose key disappears from a file, or whose file
// is removed from the store, stays in the warehouse (the connector cannot
// tell whether another file still holds the key); run `sluice reset` to
// drop such rows.
//
// A table without a primary_key is appended to, keyed by (_file, _line):
// every row of every file is one warehouse row. A changed file replaces its
// rows exactly: row n of the new version replaces row n of the old, and the
// old version's rows beyond the new row count are soft-deleted
// (_sluice_deleted). The rows of a file removed from the store are
// soft-deleted. Reading a file again, after a crash or a change, therefore
// never duplicates a row.
//
// # Incremental syncs
//
// The state keeps, per table, each file read with its size, modification
// time and ETag (S3), and how many of its rows are committed:
//
//	{"tables": {"users": {"users.csv": {"size": 1234, "mtime": "2024-03-01T10:00:00Z", "etag": "...", "rows": 20, "lines": 20, "done": true}}}}
//
// A sync reads only the files that are new or whose size, modification
// time or ETag changed, in key order. It checkpoints after a file once at
// least 50,000 rows wait (smaller files share a checkpoint), and every
// checkpoint_rows rows inside a large file; a run that stops inside a file
// resumes after the rows it committed. Data and state commit together, so a
// crash at any point and a new run leave the warehouse as one uninterrupted
// run would.
//
// A file that cannot be read (a ragged CSV line, a damaged Parquet file)
// fails the sync with the file's name and the line; what the last
// checkpoint committed stays.
//
// # Column types
//
// Types come from the files: Parquet's schema, or CSV and JSON Lines
// sniffed from their first rows (fileformat). Schema declares each table
// with its key and lineage columns; the data columns are declared while the
// sync runs (contract.ColumnDeclarer), file by file, because they may widen:
// a CSV column of numbers that holds "n/a" further on becomes STRING, as do
// columns whose type differs between a folder's files. Declaring them in
// Schema would make the next run refuse a warehouse column wider than the
// first file's type.
//
// # The fast path
//
// When the destination can load a local file with its own reader (DuckDB's
// read_csv and read_parquet, contract.FileLoader), a CSV or Parquet file of
// a local folder goes that way, in one statement inside the checkpoint's
// transaction, with the same result as upserting its rows: the reader is
// told fileformat's dialect and types, and checks each value as fileformat
// reads it. Whenever it cannot guarantee that (a value that does not read
// as its column's sniffed type, a type it does not read alike, a file on
// S3, JSON Lines, a destination without the capability) the rows are
// upserted one by one instead. Set "fast_path": "false" to always upsert.
package files

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluicedata/sluice/filestore"
	_ "github.com/sluicedata/sluice/filestore/s3" // s3:// roots
	"github.com/sluicedata/sluice/filetable"
	"github.com/sluicedata/sluice/internal/contract"
)

// Name is the connector's name, and so its warehouse schema's.
const Name = "files"

// The lineage columns every row gets.
const (
	FileColumn = "_file"
	LineColumn = "_line"
)

// DefaultCheckpointRows is how many rows a large file's sync reads between
// two checkpoints.
const DefaultCheckpointRows = 500_000

// fileCheckpointRows is how many rows wait, at least, before a checkpoint
// between files: a commit costs DuckDB about as much as 50,000 rows.
const fileCheckpointRows = 50_000

// Params declares the configuration (contract.Params.Validate checks it).
var Params = contract.Params{
	{Name: "root", Label: "store root: a folder, file:///path or s3://bucket/prefix", Type: contract.ParamString, Mandatory: true},
	{Name: "tables", Label: "tables to sync, comma-separated (default: all)", Type: contract.ParamString},
	{Name: "primary_key", Label: `primary key per table, a JSON object: {"users": "id", "orders": "order_id,line"}`, Type: contract.ParamKeyValue},
	{Name: "endpoint", Label: "S3 endpoint URL (default: AWS, or AWS_ENDPOINT_URL)", Type: contract.ParamString},
	{Name: "region", Label: "S3 region (default: AWS_REGION)", Type: contract.ParamString},
	{Name: "path_style", Label: "S3 path-style addressing (ENDPOINT/BUCKET), for self-hosted servers", Type: contract.ParamBoolean, Default: "false"},
	{Name: "access_key_id", Label: "S3 access key id (default: AWS_ACCESS_KEY_ID)", Type: contract.ParamString},
	{Name: "secret_access_key", Label: "S3 secret access key (default: AWS_SECRET_ACCESS_KEY)", Type: contract.ParamSecret},
	{Name: "session_token", Label: "S3 session token", Type: contract.ParamSecret},
	{Name: "fast_path", Label: "load local CSV and Parquet files with the warehouse's own reader when it gives the same rows", Type: contract.ParamBoolean, Default: "true"},
	{Name: "checkpoint_rows", Label: "rows between two checkpoints inside a large file", Type: contract.ParamInt, Default: "500000"},
}

// Doc describes the configuration, for a command line to print.
const Doc = `The files connector syncs the tables of a file store into the warehouse.

Configuration (configuration.json; every value is a string):
  root               mandatory: a folder, file:///path or s3://bucket/prefix
  tables             tables to sync, comma-separated (default: every table at the root)
  primary_key        a JSON object of table to key columns, comma-separated:
                     {"users": "id", "orders": "order_id,line"}
                     A table with a key is upserted by it; a table without one
                     is keyed by (_file, _line): the file's key and the row's
                     position in it, so that a changed file replaces its rows
                     and a removed file's rows are soft-deleted.
  endpoint, region, path_style, access_key_id, secret_access_key, session_token
                     S3 settings (default: the usual AWS environment variables);
                     secret_access_key and session_token are never shown
  fast_path          "false" to upsert every row rather than load local CSV and
                     Parquet files with the warehouse's own reader (default true)
  checkpoint_rows    rows between checkpoints inside a large file (default 500000)

Each row gets _file and _line. Only new and changed files (by size,
modification time and ETag) are read.`

// Secrets returns the configuration values that must never be shown.
func Secrets(cfg contract.Config) []string { return Params.Secrets(cfg) }

// Connector returns the files connector.
func Connector() contract.Connector {
	return contract.Connector{Name: Name, Schema: schema, Update: update}
}

// config is a checked configuration.
type config struct {
	root           string
	store          filestore.Options
	tables         []string            // nil: all
	keys           map[string][]string // by table
	fastPath       bool
	checkpointRows int64
}

func parseConfig(raw contract.Config) (config, error) {
	var c config
	for k := range raw {
		if !slices.ContainsFunc(Params, func(p contract.Param) bool { return p.Name == k }) {
			names := make([]string, len(Params))
			for i, p := range Params {
				names[i] = p.Name
			}
			return c, fmt.Errorf("configuration: unknown key %q (the files connector takes %s)", k, strings.Join(names, ", "))
		}
	}
	cfg, err := Params.Validate(raw)
	if err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	c.root = strings.TrimSpace(cfg["root"])
	c.store = filestore.Options{
		Endpoint:        cfg["endpoint"],
		Region:          cfg["region"],
		AccessKeyID:     cfg["access_key_id"],
		SecretAccessKey: cfg["secret_access_key"],
		SessionToken:    cfg["session_token"],
	}
	if c.store.PathStyle, err = cfg.Bool("path_style"); err != nil {
		return c, err
	}
	if c.fastPath, err = cfg.Bool("fast_path"); err != nil {
		return c, err
	}
	if c.checkpointRows, err = cfg.Int("checkpoint_rows"); err != nil {
		return c, err
	}
	if c.checkpointRows < 1 {
		return c, fmt.Errorf(`configuration: parameter "checkpoint_rows" must be at least 1, got %d`, c.checkpointRows)
	}
	for _, t := range cfg.List("tables") {
		if !slices.Contains(c.tables, t) {
			c.tables = append(c.tables, t)
		}
	}
	kv, err := cfg.KeyValues("primary_key")
	if err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	c.keys = map[string][]string{}
	for table, cols := range kv {
		var key []string
		for _, k := range strings.Split(cols, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				return c, fmt.Errorf(`configuration: primary_key of table %q: %q has an empty column name; write columns comma-separated, like "order_id,line"`, table, cols)
			}
			if slices.Contains(key, k) {
				return c, fmt.Errorf("configuration: primary_key of table %q names column %q twice", table, k)
			}
			key = append(key, k)
		}
		if len(c.tables) > 0 && !slices.Contains(c.tables, table) {
			return c, fmt.Errorf("configuration: primary_key names table %q, which is not among the tables to sync (%s)", table, strings.Join(c.tables, ", "))
		}
		c.keys[table] = key
	}
	return c, nil
}

// open opens the store and lists the tables to sync, each checked to exist.
func (c config) open(ctx context.Context) (*filetable.Root, []string, error) {
	root, err := filetable.Open(ctx, c.root, c.store)
	if err != nil {
		return nil, nil, err
	}
	names := slices.Clone(c.tables)
	if names == nil {
		if names, err = root.Names(ctx); err != nil {
			root.Close()
			return nil, nil, err
		}
	} else {
		for _, n := range names {
			// A missing table's error names the closest existing ones.
			if _, err := root.Table(ctx, n); err != nil {
				root.Close()
				return nil, nil, fmt.Errorf("configuration: tables: %w", err)
			}
		}
	}
	for table := range c.keys {
		if !slices.Contains(names, table) {
			root.Close()
			return nil, nil, fmt.Errorf("configuration: primary_key names table %q, which is not at %s (tables: %s)", table, root.Store(), strings.Join(names, ", "))
		}
	}
	sort.Strings(names)
	return root, names, nil
}

// schema declares each table with its key and lineage columns; data columns
// are declared as the sync reads them (see the package documentation).
func schema(ctx context.Context, raw contract.Config) ([]contract.Table, error) {
	c, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	root, names, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	out := make([]contract.Table, 0, len(names))
	for _, name := range names {
		t, err := root.Table(ctx, name)
		if err != nil {
			return nil, tableErr(c, err)
		}
		cols, err := t.Columns(ctx)
		if err != nil {
			return nil, err
		}
		tbl, err := declaredTable(name, cols, c.keys[name])
		if err != nil {
			return nil, err
		}
		out = append(out, tbl)
	}
	return out, nil
}

// tableErr adds how to leave a table that cannot be read out of the sync.
func tableErr(c config, err error) error {
	if c.tables == nil {
		return fmt.Errorf("%w (to sync the other tables, list them in the configuration's \"tables\")", err)
	}
	return err
}

// declaredTable is a table as Schema declares it.
func declaredTable(name string, cols []contract.Column, key []string) (contract.Table, error) {
	if err := checkLineage(name, cols); err != nil {
		return contract.Table{}, err
	}
	lineage := []contract.Column{{Name: FileColumn, Type: contract.String}, {Name: LineColumn, Type: contract.Long}}
	if len(key) == 0 {
		return contract.Table{Name: name, PrimaryKey: []string{FileColumn, LineColumn}, Columns: lineage}, nil
	}
	t := contract.Table{Name: name, PrimaryKey: key}
	for _, k := range key {
		i := slices.IndexFunc(cols, func(c contract.Column) bool { return c.Name == k })
		if i < 0 {
			names := make([]string, len(cols))
			for j, c := range cols {
				names[j] = c.Name
			}
			return t, fmt.Errorf("configuration: primary_key of table %q names column %q, which the table does not have (its columns: %s)", name, k, strings.Join(names, ", "))
		}
		if cols[i].Type == contract.Unspecified {
			return t, fmt.Errorf("table %q: key column %q holds only NULLs in the first file, so its type is unknown: a key column needs values", name, k)
		}
		t.Columns = append(t.Columns, cols[i])
	}
	t.Columns = append(t.Columns, lineage...)
	return t, nil
}

// checkLineage refuses a file column that would take a lineage column's
// name.
func checkLineage(table string, cols []contract.Column) error {
	for _, c := range cols {
		if isLineage(c.Name) {
			return fmt.Errorf("table %q: its column %q would be the lineage column %s or %s that the files connector adds: rename the column in the files", table, c.Name, FileColumn, LineColumn)
		}
	}
	return nil
}

func isLineage(name string) bool {
	if !strings.HasPrefix(name, "_") {
		return false
	}
	n := strings.ToLower(strings.TrimLeft(name, "_"))
	return n == "file" || n == "line"
}
