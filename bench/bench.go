// Package bench measures the SDK path, from ops.Upsert to a committed DuckDB
// table, against DuckDB's own fastest ways to load the same rows: the Go
// appender straight into the target table for an initial load, and an
// appender into a staging table followed by one MERGE INTO for upserts into
// a populated table.
//
// Every scenario writes the same generated rows (8 data columns) into a table
// with the DDL sluice itself creates, in a fresh DuckDB file opened with the
// destination's own settings (duckdb.OpenDB), and is timed from opening the
// file to closing it. The benchmarks and the report are in bench_test.go; the
// memory measurement is cmd/loadrss.
package bench

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	duckdbgo "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/internal/contract"
)

// Schema and Table name the benchmark table.
const (
	Schema = "bench"
	Table  = "items"
)

// Mode says how the target table is keyed.
type Mode int

const (
	Keyed     Mode = iota // key (id)
	HashKeyed             // no declared key: keyed by _sluice_id, a hash of the row
)

func (m Mode) String() string {
	if m == HashKeyed {
		return "hash-keyed"
	}
	return "keyed"
}

// Columns are the 8 data columns of every generated row, as a connector
// would declare them.
var Columns = []contract.Column{
	{Name: "id", Type: contract.Long},
	{Name: "name", Type: contract.String},
	{Name: "email", Type: contract.String},
	{Name: "country", Type: contract.String},
	{Name: "amount", Type: contract.Double},
	{Name: "quantity", Type: contract.Long},
	{Name: "active", Type: contract.Boolean},
	{Name: "created_at", Type: contract.UTCDateTime},
}

// NCols is the number of data columns.
const NCols = 8

var countries = [...]string{"DE", "FR", "US", "GB", "NL", "ES", "IT", "SE", "PL", "BR", "JP", "IN", "CA", "AU", "MX", "ZA"}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Gen fills vals[:NCols] with row i. version 1 changes every non-key column,
// so an upsert of an existing id really updates it.
func Gen(i int64, version int, vals []any) {
	n := strconv.FormatInt(i, 10)
	if version == 0 {
		vals[1] = "customer " + n
	} else {
		vals[1] = "customer " + n + " v" + strconv.Itoa(version)
	}
	vals[0] = i
	vals[2] = "user" + n + "@example.com"
	vals[3] = countries[(i+int64(version))%int64(len(countries))]
	vals[4] = float64((i*7919+int64(version))%1_000_000) / 100
	vals[5] = (i + int64(version)) % 1000
	vals[6] = (i+int64(version))%3 != 0
	vals[7] = epoch.Add(time.Duration(i+int64(version)*3600) * time.Second)
}

// RowMap is the row as a connector hands it to ops.Upsert.
func RowMap(vals []any) map[string]any {
	return map[string]any{
		"id":         vals[0],
		"name":       vals[1],
		"email":      vals[2],
		"country":    vals[3],
		"amount":     vals[4],
		"quantity":   vals[5],
		"active":     vals[6],
		"created_at": vals[7],
	}
}

// Declared is the schema a connector declares for the table.
func Declared(m Mode) []contract.Table {
	t := contract.Table{Name: Table, Columns: Columns}
	if m == Keyed {
		t.PrimaryKey = []string{"id"}
	}
	return []contract.Table{t}
}

// Config tunes a run.
type Config struct {
	Settings  duckdb.Settings // DuckDB memory_limit and threads, for every scenario
	BatchRows int             // engine.Options.BatchRows; 0 is the engine's default
	// CheckpointEvery makes the sluice scenarios call ops.Checkpoint every
	// so many rows; 0 commits once, at Finish.
	CheckpointEvery int64
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

var qualified = quote(Schema) + "." + quote(Table)

func sqlType(t contract.Type) string {
	return duckdb.SQLType(destination.Column{Type: t})
}

// CreateTableSQL is the DDL sluice's DuckDB destination issues for the table.
func CreateTableSQL(m Mode) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + qualified + " (")
	if m == HashKeyed {
		b.WriteString(quote(destination.ColumnID) + " VARCHAR, ")
	}
	for _, c := range Columns {
		b.WriteString(quote(c.Name) + " " + sqlType(c.Type) + ", ")
	}
	// sluice declares no PRIMARY KEY constraint: it keeps the key itself.
	b.WriteString(quote(destination.ColumnSynced) + " TIMESTAMPTZ NOT NULL, " + quote(destination.ColumnDeleted) + " BOOLEAN NOT NULL DEFAULT false)")
	return b.String()
}

