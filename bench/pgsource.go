package bench

// The PostgreSQL source benchmark (issue 5): a table of generated rows in
// PostgreSQL synced into DuckDB through the postgres connector and the
// engine, against the raw path on the same rows in the same run: the rows
// read with COPY ... TO STDOUT (FORMAT binary), the fastest way out of
// PostgreSQL, decoded by hand and appended with DuckDB's appender into the
// table sluice creates. The report is TestPGSourceReport in
// pgsource_test.go.

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	duckdbgo "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/sluicedata/sluice/connectors/postgres"
	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// PGSourceTable is the PostgreSQL table the benchmark reads, in a schema of its
// own.
const PGSourceTable = "items"

// PGSourceDest is the warehouse table the connector syncs schema.items into.
func PGSourceDest(pgSchema string) string { return pgSchema + "_" + PGSourceTable }

// PGSourceGenerate fills pgSchema.items with rows [0, rows) of Gen's data (the
// same 8 columns, the same values), unless it already holds exactly that
// many rows. It returns whether it generated them.
func PGSourceGenerate(ctx context.Context, url, pgSchema string, rows int64) (bool, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	q := pgx.Identifier{pgSchema, PGSourceTable}.Sanitize()
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+q).Scan(&n); err == nil && n == rows {
		return false, nil
	}
	cs := make([]string, len(countries))
	for i, c := range countries {
		cs[i] = "'" + c + "'"
	}
	for _, stmt := range []string{
		"DROP SCHEMA IF EXISTS " + pgx.Identifier{pgSchema}.Sanitize() + " CASCADE",
		"CREATE SCHEMA " + pgx.Identifier{pgSchema}.Sanitize(),
		// Unlogged: generating the rows is not what is measured, and
		// logging them would only fill the WAL.
		"CREATE UNLOGGED TABLE " + q + ` (id bigint PRIMARY KEY, name text, email text, country text,
			amount double precision, quantity bigint, active boolean, created_at timestamptz)`,
		"INSERT INTO " + q + ` SELECT i, 'customer ' || i, 'user' || i || '@example.com',
			(ARRAY[` + strings.Join(cs, ",") + `])[i % 16 + 1], ((i * 7919) % 1000000) / 100.0, i % 1000, i % 3 <> 0,
			'2024-01-01 00:00:00+00'::timestamptz + i * interval '1 second'
			FROM generate_series(0::bigint, ` + fmt.Sprint(rows-1) + `) i`,
		"VACUUM ANALYZE " + q,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("%s: %w", strings.SplitN(stmt, "(", 2)[0], err)
		}
	}
	return true, nil
}

// PGSourceDrop drops the benchmark's schema.
func PGSourceDrop(ctx context.Context, url, pgSchema string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{pgSchema}.Sanitize()+" CASCADE")
	return err
}

