package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
	"github.com/sluicedata/sluice/internal/contract"
)

// Configuration keys of PostgreSQL only; the common ones are in
// sqlsource.
const (
	KeyReplication = "replication"
	KeyPublication = "publication"
	KeySlot        = "slot"
)

// Params is the connector's configuration, as `sluice debug` and describe
// document and check it.
var Params = append(sqlsource.CommonParams(
	"Connection URL, postgres://user:password@host:5432/database?sslmode=...",
	"Schemas to sync, comma-separated",
	"public",
),
	contract.Param{Name: KeyReplication, Label: `Capture changes (deletes included) by logical replication: "pgoutput", or "none"`, Type: contract.ParamSelect, Choices: []string{"none", "pgoutput"}, Default: "none"},
	contract.Param{Name: KeyPublication, Label: "Publication of the replicated tables (created if missing)", Type: contract.ParamString, Default: "sluice"},
	contract.Param{Name: KeySlot, Label: "Replication slot, one per connector (created if missing)", Type: contract.ParamString, Default: "sluice"},
)

// Connector returns the PostgreSQL source connector.
func Connector() contract.Connector {
	return ConnectorWith(Options{})
}

// Options tune the connector beyond its configuration; the zero value is
// the default.
type Options struct {
	// Read is how tables are fetched (see ReadMethod).
	Read ReadMethod
}

// ConnectorWith returns the connector with options, for benchmarks and
// tests that compare them.
func ConnectorWith(o Options) contract.Connector {
	return contract.Connector{
		Name: "postgres",
		Schema: func(ctx context.Context, cfg contract.Config) ([]contract.Table, error) {
			return schema(ctx, cfg)
		},
		Update: func(ctx context.Context, cfg contract.Config, state contract.State, ops contract.Ops) error {
			return update(ctx, cfg, state, ops, o)
		},
	}
}

// Secrets returns what of cfg must never be shown: the URL and its password
// (which a driver message may quote on its own).
func Secrets(cfg contract.Config) []string {
	out := Params.Secrets(cfg)
	if c, err := pgconn.ParseConfig(cfg[sqlsource.KeyURL]); err == nil && c.Password != "" {
		out = append(out, c.Password)
	}
	return out
}

// source is one run's connection to the database and what it read of the
// catalog.
type source struct {
	settings *sqlsource.Settings
	secrets  []string
	connCfg  *pgx.ConnConfig
	conn     *pgx.Conn
	plan     []*sqlsource.Planned
	// replication settings
	replicate   bool
	publication string
	slot        string
}

