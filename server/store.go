package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the embedded store's database/sql driver (pure Go, no cgo)
)

// store is the server's metadata: destinations, connections, binaries, runs,
// logs and API keys, in SQLite (one file in the data folder) or PostgreSQL.
// Queries are written once, with ? placeholders, and rebound for
// PostgreSQL; the two schemas differ only in their DDL.
type store struct {
	db       *sql.DB
	pool     *pgxpool.Pool // PostgreSQL only: River's driver takes a pgx pool
	postgres bool
}

// timeLayout stores times as fixed-width UTC text: it sorts as time does in
// both databases and stays readable to an operator querying the store.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func nullTime(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTime(s.String)
	return &t
}

// openStore opens (and creates) the metadata store: PostgreSQL when dbURL is
// set, else SQLite at dataDir/sluice.db.
func openStore(ctx context.Context, dataDir, dbURL string) (*store, error) {
	if dbURL != "" {
		return openPostgresStore(ctx, dbURL)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, "sluice.db")
	// WAL lets `sluice serve keys` run beside a running server; immediate
	// transactions take the write lock at BEGIN, so a second process waits
	// (busy_timeout) instead of failing on a lock upgrade.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("metadata store %s: %w", path, err)
	}
	// River's SQLite driver asks for a single connection: SQLite allows one
	// writer, and River runs its maintenance in parallel. The store shares
	// it, so no store method may hold rows open while it runs another query.
	db.SetMaxOpenConns(1)
	s := &store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("metadata store %s: %w", path, err)
	}
	return s, nil
}

func openPostgresStore(ctx context.Context, dbURL string) (*store, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("--db: not a valid PostgreSQL URL (postgres://user:password@host:5432/database)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--db: %s", redactURL(err.Error(), dbURL))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("--db: cannot reach PostgreSQL at %s: %s", hostOf(dbURL), redactURL(err.Error(), dbURL))
	}
	s := &store{db: stdlib.OpenDBFromPool(pool), pool: pool, postgres: true}
	if err := s.migrate(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("metadata store in PostgreSQL at %s: %w", hostOf(dbURL), err)
	}
	return s, nil
}