// PGSourceRaw is the physical limit: COPY binary out of PostgreSQL, straight into
// DuckDB's appender on the table sluice creates (bench.items), timed from
// opening the file to closing it. ordered adds the ORDER BY id that the
// connector's full refresh reads with (so that a crash resumes after the
// last key).
func PGSourceRaw(ctx context.Context, url, pgSchema, path string, ordered bool, cfg Config) (time.Duration, int64, error) {
	start := time.Now()
	db, err := openFresh(ctx, path, cfg.Settings, Keyed)
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		db.Close()
		return 0, 0, err
	}
	defer conn.Close(ctx)
	var rows int64
	err = withRaw(ctx, db, func(dc driver.Conn) error {
		ap, err := duckdbgo.NewAppender(dc, "", Schema, Table)
		if err != nil {
			return err
		}
		synced := time.Now().UTC()
		args := make([]driver.Value, NCols+2)
		args[NCols], args[NCols+1] = synced, false
		w := &pgsCopyRows{cols: NCols, row: func(vals [][]byte) error {
			if err := pgsDecodeItem(vals, args); err != nil {
				return err
			}
			rows++
			return ap.AppendRow(args...)
		}}
		q := "SELECT id, name, email, country, amount, quantity, active, created_at FROM " + pgx.Identifier{pgSchema, PGSourceTable}.Sanitize()
		if ordered {
			q += " ORDER BY id"
		}
		if _, err := conn.PgConn().CopyTo(ctx, w, "COPY ("+q+") TO STDOUT (FORMAT binary)"); err != nil {
			ap.Close()
			return err
		}
		if w.err != nil {
			ap.Close()
			return w.err
		}
		return ap.CloseWithCancel(ctx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), rows, err
}

var pgsEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// pgsDecodeItem decodes one row of the 8 benchmark columns from binary COPY.
func pgsDecodeItem(v [][]byte, out []driver.Value) error {
	for i, b := range v {
		if b == nil {
			out[i] = nil
			continue
		}
		switch i {
		case 0, 5: // bigint
			out[i] = int64(binary.BigEndian.Uint64(b))
		case 1, 2, 3: // text
			out[i] = string(b)
		case 4: // double precision
			out[i] = math.Float64frombits(binary.BigEndian.Uint64(b))
		case 6: // boolean
			out[i] = b[0] != 0
		case 7: // timestamptz
			out[i] = time.UnixMicro(int64(binary.BigEndian.Uint64(b)) + pgsEpochMicros).UTC()
		}
	}
	return nil
}

// pgsCopyRows parses COPY's binary format as pgconn hands it over, calling row
// for each row; a row may span writes.
type pgsCopyRows struct {
	cols   int
	row    func([][]byte) error
	buf    []byte
	header bool
	vals   [][]byte
	err    error
}

func (c *pgsCopyRows) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	data := c.buf
	off := 0
	if !c.header {
		if len(data) < 19 {
			return len(p), nil
		}
		off = 19 + int(binary.BigEndian.Uint32(data[15:]))
		c.header = true
	}
	for len(data)-off >= 2 {
		n := int(int16(binary.BigEndian.Uint16(data[off:])))
		if n == -1 {
			off = len(data)
			break
		}
		if n != c.cols {
			c.err = fmt.Errorf("COPY row of %d columns, want %d", n, c.cols)
			return 0, c.err
		}
		pos, complete := off+2, true
		c.vals = c.vals[:0]
		for k := 0; k < n && complete; k++ {
			if len(data)-pos < 4 {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(data[pos:])))
			pos += 4
			if l < 0 {
				c.vals = append(c.vals, nil)
				continue
			}
			if len(data)-pos < l {
				complete = false
				break
			}
			c.vals = append(c.vals, data[pos:pos+l])
			pos += l
		}
		if !complete {
			break
		}
		if err := c.row(c.vals); err != nil {
			c.err = err
			return 0, err
		}
		off = pos
	}
	c.buf = append(c.buf[:0], data[off:]...)
	return len(p), nil
}

// PGSourceConfig is the connector configuration the benchmark syncs with.
func PGSourceConfig(url, pgSchema string, checkpointRows int64) contract.Config {
	c := contract.Config{"url": url, "schemas": pgSchema, "tables": PGSourceTable}
	if checkpointRows > 0 {
		c["checkpoint_rows"] = fmt.Sprint(checkpointRows)
	}
	return c
}

// PGSourceSluice syncs the table through the postgres connector and the engine
// into a fresh DuckDB file opened with the sync's defaults, as `sluice
// debug` would: Schema, then Update, then Finish. Timed from the catalog
// read to closing the file.
func PGSourceSluice(ctx context.Context, url, pgSchema, path string, read postgres.ReadMethod, checkpointRows int64, cfg Config) (time.Duration, error) {
	start := time.Now()
	conn := postgres.ConnectorWith(postgres.Options{Read: read})
	pcfg := PGSourceConfig(url, pgSchema, checkpointRows)
	tables, err := conn.Schema(ctx, pcfg)
	if err != nil {
		return 0, err
	}
	_, err = syncTimed(ctx, path, cfg, tables, func(eng *engine.Engine) error {
		return conn.Update(ctx, pcfg, contract.State{}, eng)
	})
	return time.Since(start), err
}

// PGSourceSummary is Summarize for any table of the warehouse.
func PGSourceSummary(ctx context.Context, path, table string) (Summary, error) {
	db, err := duckdb.OpenDB(ctx, path, duckdb.Settings{})
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	var s Summary
	var sum *string
	err = db.QueryRowContext(ctx, `SELECT count(*), sum(hash(id, name, email, country, amount, quantity, active, created_at))::VARCHAR FROM `+
		quote(Schema)+"."+quote(table)+` WHERE NOT `+quote(destination.ColumnDeleted)).Scan(&s.Rows, &sum)
	if sum != nil {
		s.Checksum = *sum
	}
	if err == nil && s.Rows == 0 {
		err = errors.New("the table is empty")
	}
	return s, err
}
