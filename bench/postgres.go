package bench

// The PostgreSQL destination's benchmark (issue 5): sluice's path from
// ops.Upsert to a committed PostgreSQL table, against pgx's own fastest ways
// to load the same rows (Gen's 8 columns):
//
//   - initial load: CopyFrom straight into a table without key, against
//     sluice's load of a new keyed table;
//   - upsert into a populated table (rows [0, n) there, then
//     UpsertRange(n): half updates, half new keys): CopyFrom into a
//     temporary table and one INSERT ... ON CONFLICT DO UPDATE into sluice's
//     table, against sluice's sync of the same rows.
//
// Every run has a schema of its own, dropped afterwards, and is timed from
// connecting to the commit.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/postgres"
	"github.com/sluicedata/sluice/engine"
)

// PGSchema returns a new schema name for one run.
func PGSchema() string {
	var b [6]byte
	rand.Read(b[:])
	return "bench_" + hex.EncodeToString(b[:])
}

func pgColumns(withKey bool) string {
	var cols []string
	for _, c := range Columns {
		col := quote(c.Name) + " " + postgres.SQLType(destination.Column{Type: c.Type})
		if withKey && c.Name == "id" {
			col += " NOT NULL"
		}
		cols = append(cols, col)
	}
	if withKey {
		// The key itself is added after the rows (rawCopyLoad).
		cols = append(cols, quote(destination.ColumnSynced)+" timestamptz NOT NULL", quote(destination.ColumnDeleted)+" boolean NOT NULL DEFAULT false")
	}
	return strings.Join(cols, ", ")
}

func columnNames() []string {
	names := make([]string, len(Columns))
	for i, c := range Columns {
		names[i] = c.Name
	}
	return names
}

// genSource feeds CopyFrom rows [from, from+n) of version, with the
// system columns when synced is set.
type genSource struct {
	i, end  int64
	version int
	vals    []any
	synced  *time.Time
}

func newGenSource(from, n int64, version int, synced *time.Time) *genSource {
	size := NCols
	if synced != nil {
		size += 2
	}
	return &genSource{i: from - 1, end: from + n, version: version, vals: make([]any, size), synced: synced}
}

func (g *genSource) Next() bool { g.i++; return g.i < g.end }
func (g *genSource) Err() error { return nil }
func (g *genSource) Values() ([]any, error) {
	Gen(g.i, g.version, g.vals)
	if g.synced != nil {
		g.vals[NCols], g.vals[NCols+1] = *g.synced, false
	}
	return g.vals, nil
}

// DropPGSchema removes a run's schema.
func DropPGSchema(ctx context.Context, url, schema string) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quote(schema)+` CASCADE`)
	return err
}

// PGRawLoad is the physical limit of a load: CopyFrom into a new table
// without key, in one transaction.
func PGRawLoad(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
	return rawCopyLoad(ctx, url, schema, rows, false)
}

// PGRawLoadKeyed is the physical limit of a load into the table sluice
// makes: the same columns, system columns included, and a primary key on
// id, loaded the fastest way we know for such a table: key column NOT
// NULL, rows by pgx's CopyFrom, the key built after the rows, one
// transaction (sluice also freezes the rows, which pgx's CopyFrom cannot).
// The baseline (PGRawLoad) has no key: a keyed table cannot reach
// it, and sluice needs the key for its merges (INSERT … ON CONFLICT).
func PGRawLoadKeyed(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
	return rawCopyLoad(ctx, url, schema, rows, true)
}

// rawCopyLoad creates the schema and table and fills it by one CopyFrom, in
// one transaction; keyed adds sluice's system columns and builds the
// primary key after the rows.
func rawCopyLoad(ctx context.Context, url, schema string, rows int64, keyed bool) (time.Duration, error) {
	start := time.Now()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	qt := quote(schema) + `.` + quote(Table)
	for _, q := range []string{`CREATE SCHEMA ` + quote(schema), `CREATE TABLE ` + qt + ` (` + pgColumns(keyed) + `)`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, err
		}
	}
	names, src := columnNames(), newGenSource(0, rows, 0, nil)
	if keyed {
		synced := time.Now().UTC()
		names, src = append(names, destination.ColumnSynced, destination.ColumnDeleted), newGenSource(0, rows, 0, &synced)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{schema, Table}, names, src); err != nil {
		return 0, err
	}
	if keyed {
		if _, err := tx.Exec(ctx, `ALTER TABLE `+qt+` ADD PRIMARY KEY ("id")`); err != nil {
			return 0, err
		}
	}
	err = tx.Commit(ctx)
	return time.Since(start), err
}

