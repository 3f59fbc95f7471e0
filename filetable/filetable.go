// Package filetable reads the tables that files in a store make, and
// uploads local files as tables, splitting large ones.
//
// # Tables in a store
//
// A store root (a local folder or an S3 prefix, see filestore) holds tables:
//
//   - each file directly under the root whose name sluice reads (.csv,
//     .tsv, .parquet, .jsonl, .ndjson, and gzipped CSV and JSON Lines) is a
//     table named after the file without its extensions: users.parquet is
//     users, articles.csv.gz is articles;
//   - each folder directly under the root is one table: the files in it,
//     at any depth, read as a union in key order. They must all have one
//     format. Folders named KEY=VALUE (Hive style, such as
//     date=2024-03-01/part-0.parquet) make KEY a column and a partition,
//     typed LONG when every value is an integer, NAIVE_DATE when every value
//     is a date (YYYY-MM-DD), STRING otherwise; __HIVE_DEFAULT_PARTITION__
//     is NULL. When a file also holds a column of a partition key's name,
//     the folder's value wins.
//   - a file or folder whose name starts with . or _ (_SUCCESS,
//     _temporary/, .part files) is not read; files with other extensions
//     are ignored and counted (Listing.Unknown).
//
// A name that a file and a folder both give (users.csv and users/), or two
// files (users.csv and users.parquet), is an error when that table is asked
// for, as is a folder of mixed formats.
//
// The files of a folder need not have the same columns: they are united by
// name, as DuckDB's union_by_name does. Table.Columns tells the columns of
// the first file (plus the partition columns); while Rows streams, a later
// file's new column is appended to Rows.Columns (NULL in the rows before and
// in files without it), and a column whose type differs between files is
// widened (LONG with DOUBLE is DOUBLE, a DATE with a TIMESTAMP is a
// TIMESTAMP, any other mix STRING, whose values are then the text).
// Columns only ever grow and widen, as a CSV file's own columns do
// (fileformat.OpenCSV).
//
//	root, err := filetable.Open(ctx, "s3://bucket/raw", filestore.Options{})
//	if err != nil { ... }
//	defer root.Close()
//	names, err := root.Names(ctx) // sorted
//	t, err := root.Table(ctx, "events") // a missing name's error suggests the closest ones
//	cols, err := t.Columns(ctx)
//	n, known, err := t.Count(ctx) // Parquet: from the footers; CSV: unknown
//	rows, err := t.Rows(ctx)
//	defer rows.Close()
//	for rows.Next() {
//		vals := rows.Values() // one per rows.Columns(), partition values included
//	}
//	err = rows.Err() // names the file, and the line for CSV and JSON Lines
//
// A sync that reads only new or changed files lists t.Files (key, size,
// modification time, ETag and partition values of each) and streams those
// through t.RowsOf.
//
// # Upload
//
// Upload writes a local CSV, Parquet or JSON Lines file (the text formats
// also gzipped: .csv.gz, .jsonl.gz) as a table. A file of 1 GiB or more
// (compressed) is split into parts of about UploadOptions.PartitionSizeMB
// (CSV at record boundaries with the header repeated, JSON Lines at line
// ends, Parquet at row-group boundaries; gzipped parts each one gzip file)
// named NAME/part-00001.csv and so on; a smaller one is the single object
// NAME.csv, NAME.csv.gz, NAME.parquet etc. CSV and Parquet column names that
// are not plain identifiers are cleaned (fileformat.CleanNames) and the
// renames returned.
//
//	res, err := filetable.Upload(ctx, store, "events", "/data/events.csv", filetable.UploadOptions{})
//	for _, r := range res.Renamed { fmt.Println(r.From, "->", r.To) }
//
// An upload is atomic for readers of this package: parts are written under
// the hidden prefix _sluice_upload/NAME/ and only then published. When
// publishing takes more than one step (several objects, or a table of
// another shape to replace) a marker object NAME/_sluice_incomplete is
// written first and removed last; while it exists, Table fails with
// ErrIncomplete instead of showing a half-replaced table. An interrupted
// upload leaves that marker, or hidden leftovers only; running the upload
// again (or Remove) cleans up and completes. A read that overlaps a publish
// fails (ErrIncomplete, or ErrChanged for a file that is no longer the one
// listed: Rows compares each file's size and ETag or modification time
// with the listing's when it opens it) rather than mixing two versions. Two uploads of the same table
// at the same time are not supported: the last to publish wins, and one of
// them may fail.
package filetable

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filestore"
)

