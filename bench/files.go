package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicedata/sluice/connectors/files"
	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// The file-table benchmark (issue 4): the generated rows as one CSV file
// and one Parquet file in a local folder, loaded into a fresh warehouse by
// the files connector through the engine, against DuckDB's own
// CREATE TABLE AS SELECT * FROM read_csv(...) / read_parquet(...) on the
// same file. Both leave the table bench.items with the 8 data columns and
// sluice's two system columns, so that Summarize checks they agree.

// genSelect selects rows [0, rows) as Gen makes them.
func genSelect(rows int64) string {
	c := make([]string, len(countries))
	for i, s := range countries {
		c[i] = "'" + s + "'"
	}
	return fmt.Sprintf(`SELECT i AS id, 'customer ' || i AS name, 'user' || i || '@example.com' AS email,
		([%s])[i %% %d + 1] AS country, ((i * 7919) %% 1000000) / 100 AS amount, i %% 1000 AS quantity,
		i %% 3 <> 0 AS active, TIMESTAMPTZ '%s' + to_seconds(i) AS created_at
		FROM range(%d) t(i)`, strings.Join(c, ", "), len(countries), epoch.Format("2006-01-02 15:04:05+00"), rows)
}

// GenFiles writes rows generated rows as csvRoot/items.csv and
// parquetRoot/items.parquet (DuckDB's COPY, its default row groups), each
// folder a store root holding the one table items. Files already there
// with the right name are kept: generating 10M rows takes a minute.
func GenFiles(ctx context.Context, dir string, rows int64) (csvRoot, parquetRoot string, err error) {
	csvRoot = filepath.Join(dir, fmt.Sprintf("csv-%d", rows))
	parquetRoot = filepath.Join(dir, fmt.Sprintf("parquet-%d", rows))
	db, err := duckdb.OpenDB(ctx, "", duckdb.Settings{})
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return "", "", err
	}
	for _, f := range []struct{ root, name, opts string }{
		{csvRoot, "items.csv", "(HEADER)"},
		{parquetRoot, "items.parquet", "(FORMAT parquet)"},
	} {
		path := filepath.Join(f.root, f.name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := os.MkdirAll(f.root, 0o755); err != nil {
			return "", "", err
		}
		tmp := filepath.Join(f.root, "_"+f.name) // hidden from the store until complete
		if _, err := db.ExecContext(ctx, "COPY ("+genSelect(rows)+") TO '"+tmp+"' "+f.opts); err != nil {
			return "", "", fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", "", err
		}
	}
	return csvRoot, parquetRoot, nil
}

// FilesResult is one files-connector sync.
type FilesResult struct {
	Elapsed time.Duration
	Upserts int64
}

// FilesSync syncs the store at root into a fresh warehouse at path with the
// files connector, as `sluice debug` would: the destination at the sync's
// defaults (duckdb.Open), the connector's Schema and Update over the
// engine, Finish. fastPath false upserts every row instead of loading the
// file with DuckDB's reader.
func FilesSync(ctx context.Context, root, path string, fastPath bool, cfg Config) (FilesResult, error) {
	conn := files.Connector()
	conf := contract.Config{"root": root, "fast_path": fmt.Sprint(fastPath)}
	var res FilesResult
	start := time.Now()
	tables, err := conn.Schema(ctx, conf)
	if err != nil {
		return res, err
	}
	_, err = syncTimed(ctx, path, cfg, tables, func(eng *engine.Engine) error {
		if err := conn.Update(ctx, conf, contract.State{}, eng); err != nil {
			return err
		}
		for _, c := range eng.TableCounts() {
			res.Upserts += c.Upserts
		}
		return nil
	})
	res.Elapsed = time.Since(start)
	return res, err
}

// DuckDBLoad is DuckDB's own load of the same file into a fresh file at
// DuckDB's defaults: CREATE TABLE AS SELECT * FROM read_csv(file) (or
// read_parquet), with its type detection, plus the two system columns.
func DuckDBLoad(ctx context.Context, file, path string, cfg Config) (time.Duration, error) {
	start := time.Now()
	db, err := duckdb.OpenDB(ctx, path, cfg.Settings)
	if err != nil {
		return 0, err
	}
	reader := "read_csv"
	if strings.HasSuffix(file, ".parquet") {
		reader = "read_parquet"
	}
	for _, q := range []string{
		"SET TimeZone = 'UTC'",
		"CREATE SCHEMA " + quote(Schema),
		"CREATE TABLE " + qualified + " AS SELECT *, now() AS " + quote(destination.ColumnSynced) + ", false AS " + quote(destination.ColumnDeleted) +
			" FROM " + reader + "('" + strings.ReplaceAll(file, "'", "''") + "')",
	} {
		if _, err = db.ExecContext(ctx, q); err != nil {
			break
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return time.Since(start), err
}