// PGSluiceLoad is the SDK path into PostgreSQL: the engine over the
// destination, a declared keyed table, one ops.Upsert per row, Finish.
func PGSluiceLoad(ctx context.Context, url, schema string, rows int64, batchRows int) (time.Duration, error) {
	return pgSluiceRun(ctx, url, schema, 0, rows, 0, batchRows)
}

func pgSluiceRun(ctx context.Context, url, schema string, from, n int64, version, batchRows int) (time.Duration, error) {
	start := time.Now()
	dest, err := postgres.Open(ctx, url, schema)
	if err != nil {
		return 0, err
	}
	eng := engine.New(dest, engine.Options{BatchRows: batchRows})
	err = eng.Start(ctx, Declared(Keyed), nil)
	if err == nil {
		vals := make([]any, NCols)
		for i := from; i < from+n && err == nil; i++ {
			Gen(i, version, vals)
			if err = eng.Upsert(Table, RowMap(vals)); err != nil {
				err = fmt.Errorf("after %d rows: %w", i-from, err)
			}
		}
		if err == nil {
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

// PGPopulate leaves rows [0, rows) of version 0 in a keyed table as a
// sluice sync would have (sluice's DDL, key record and state), written by
// CopyFrom so that it is quick.
func PGPopulate(ctx context.Context, url, schema string, rows int64) error {
	dest, err := postgres.Open(ctx, url, schema)
	if err != nil {
		return err
	}
	// An empty sync creates the declared table the way sluice does.
	eng := engine.New(dest, engine.Options{})
	if err = eng.Start(ctx, Declared(Keyed), nil); err == nil {
		err = eng.Finish(ctx)
	}
	if cerr := dest.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	synced := epoch
	names := append(columnNames(), destination.ColumnSynced, destination.ColumnDeleted)
	if _, err := c.CopyFrom(ctx, pgx.Identifier{schema, Table}, names, newGenSource(0, rows, 0, &synced)); err != nil {
		return err
	}
	_, err = c.Exec(ctx, `VACUUM ANALYZE `+quote(schema)+`.`+quote(Table))
	return err
}

// PGRawUpsert is the physical limit of an upsert: CopyFrom into a
// temporary table, then one INSERT ... ON CONFLICT DO UPDATE into the
// populated table, in one transaction.
func PGRawUpsert(ctx context.Context, url, schema string, rows int64) (time.Duration, error) {
	from, n := UpsertRange(rows)
	start := time.Now()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE stage (`+pgColumns(false)+`) ON COMMIT DROP`); err != nil {
		return 0, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage"}, columnNames(), newGenSource(from, n, 1, nil)); err != nil {
		return 0, err
	}
	names := columnNames()
	var cols, set []string
	for _, c := range names {
		cols = append(cols, quote(c))
		if c != "id" {
			set = append(set, quote(c)+" = EXCLUDED."+quote(c))
		}
	}
	set = append(set, `"_sluice_synced" = EXCLUDED."_sluice_synced"`, `"_sluice_deleted" = EXCLUDED."_sluice_deleted"`)
	q := `INSERT INTO ` + quote(schema) + `.` + quote(Table) + ` (` + strings.Join(cols, ", ") + `, "_sluice_synced", "_sluice_deleted") SELECT ` +
		strings.Join(cols, ", ") + `, now(), false FROM stage ON CONFLICT ("id") DO UPDATE SET ` + strings.Join(set, ", ")
	if _, err := tx.Exec(ctx, q); err != nil {
		return 0, err
	}
	err = tx.Commit(ctx)
	return time.Since(start), err
}

// PGSluiceUpsert is the SDK path for the same upserts as PGRawUpsert.
func PGSluiceUpsert(ctx context.Context, url, schema string, rows int64, batchRows int) (time.Duration, error) {
	from, n := UpsertRange(rows)
	return pgSluiceRun(ctx, url, schema, from, n, 1, batchRows)
}

// PGSummary counts a run's rows, and those at version 1 (names ending in
// " v1"), to check that raw and sluice left the same data.
func PGSummary(ctx context.Context, url, schema string) (rows, v1 int64, err error) {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close(ctx)
	err = c.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE name LIKE '% v1') FROM `+quote(schema)+`.`+quote(Table)).Scan(&rows, &v1)
	return rows, v1, err
}