// Column is a column with its sluice type.
type Column = fileformat.Column

// ErrNotFound is returned (wrapped) for a table that is not in the store.
var ErrNotFound = errors.New("no such table")

// ErrChanged is returned (wrapped) when a file of a table changed between
// the listing (Root.Table) and its reading: list the table again.
var ErrChanged = errors.New("table changed while being read")

// ErrIncomplete is returned (wrapped) for a table that an upload or removal
// is changing, or left half changed when it was interrupted.
var ErrIncomplete = errors.New("table is being changed, or a change was interrupted")

const (
	// markerName is the object inside a table's folder that says the table
	// is being replaced or removed.
	markerName = "_sluice_incomplete"
	// stagingDir holds uploads before they are published; hidden from
	// listings by its leading _.
	stagingDir = "_sluice_upload"
)

// Root is the set of tables at a store root.
type Root struct {
	st    filestore.Store
	owned bool
}

// Open opens the store at root (see filestore.Open) for its tables. Close
// closes the store.
func Open(ctx context.Context, root string, opts filestore.Options) (*Root, error) {
	st, err := filestore.Open(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	return &Root{st: st, owned: true}, nil
}

// New reads the tables of a store that the caller opened and closes.
func New(st filestore.Store) *Root { return &Root{st: st} }

// Store returns the store the tables are in.
func (r *Root) Store() filestore.Store { return r.st }

// Close closes the store if Open opened it.
func (r *Root) Close() error {
	if r.owned {
		return r.st.Close()
	}
	return nil
}

// Listing is what List finds at a root.
type Listing struct {
	// Tables are sorted by name.
	Tables []Summary
	// Unknown counts the files ignored because sluice does not read their
	// extension (hidden files, starting with . or _, are not counted).
	Unknown int
	// UnknownSample holds the first few of them, for showing.
	UnknownSample []string
}

// Summary describes a table from its file names alone, without reading any.
type Summary struct {
	Name string
	// Folder is true for a table made of a folder's files.
	Folder bool
	// Format is empty when Problem is set.
	Format fileformat.Format
	Files  int
	Bytes  int64
	// Modified is the latest modification time of its files.
	Modified time.Time
	// PartitionKeys are the Hive partition keys of a folder table.
	PartitionKeys []string
	// Problem, when set, is the error Table returns for this name: two
	// files or a file and a folder of that name, mixed formats, partition
	// folders that disagree, or an unfinished upload (ErrIncomplete).
	Problem error
}

// unknownSample is how many ignored file names a Listing keeps.
const unknownSample = 5

// List lists the tables at the root. It reads the names of every object
// under the root (a listing, no file content); memory is one entry per
// table.
func (r *Root) List(ctx context.Context) (Listing, error) {
	var l Listing
	tables := map[string]*builder{}
	for o, err := range r.st.List(ctx, "") {
		if err != nil {
			return Listing{}, err
		}
		e := classify(o.Key)
		switch e.kind {
		case entryHidden:
			continue
		case entryUnknown:
			l.Unknown++
			if len(l.UnknownSample) < unknownSample {
				l.UnknownSample = append(l.UnknownSample, o.Key)
			}
			continue
		}
		b := tables[e.table]
		if b == nil {
			b = &builder{name: e.table}
			tables[e.table] = b
		}
		b.add(o, e, false)
	}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		l.Tables = append(l.Tables, tables[n].summary(r.st))
	}
	return l, nil
}

// Names returns the table names at the root, sorted, including those whose
// Summary has a Problem.
func (r *Root) Names(ctx context.Context) ([]string, error) {
	l, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(l.Tables))
	for i, t := range l.Tables {
		names[i] = t.Name
	}
	return names, nil
}

// Exists tells whether the root has a table of that name (one that Table
// may still refuse, see Summary.Problem). It lists only the keys that start
// with the name.
func (r *Root) Exists(ctx context.Context, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, nil
	}
	b, err := r.collect(ctx, name, false)
	if err != nil {
		return false, err
	}
	return b.exists(), nil
}