var simpleName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// open checks the configuration, connects and plans the tables. warn logs
// what the plan decided that the user should know (once per sync: in
// Update, not in Schema).
func open(ctx context.Context, cfg contract.Config, warn bool) (*source, error) {
	valid, err := Params.Validate(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	s := &source{secrets: Secrets(valid)}
	s.replicate = valid[KeyReplication] == "pgoutput"
	s.publication, s.slot = valid[KeyPublication], valid[KeySlot]
	if s.replicate {
		for k, v := range map[string]string{KeyPublication: s.publication, KeySlot: s.slot} {
			if !simpleName.MatchString(v) {
				return nil, fmt.Errorf("configuration: parameter %q: %q is not a valid name: use lower-case letters, digits and _ (at most 63)", k, v)
			}
		}
	}
	if s.settings, err = sqlsource.ParseSettings(valid, s.replicate); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if s.connCfg, err = connConfig(valid[sqlsource.KeyURL]); err != nil {
		return nil, s.redact(err)
	}
	if s.conn, err = pgx.ConnectConfig(ctx, s.connCfg); err != nil {
		return nil, s.redact(connectError(s.connCfg, err))
	}
	if err := s.readPlan(ctx, warn); err != nil {
		s.close()
		return nil, s.redact(err)
	}
	return s, nil
}

func (s *source) redact(err error) error { return sqlsource.Redact(err, s.secrets...) }

func (s *source) close() {
	if s.conn != nil {
		s.conn.Close(context.Background())
	}
}

// sessionParams fix the text forms values are read in, for the snapshot and
// the change stream alike.
var sessionParams = map[string]string{
	"application_name":   "sluice",
	"DateStyle":          "ISO",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3", // shortest exact floats (17 digits before PostgreSQL 12)
	"bytea_output":       "hex",
	// COPY takes no parameters: positions are quoted literals, which
	// this makes safe to quote by doubling quotes alone.
	"standard_conforming_strings": "on",
}

func connConfig(u string) (*pgx.ConnConfig, error) {
	if strings.TrimSpace(u) == "" {
		return nil, fmt.Errorf("configuration: parameter %q is empty: give a URL such as postgres://user:password@host:5432/database", sqlsource.KeyURL)
	}
	c, err := pgx.ParseConfig(u)
	if err != nil {
		// pgx's message quotes the URL with its password masked; the
		// cause alone says what is wrong without quoting it at all.
		var cause error = err
		if u := errors.Unwrap(err); u != nil {
			cause = u
		}
		return nil, fmt.Errorf("configuration: parameter %q is not a valid PostgreSQL URL (%v): write postgres://user:password@host:5432/database", sqlsource.KeyURL, cause)
	}
	for k, v := range sessionParams {
		c.RuntimeParams[k] = v
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	return c, nil
}

// connectError says which server refused and what to check.
func connectError(c *pgx.ConnConfig, err error) error {
	where := fmt.Sprintf("%s:%d", c.Host, c.Port)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("connect to PostgreSQL at %s as user %q: authentication failed (%s): check the user and password in the %q parameter", where, c.User, pgErr.Message, sqlsource.KeyURL)
		case "3D000":
			return fmt.Errorf("connect to PostgreSQL at %s: database %q does not exist: check the database in the %q parameter", where, c.Database, sqlsource.KeyURL)
		}
		return fmt.Errorf("connect to PostgreSQL at %s as user %q: %s (SQLSTATE %s)", where, c.User, pgErr.Message, pgErr.Code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("connect to PostgreSQL at %s: %w", where, err)
	}
	return fmt.Errorf("connect to PostgreSQL at %s: the server cannot be reached (%v): check the host and port in the %q parameter and that PostgreSQL is running", where, err, sqlsource.KeyURL)
}

// catalogSQL lists the columns of the tables, views and foreign tables of
// the schemas, domains resolved to their base type (one level), in column
// order. Partitions are read through their parent.
const catalogSQL = `
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relreplident::text,
       a.attname, a.attgenerated <> '',
       bt.typname, bt.typtype::text, bt.typcategory::text, COALESCE(et.typname, ''),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
ORDER BY n.nspname, c.relname, a.attnum`

const keysSQL = `
SELECT i.indrelid, i.indisprimary, i.indisreplident, array_agg(a.attname ORDER BY k.ord)::text[]
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE n.nspname = ANY($1) AND (i.indisprimary OR i.indisreplident)
GROUP BY i.indrelid, i.indisprimary, i.indisreplident`

// readCatalog reads the tables of the configured schemas.
func (s *source) readCatalog(ctx context.Context) ([]*sqlsource.Table, error) {
	schemas := s.settings.Schemas
	var existing []string
	rows, err := s.conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)`, schemas)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	existing, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if err := sqlsource.CheckSchemas(schemas, existing, "schema"); err != nil {
		return nil, err
	}
	rows, err = s.conn.Query(ctx, catalogSQL, schemas)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	var tables []*sqlsource.Table
	idents := map[uint32]byte{}
	byOID := map[uint32]*sqlsource.Table{}
	for rows.Next() {
		var (
			oid                      uint32
			nsp, rel, col            string
			relkind, replident       string
			generated                bool
			typname, typtype, typcat string
			elem, format             string
			typmod                   int32
		)
		if err := rows.Scan(&oid, &nsp, &rel, &relkind, &replident, &col, &generated, &typname, &typtype, &typcat, &elem, &typmod, &format); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
		t := byOID[oid]
		if t == nil {
			t = &sqlsource.Table{Schema: nsp, Name: rel, View: relkind == "v" || relkind == "m",
				Dest: sqlsource.DestName(nsp, rel, "public")}
			byOID[oid] = t
			idents[oid] = replident[0]
			tables = append(tables, t)
		}
		c := mapType(pgType{name: typname, typtype: typtype[0], category: typcat[0], elem: elem, typmod: typmod, format: format})
		c.Name, c.Generated = col, generated
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	rows, err = s.conn.Query(ctx, keysSQL, schemas)
	if err != nil {
		return nil, fmt.Errorf("read the catalog's keys: %w", err)
	}
	identCols := map[uint32][]string{}
	for rows.Next() {
		var oid uint32
		var primary, replIdent bool
		var cols []string
		if err := rows.Scan(&oid, &primary, &replIdent, &cols); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the catalog's keys: %w", err)
		}
		if t := byOID[oid]; t != nil && primary {
			t.Key = cols
		}
		if replIdent {
			identCols[oid] = cols
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog's keys: %w", err)
	}
	for oid, t := range byOID {
		switch idents[oid] {
		case 'f':
			t.Replicable = true
		case 'd':
			t.Replicable = len(t.Key) > 0
			t.Why = "it has no primary key"
		case 'i':
			t.Replicable = len(t.Key) > 0 && slices.Equal(identCols[oid], t.Key)
			t.Why = "its replica identity index is not its primary key"
		default:
			t.Why = "its REPLICA IDENTITY is NOTHING"
		}
	}
	return tables, nil
}

func (s *source) readPlan(ctx context.Context, warn bool) error {
	all, err := s.readCatalog(ctx)
	if err != nil {
		return err
	}
	s.plan, err = sqlsource.Plan(all, s.settings, func(t *sqlsource.Table) sqlsource.Mode {
		if s.replicate && !t.View && t.Replicable {
			return sqlsource.Mode{Kind: sqlsource.Replication}
		}
		if s.replicate && !t.View && warn {
			slog.Warn("the table cannot be replicated: it is fully refreshed each sync", "table", t.Qualified(), "reason", t.Why)
		}
		return sqlsource.Mode{Kind: sqlsource.FullRefresh}
	})
	return err
}

func schema(ctx context.Context, cfg contract.Config) ([]contract.Table, error) {
	s, err := open(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	defer s.close()
	out := make([]contract.Table, len(s.plan))
	for i, p := range s.plan {
		out[i] = p.Declared(p.Mode.Kind == sqlsource.Replication)
	}
	return out, nil
}

func update(ctx context.Context, cfg contract.Config, state contract.State, ops contract.Ops, o Options) error {
	s, err := open(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer s.close()
	st, err := sqlsource.ReadState(state)
	if err != nil {
		return err
	}
	sy := &sqlsource.Sync{
		Ops:    ops,
		Source: &reader{conn: s.conn.PgConn(), method: o.Read, warned: map[string]bool{}},
		State:  st,
		Every:  s.settings.CheckpointRows,
	}
	return s.redact(s.run(ctx, sy))
}

// run reads every table in its mode: first the refresh pass (the snapshot
// of replicated tables that need one, then the full refreshes), then the
// incremental tables, then the change stream.
func (s *source) run(ctx context.Context, sy *sqlsource.Sync) error {
	var rep *replication
	if s.replicate && slices.ContainsFunc(s.plan, isReplicated) {
		var err error
		if rep, err = s.startReplication(ctx, sy); err != nil {
			return err
		}
		defer rep.close()
		if err := rep.snapshot(ctx, sy); err != nil {
			return err
		}
	}
	for _, p := range s.plan {
		if p.Mode.Kind == sqlsource.FullRefresh {
			if err := sy.Refresh(ctx, p); err != nil {
				return err
			}
		}
	}
	for _, p := range s.plan {
		if p.Mode.Kind == sqlsource.Incremental {
			if err := sy.Incremental(ctx, p); err != nil {
				return err
			}
		}
	}
	if rep != nil {
		if err := rep.stream(ctx, sy); err != nil {
			return err
		}
	}
	sy.EndRefresh()
	return sy.Checkpoint()
}

func isReplicated(p *sqlsource.Planned) bool { return p.Mode.Kind == sqlsource.Replication }

// replicationConfig is the configuration of a replication connection.
func replicationConfig(c *pgx.ConnConfig) *pgconn.Config {
	rc := c.Config.Copy()
	rc.RuntimeParams["replication"] = "database"
	return rc
}