// cheapID is a 32-hex-digit key as wide as sluice's _sluice_id, made without
// hashing the row: the raw baseline pays for a string key, not for SHA-256.
func cheapID(i int64, buf []byte) string {
	var raw [16]byte
	a, b := splitmix(uint64(i)), splitmix(uint64(i)^0x9e3779b97f4a7c15)
	for k := 0; k < 8; k++ {
		raw[k] = byte(a >> (8 * k))
		raw[8+k] = byte(b >> (8 * k))
	}
	hex.Encode(buf, raw[:])
	return string(buf)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// withRaw runs fn on the driver connection of one pooled connection. fn must
// not use conn's database/sql methods: Raw holds its lock.
func withRaw(ctx context.Context, db *sql.DB, fn func(driver.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return fn(dc.(driver.Conn)) })
}

func openFresh(ctx context.Context, path string, s duckdb.Settings, m Mode) (*sql.DB, error) {
	db, err := duckdb.OpenDB(ctx, path, s)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{"CREATE SCHEMA IF NOT EXISTS " + quote(Schema), CreateTableSQL(m)} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// appendRows appends rows [from, from+n) of version into a table through
// DuckDB's appender. full adds the _sluice_synced and _sluice_deleted values
// (for the target table); hash prepends a cheap _sluice_id.
func appendRows(ctx context.Context, dc driver.Conn, catalog, schema, table string, from, n int64, version int, full, hash bool) error {
	ap, err := duckdbgo.NewAppender(dc, catalog, schema, table)
	if err != nil {
		return err
	}
	synced := time.Now().UTC()
	vals := make([]any, NCols)
	width := NCols
	off := 0
	if hash {
		width++
		off = 1
	}
	if full {
		width += 2
	}
	args := make([]driver.Value, width)
	idBuf := make([]byte, 32)
	for i := from; i < from+n; i++ {
		Gen(i, version, vals)
		if hash {
			args[0] = cheapID(i, idBuf)
		}
		for c, v := range vals {
			args[off+c] = v
		}
		if full {
			args[off+NCols] = synced
			args[off+NCols+1] = false
		}
		if err := ap.AppendRow(args...); err != nil {
			ap.Close()
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return ap.CloseWithCancel(ctx)
}

// oneThread keeps the calling goroutine on its OS thread until the
// returned func runs. The raw baselines call DuckDB from one thread, as the
// engine's writer does (engine/writer.go): DuckDB's allocator keeps memory
// per thread, and a baseline whose calls moved between threads would be
// slower and larger than DuckDB can be.
func oneThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// RawLoad is the physical limit of an initial load: DuckDB's appender
// straight into the empty keyed target table.
func RawLoad(ctx context.Context, path string, rows int64, m Mode, cfg Config) (time.Duration, error) {
	defer oneThread()()
	start := time.Now()
	db, err := openFresh(ctx, path, cfg.Settings, m)
	if err != nil {
		return 0, err
	}
	err = withRaw(ctx, db, func(dc driver.Conn) error {
		return appendRows(ctx, dc, "", Schema, Table, 0, rows, 0, true, m == HashKeyed)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// Raw4 is the reference measurement: the appender loading a 4-column
// row (BIGINT, VARCHAR, DOUBLE, BIGINT) into a table without constraints,
// as sluice's tables are.
func Raw4(ctx context.Context, path string, rows int64, cfg Config) (time.Duration, error) {
	defer oneThread()()
	start := time.Now()
	db, err := duckdb.OpenDB(ctx, path, cfg.Settings)
	if err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t4 (id BIGINT, name VARCHAR, amount DOUBLE, quantity BIGINT)`); err != nil {
		db.Close()
		return 0, err
	}
	err = withRaw(ctx, db, func(dc driver.Conn) error {
		ap, err := duckdbgo.NewAppender(dc, "", "main", "t4")
		if err != nil {
			return err
		}
		vals := make([]any, NCols)
		for i := int64(0); i < rows; i++ {
			Gen(i, 0, vals)
			if err := ap.AppendRow(vals[0], vals[1], vals[4], vals[5]); err != nil {
				ap.Close()
				return err
			}
		}
		return ap.CloseWithCancel(ctx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// SluiceLoad is the SDK path: engine over the DuckDB destination, a declared
// table, one ops.Upsert per row as a map, Finish.
func SluiceLoad(ctx context.Context, path string, rows int64, m Mode, cfg Config) (time.Duration, error) {
	return sluiceRun(ctx, path, 0, rows, m, 0, cfg)
}

// sluiceRun upserts rows [from, from+n) of version through the engine.
func sluiceRun(ctx context.Context, path string, from, n int64, m Mode, version int, cfg Config) (time.Duration, error) {
	return syncTimed(ctx, path, cfg, Declared(m), func(eng *engine.Engine) error {
		vals := make([]any, NCols)
		for i := from; i < from+n; i++ {
			Gen(i, version, vals)
			if err := eng.Upsert(Table, RowMap(vals)); err != nil {
				return fmt.Errorf("after %d rows: %w", i-from, err)
			}
			if cfg.CheckpointEvery > 0 && (i-from+1)%cfg.CheckpointEvery == 0 {
				if err := eng.Checkpoint(map[string]any{"cursor": i}); err != nil {
					return fmt.Errorf("after %d rows: %w", i-from+1, err)
				}
			}
		}
		return nil
	})
}

// syncTimed runs one sync as the runner does: the destination opened with
// the sync's settings, the engine started with the declared tables, emit
// as the connector, then Finish, or Abort if anything failed. It is timed
// from opening the file to closing it.
func syncTimed(ctx context.Context, path string, cfg Config, declared []contract.Table, emit func(*engine.Engine) error) (time.Duration, error) {
	start := time.Now()
	dest, err := duckdb.Open(ctx, path, Schema, cfg.Settings)
	if err != nil {
		return 0, err
	}
	eng := engine.New(dest, engine.Options{BatchRows: cfg.BatchRows})
	err = eng.Start(ctx, declared, nil)
	if err == nil {
		if err = emit(eng); err == nil {
			err = eng.Finish(ctx)
		}
		if err != nil {
			eng.Abort(ctx)
		}
	}
	if cerr := dest.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// Populate writes the keyed table with rows [0, rows) of version 0, as an
// earlier sync would have left it (sluice's DDL and state tables included),
// so that the upsert scenarios start from a populated table.
func Populate(ctx context.Context, path string, rows int64, cfg Config) error {
	dest, err := duckdb.Open(ctx, path, Schema, cfg.Settings) // creates sluice's state and log tables
	if err != nil {
		return err
	}
	if err := dest.Close(); err != nil {
		return err
	}
	db, err := openFresh(ctx, path, cfg.Settings, Keyed)
	if err != nil {
		return err
	}
	// The key, where the destination keeps it (see destination/duckdb).
	if _, err := db.ExecContext(ctx, `INSERT INTO `+quote(Schema)+`."_sluice_tables" VALUES (?, 'id')`, Table); err != nil {
		db.Close()
		return err
	}
	err = withRaw(ctx, db, func(dc driver.Conn) error {
		return appendRows(ctx, dc, "", Schema, Table, 0, rows, 0, true, false)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// UpsertRange is the rows an upsert scenario writes into a table populated
// with [0, rows): [rows/2, rows/2+rows), half updates and half new keys.
func UpsertRange(rows int64) (from, n int64) { return rows / 2, rows }

// RawMerge is the physical limit of an upsert: the appender into one
// temporary staging table, then one MERGE INTO the populated target in a
// transaction.
func RawMerge(ctx context.Context, path string, rows int64, cfg Config) (time.Duration, error) {
	defer oneThread()()
	from, n := UpsertRange(rows)
	start := time.Now()
	db, err := duckdb.OpenDB(ctx, path, cfg.Settings)
	if err != nil {
		return 0, err
	}
	err = func() error {
		// Temporary tables belong to one connection: hold one throughout.
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		var ddl strings.Builder
		ddl.WriteString("CREATE TEMP TABLE stage (")
		for i, c := range Columns {
			if i > 0 {
				ddl.WriteString(", ")
			}
			ddl.WriteString(quote(c.Name) + " " + sqlType(c.Type))
		}
		ddl.WriteString(")")
		if _, err := conn.ExecContext(ctx, ddl.String()); err != nil {
			return err
		}
		err = conn.Raw(func(dc any) error {
			return appendRows(ctx, dc.(driver.Conn), "temp", "main", "stage", from, n, 1, false, false)
		})
		if err != nil {
			return err
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		names := make([]string, len(Columns))
		for i, c := range Columns {
			names[i] = quote(c.Name)
		}
		all := strings.Join(names, ", ") + ", " + quote(destination.ColumnSynced) + ", " + quote(destination.ColumnDeleted)
		var set, ins []string
		for _, n := range names[1:] {
			set = append(set, n+" = s."+n)
		}
		for _, n := range names {
			ins = append(ins, "s."+n)
		}
		q := `MERGE INTO ` + qualified + ` AS t USING stage AS s ON t."id" = s."id" ` +
			`WHEN MATCHED THEN UPDATE SET ` + strings.Join(set, ", ") + `, ` + quote(destination.ColumnSynced) + ` = $1::TIMESTAMPTZ, ` + quote(destination.ColumnDeleted) + ` = false ` +
			`WHEN NOT MATCHED THEN INSERT (` + all + `) VALUES (` + strings.Join(ins, ", ") + `, $1::TIMESTAMPTZ, false)`
		if _, err := tx.ExecContext(ctx, q, time.Now().UTC()); err != nil {
			tx.Rollback()
			return fmt.Errorf("merge: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, "DROP TABLE stage")
		return err
	}()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}

// SluiceUpsert is the SDK path for the same upserts as RawMerge.
func SluiceUpsert(ctx context.Context, path string, rows int64, cfg Config) (time.Duration, error) {
	from, n := UpsertRange(rows)
	return sluiceRun(ctx, path, from, n, Keyed, 1, cfg)
}

// CopyFile copies a DuckDB file (closed, so checkpointed: no WAL beside it).
func CopyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Summary describes a loaded table, to check that scenarios wrote the same
// data: its row count, the rows at version 1, and an order-independent
// checksum over the data columns.
type Summary struct {
	Rows, Version1 int64
	Checksum       string
}

// Summarize reads the Summary of the benchmark table.
func Summarize(ctx context.Context, path string) (Summary, error) {
	db, err := duckdb.OpenDB(ctx, path, duckdb.Settings{})
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	var s Summary
	var sum sql.NullString
	err = db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE name LIKE '% v1'),
		sum(hash(id, name, email, country, amount, quantity, active, created_at))::VARCHAR FROM `+qualified+` WHERE NOT `+quote(destination.ColumnDeleted)).
		Scan(&s.Rows, &s.Version1, &sum)
	s.Checksum = sum.String
	return s, err
}

// DatasetParts is how many partitions the generated dataset has.
const DatasetParts = 16

// genDataset serves the generated rows as a dataset partitioned by a
// discrete dimension "part" (p00, p01, ...), with the rows' declared schema.
type genDataset struct{ rows int64 }

func (g genDataset) Info() contract.DatasetInfo {
	return contract.DatasetInfo{Name: Table, Partitioning: contract.Partitioning{{Name: "part"}}}
}

func (g genDataset) ReadSchema(context.Context, contract.Config) ([]contract.Column, error) {
	return Columns, nil
}

func (g genDataset) ListPartitions(context.Context, contract.Config) ([]string, error) {
	ids := make([]string, DatasetParts)
	for k := range ids {
		ids[k] = fmt.Sprintf("p%02d", k)
	}
	return ids, nil
}

func (g genDataset) ReadRows(ctx context.Context, req contract.ReadRequest, emit func(contract.Row) error) error {
	k, err := strconv.Atoi(strings.TrimPrefix(req.Partition.Value("part"), "p"))
	if err != nil {
		return err
	}
	vals := make([]any, NCols)
	for i := int64(k) * g.rows / DatasetParts; i < int64(k+1)*g.rows/DatasetParts; i++ {
		Gen(i, 0, vals)
		if err := emit(RowMap(vals)); err != nil {
			return err
		}
	}
	return nil
}

// SluiceDataset is a dataset connector's sync: the generated rows read
// partition by partition through the dataset runtime, into the engine, a
// checkpoint after each partition (what `go run . debug` does).
func SluiceDataset(ctx context.Context, path string, rows int64, cfg Config) (time.Duration, error) {
	conn := cli.DatasetConnector(genDataset{rows: rows}, "", false)
	tables, err := conn.Schema(ctx, contract.Config{})
	if err != nil {
		return 0, err
	}
	return syncTimed(ctx, path, cfg, tables, func(eng *engine.Engine) error {
		return conn.Update(ctx, contract.Config{}, contract.State{}, eng)
	})
}

// SluiceUpdate changes one column of rows [0, rows) of a populated table
// with Update operations, in one transaction: the path whose memory DuckDB
// holds until the commit (README, "Memory").
func SluiceUpdate(ctx context.Context, path string, rows int64, cfg Config) (time.Duration, error) {
	return syncTimed(ctx, path, cfg, Declared(Keyed), func(eng *engine.Engine) error {
		for i := int64(0); i < rows; i++ {
			if err := eng.Update(Table, map[string]any{"id": i, "name": "updated"}); err != nil {
				return fmt.Errorf("after %d updates: %w", i, err)
			}
		}
		return nil
	})
}