// Table returns a table: its files and partition keys. Reading them
// (Columns, Count, Head, Rows) opens files. A missing table is an error
// wrapping ErrNotFound that names the closest existing names.
func (r *Root) Table(ctx context.Context, name string) (*Table, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("table %q at %s: %w", name, r.st, err)
	}
	b, err := r.collect(ctx, name, true)
	if err != nil {
		return nil, err
	}
	if !b.exists() {
		return nil, r.notFound(ctx, name, b.unknown)
	}
	s := b.summary(r.st)
	if s.Problem != nil {
		return nil, s.Problem
	}
	t := &Table{
		Name:    name,
		Format:  s.Format,
		Folder:  s.Folder,
		Files:   b.files,
		Unknown: b.unknown,
		root:    r,
	}
	if err := t.typePartitions(b.partRaw); err != nil {
		return nil, err
	}
	return t, nil
}

// collect gathers what the keys starting with name say about table name.
func (r *Root) collect(ctx context.Context, name string, keepFiles bool) (*builder, error) {
	b := &builder{name: name}
	for o, err := range r.st.List(ctx, name) {
		if err != nil {
			return nil, err
		}
		e := classify(o.Key)
		if e.table != name {
			continue
		}
		switch e.kind {
		case entryHidden:
			continue
		case entryUnknown:
			b.unknown++
			continue
		}
		b.add(o, e, keepFiles)
	}
	return b, nil
}

// notFound is the error for a missing table, with the closest names.
func (r *Root) notFound(ctx context.Context, name string, unknown int) error {
	msg := fmt.Sprintf("table %q not found at %s", name, r.st)
	if unknown > 0 {
		msg += fmt.Sprintf(" (the folder %s/ holds %s, none with an extension sluice reads: %s)", name, plural(unknown, "file"), fileformat.KnownExtensions)
	}
	names, err := r.Names(ctx)
	switch {
	case err != nil:
		msg += fmt.Sprintf("; listing the other tables failed too: %v", err)
	case len(names) == 0:
		msg += "; the store holds no tables"
	default:
		if c := closest(name, names, 3); len(c) > 0 {
			msg += "; closest: " + strings.Join(c, ", ")
		} else {
			msg += fmt.Sprintf("; no table has a similar name (%s there)", plural(len(names), "table"))
		}
	}
	return fmt.Errorf("%s: %w", msg, ErrNotFound)
}

type entryKind uint8

const (
	entryHidden     entryKind = iota
	entryUnknown              // a file sluice does not read
	entryFileTable            // a file directly under the root
	entryFolderFile           // a data file in a table folder
	entryMarker               // NAME/_sluice_incomplete
)

type entry struct {
	kind   entryKind
	table  string
	format fileformat.Format
}

// classify tells what a key is to the tables at the root.
func classify(key string) entry {
	parts := strings.Split(key, "/")
	if hiddenName(parts[0]) {
		return entry{kind: entryHidden}
	}
	if len(parts) == 1 {
		f, _, ok := fileformat.FormatOf(key)
		if !ok {
			return entry{kind: entryUnknown}
		}
		name := tableNameOf(key)
		if name == "" || hiddenName(name) {
			return entry{kind: entryHidden}
		}
		return entry{kind: entryFileTable, table: name, format: f}
	}
	if len(parts) == 2 && parts[1] == markerName {
		return entry{kind: entryMarker, table: parts[0]}
	}
	for _, p := range parts[1:] {
		if hiddenName(p) || p == "" {
			return entry{kind: entryHidden}
		}
	}
	f, _, ok := fileformat.FormatOf(parts[len(parts)-1])
	if !ok {
		return entry{kind: entryUnknown, table: parts[0]}
	}
	return entry{kind: entryFolderFile, table: parts[0], format: f}
}

func hiddenName(s string) bool {
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "_")
}

// formatExts are the extensions a file table's name drops, longest first
// within a format so that .csv.gz goes whole.
var formatExts = []string{".csv", ".tsv", ".parquet", ".jsonl", ".ndjson"}

// tableNameOf is a root file's table name: its name without the format's
// extension and .gz.
func tableNameOf(file string) string {
	lower := strings.ToLower(file)
	n := len(file)
	if strings.HasSuffix(lower, ".gz") {
		n -= 3
	}
	for _, e := range formatExts {
		if strings.HasSuffix(lower[:n], e) {
			return file[:n-len(e)]
		}
	}
	// An extension fileformat reads that this list does not know yet.
	if i := strings.LastIndexByte(file[:n], '.'); i > 0 {
		return file[:i]
	}
	return file[:n]
}

// builder gathers one table's objects, in key order.
type builder struct {
	name     string
	fileKeys []string // root files that name this table
	folder   int      // data files in the folder
	firstOf  map[fileformat.Format]string
	formats  []fileformat.Format
	marker   bool
	markerAt time.Time
	unknown  int
	count    int
	bytes    int64
	modified time.Time
	partKeys []string
	partFrom string
	partErr  error
	partRaw  [][]*string // per file, the raw partition values (nil: NULL)
	files    []File
}