func (s *store) close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// q rebinds a query written with ? placeholders for the store's database.
// The store's queries have no ? inside string literals.
func (s *store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

func (s *store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

// insertID inserts a row and returns its generated id.
func (s *store) insertID(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(query+" RETURNING id"), args...).Scan(&id)
	return id, err
}

// schemaVersion is the store schema this code writes; migrate brings an
// older store up to it.
const schemaVersion = 1

// The schema, per database. Times are text (timeLayout); secrets are
// AES-GCM sealed (see sealer); binaries are cut into chunks so neither an
// upload nor a download holds a whole binary in memory.
var ddl = map[bool][]string{
	false: {
		`CREATE TABLE IF NOT EXISTS sluice_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL,
			created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT)`,
		`CREATE TABLE IF NOT EXISTS sluice_destinations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
			url_sealed TEXT NOT NULL, scheme TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_binaries (id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT, size INTEGER NOT NULL DEFAULT 0,
			stored_size INTEGER NOT NULL DEFAULT 0, encoding TEXT NOT NULL DEFAULT '',
			goos TEXT NOT NULL, goarch TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0, uploaded_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_binary_chunks (binary_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
			PRIMARY KEY (binary_id, seq))`,
		`CREATE TABLE IF NOT EXISTS sluice_connections (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
			destination_id INTEGER NOT NULL REFERENCES sluice_destinations(id), binary_id INTEGER REFERENCES sluice_binaries(id),
			schedule TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0, config_sealed TEXT NOT NULL,
			created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deployed_at TEXT, last_scheduled_at TEXT,
			resync TEXT, state_sealed TEXT, state_at TEXT)`,
		`CREATE TABLE IF NOT EXISTS sluice_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, connection_id INTEGER NOT NULL,
			job_id INTEGER NOT NULL, attempt INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
			started_at TEXT NOT NULL, finished_at TEXT, error TEXT, tables TEXT, binary_sha256 TEXT NOT NULL, worker TEXT NOT NULL,
			log_lines INTEGER NOT NULL DEFAULT 0, log_dropped INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX IF NOT EXISTS sluice_runs_connection ON sluice_runs (connection_id, id)`,
		`CREATE TABLE IF NOT EXISTS sluice_run_logs (run_id INTEGER NOT NULL, seq INTEGER NOT NULL, logged_at TEXT NOT NULL,
			level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (run_id, seq))`,
	},
	true: {
		`CREATE TABLE IF NOT EXISTS sluice_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL,
			created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT)`,
		`CREATE TABLE IF NOT EXISTS sluice_destinations (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
			url_sealed TEXT NOT NULL, scheme TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_binaries (id BIGSERIAL PRIMARY KEY, sha256 TEXT, size BIGINT NOT NULL DEFAULT 0,
			stored_size BIGINT NOT NULL DEFAULT 0, encoding TEXT NOT NULL DEFAULT '',
			goos TEXT NOT NULL, goarch TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0, uploaded_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS sluice_binary_chunks (binary_id BIGINT NOT NULL, seq INTEGER NOT NULL, data BYTEA NOT NULL,
			PRIMARY KEY (binary_id, seq))`,
		// PostgreSQL's own compression of large values (pglz) ran at 8 MB/s
		// on program code; chunks are stored as they come.
		`ALTER TABLE sluice_binary_chunks ALTER COLUMN data SET STORAGE EXTERNAL`,
		`CREATE TABLE IF NOT EXISTS sluice_connections (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
			destination_id BIGINT NOT NULL REFERENCES sluice_destinations(id), binary_id BIGINT REFERENCES sluice_binaries(id),
			schedule TEXT NOT NULL, paused INTEGER NOT NULL DEFAULT 0, config_sealed TEXT NOT NULL,
			created_at TEXT NOT NULL, updated_at TEXT NOT NULL, deployed_at TEXT, last_scheduled_at TEXT,
			resync TEXT, state_sealed TEXT, state_at TEXT)`,
		`CREATE TABLE IF NOT EXISTS sluice_runs (id BIGSERIAL PRIMARY KEY, connection_id BIGINT NOT NULL,
			job_id BIGINT NOT NULL, attempt INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
			started_at TEXT NOT NULL, finished_at TEXT, error TEXT, tables TEXT, binary_sha256 TEXT NOT NULL, worker TEXT NOT NULL,
			log_lines INTEGER NOT NULL DEFAULT 0, log_dropped INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX IF NOT EXISTS sluice_runs_connection ON sluice_runs (connection_id, id)`,
		`CREATE TABLE IF NOT EXISTS sluice_run_logs (run_id BIGINT NOT NULL, seq INTEGER NOT NULL, logged_at TEXT NOT NULL,
			level TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (run_id, seq))`,
	},
}

// migrate creates the schema, or checks that a store written by a newer
// sluice is not opened by an older one. Several processes may start at once
// against one PostgreSQL store: every statement is idempotent, and an
// advisory lock orders them.
func (s *store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockClassMigrate); err != nil {
			return fmt.Errorf("lock for schema migration: %w", err)
		}
	}
	for _, stmt := range ddl[s.postgres] {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	var v string
	err = tx.QueryRowContext(ctx, s.q(`SELECT v FROM sluice_meta WHERE k = 'schema_version'`)).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO sluice_meta (k, v) VALUES ('schema_version', ?)`), strconv.Itoa(schemaVersion)); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		n, _ := strconv.Atoi(v)
		if n > schemaVersion {
			return fmt.Errorf("the store has schema version %d, newer than this sluice's %d: upgrade sluice", n, schemaVersion)
		}
	}
	return tx.Commit()
}

// meta reads a value of sluice_meta; ok is false when it is not set.
func (s *store) meta(ctx context.Context, k string) (v string, ok bool, err error) {
	err = s.queryRow(ctx, `SELECT v FROM sluice_meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

// setMetaOnce stores v under k unless k is set; it returns the value stored.
func (s *store) setMetaOnce(ctx context.Context, k, v string) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO sluice_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING`, k, v); err != nil {
		return "", err
	}
	got, _, err := s.meta(ctx, k)
	return got, err
}

// Lock classes: the first key of PostgreSQL's two-key advisory locks, so
// sluice's locks never collide with River's (one-key) or an application's.
const (
	lockClassMigrate    = 0x51CE0001
	lockClassConnection = 0x51CE0002
	lockClassDest       = 0x51CE0003
)

// redactURL removes the password of rawURL from msg.
func redactURL(msg, rawURL string) string {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				if pw := rest[c+1 : at]; pw != "" {
					msg = strings.ReplaceAll(msg, pw, "***")
				}
			}
		}
	}
	return msg
}

// hostOf is a URL's host, for messages that must not carry its password.
func hostOf(rawURL string) string {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = rest[at+1:]
		}
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	return "(unparsable URL)"
}