func (b *builder) exists() bool { return b.count > 0 || b.marker }

func (b *builder) add(o filestore.Object, e entry, keep bool) {
	if e.kind == entryMarker {
		b.marker, b.markerAt = true, o.ModTime
		return
	}
	b.count++
	b.bytes += o.Size
	if o.ModTime.After(b.modified) {
		b.modified = o.ModTime
	}
	if b.firstOf == nil {
		b.firstOf = map[fileformat.Format]string{}
	}
	if _, ok := b.firstOf[e.format]; !ok {
		b.firstOf[e.format] = o.Key
		b.formats = append(b.formats, e.format)
	}
	var raw []*string
	if e.kind == entryFileTable {
		b.fileKeys = append(b.fileKeys, o.Key)
	} else {
		b.folder++
		keys, vals := hivePath(strings.Split(o.Key, "/"))
		switch {
		case b.folder == 1:
			b.partKeys, b.partFrom = keys, o.Key
		case b.partErr == nil && !slices.Equal(keys, b.partKeys):
			b.partErr = fmt.Errorf("table %q: its files sit in partition folders that disagree: %s has partition keys [%s] but %s has [%s]; every file of a table needs the same KEY=VALUE folders in the same order",
				b.name, b.partFrom, strings.Join(b.partKeys, ", "), o.Key, strings.Join(keys, ", "))
		}
		raw = vals
	}
	if keep {
		b.files = append(b.files, File{Object: o})
		b.partRaw = append(b.partRaw, raw)
	}
}

func (b *builder) summary(st filestore.Store) Summary {
	s := Summary{
		Name:     b.name,
		Folder:   b.folder > 0 || (b.marker && len(b.fileKeys) == 0),
		Files:    b.count,
		Bytes:    b.bytes,
		Modified: b.modified,
	}
	if b.folder > 0 {
		s.PartitionKeys = b.partKeys
	}
	switch {
	case b.marker:
		s.Problem = fmt.Errorf("table %q at %s: an upload or removal is in progress, or was interrupted (%s/%s exists since %s): re-run the upload (sluice files upload) or remove the table (sluice files rm): %w",
			b.name, st, b.name, markerName, b.markerAt.UTC().Format(time.RFC3339), ErrIncomplete)
	case len(b.fileKeys) > 0 && b.folder > 0:
		s.Problem = fmt.Errorf("table %q at %s is both the file %s and the folder %s/: rename or remove one of them", b.name, st, b.fileKeys[0], b.name)
	case len(b.fileKeys) > 1:
		s.Problem = fmt.Errorf("table %q at %s is given by %d files (%s): keep one, or rename the others", b.name, st, len(b.fileKeys), strings.Join(b.fileKeys, ", "))
	case len(b.formats) > 1:
		f0, f1 := b.formats[0], b.formats[1]
		s.Problem = fmt.Errorf("table %q at %s mixes formats: %s is %s but %s is %s; a table folder holds files of one format", b.name, st, b.firstOf[f0], f0, b.firstOf[f1], f1)
	case b.partErr != nil:
		s.Problem = fmt.Errorf("%w (at %s)", b.partErr, st)
	}
	if s.Problem == nil && len(b.formats) == 1 {
		s.Format = b.formats[0]
	}
	return s
}

// checkName refuses a table name that no key could give.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("the table name is empty")
	case strings.ContainsAny(name, `/\`):
		return errors.New("a table name holds no / or \\ (a table is a file or a folder directly under the root)")
	case hiddenName(name):
		return errors.New("a table name cannot start with . or _ (such files and folders are hidden)")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("a table name holds no control characters")
	}
	return nil
}

// hivePath returns the KEY=VALUE folders of a key inside a table folder:
// parts[0] is the table, the last part the file.
func hivePath(parts []string) (keys []string, vals []*string) {
	for _, p := range parts[1 : len(parts)-1] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			continue
		}
		keys = append(keys, k)
		if v == "" || v == hiveNull {
			vals = append(vals, nil)
			continue
		}
		// Hive escapes characters such as / and = in values.
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		vals = append(vals, &v)
	}
	return keys, vals
}

// keyJoin is path.Join for keys, which never start with /.
func keyJoin(elem ...string) string { return strings.TrimPrefix(path.Join(elem...), "/") }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
