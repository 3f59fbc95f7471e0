package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
	"github.com/sluicedata/sluice/internal/contract"
)

// Params is the connector's configuration, as `sluice debug` and describe
// document and check it.
var Params = sqlsource.CommonParams(
	"Connection URL: mysql://user:password@host:3306/database, or a Go MySQL DSN user:password@tcp(host:3306)/database",
	"Databases (schemas) to sync, comma-separated; empty: the URL's database",
	"",
)

// Connector returns the MySQL and MariaDB source connector.
func Connector() contract.Connector {
	return contract.Connector{Name: "mysql", Schema: schema, Update: update}
}

// Secrets returns what of cfg must never be shown: the URL and its password
// (which a driver message may quote on its own).
func Secrets(cfg contract.Config) []string {
	out := Params.Secrets(cfg)
	if c, err := parseURL(cfg[sqlsource.KeyURL]); err == nil && c.Passwd != "" {
		out = append(out, c.Passwd)
	}
	return out
}

// parseURL reads a mysql:// (or mariadb://) URL or a driver DSN.
func parseURL(raw string) (*driver.Config, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("configuration: parameter %q is empty: give a URL such as mysql://user:password@host:3306/database", sqlsource.KeyURL)
	}
	if !strings.HasPrefix(raw, "mysql://") && !strings.HasPrefix(raw, "mariadb://") {
		c, err := driver.ParseDSN(raw)
		if err != nil {
			return nil, fmt.Errorf("configuration: parameter %q is neither a mysql:// URL nor a DSN such as user:password@tcp(host:3306)/database (%v)", sqlsource.KeyURL, err)
		}
		return c, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error would quote the URL, password and all.
		return nil, fmt.Errorf("configuration: parameter %q is not a valid URL: write mysql://user:password@host:3306/database", sqlsource.KeyURL)
	}
	c := driver.NewConfig()
	c.Net = "tcp"
	c.Addr = u.Host
	if u.Port() == "" {
		c.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Passwd, _ = u.User.Password()
	}
	c.DBName = strings.TrimPrefix(u.Path, "/")
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "tls":
			c.TLSConfig = v
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("configuration: parameter %q: timeout %q is not a duration such as 10s", sqlsource.KeyURL, v)
			}
			c.Timeout = d
		default:
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params[k] = v
		}
	}
	return c, nil
}

// source is one run's connection and plan.
type source struct {
	settings *sqlsource.Settings
	secrets  []string
	dcfg     *driver.Config
	db       *sql.DB
	mariadb  bool
	plan     []*sqlsource.Planned
	warned   map[string]bool
}

func (s *source) redact(err error) error { return sqlsource.Redact(err, s.secrets...) }

type slogLogger struct{}

func (slogLogger) Print(v ...any) { slog.Debug("mysql driver: " + fmt.Sprint(v...)) }

func open(ctx context.Context, cfg contract.Config) (*source, error) {
	valid, err := Params.Validate(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	s := &source{secrets: Secrets(valid), warned: map[string]bool{}}
	if s.settings, err = sqlsource.ParseSettings(valid, false); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if s.dcfg, err = parseURL(valid[sqlsource.KeyURL]); err != nil {
		return nil, s.redact(err)
	}
	c := s.dcfg
	// Values come in the text protocol, parameters interpolated (so that a
	// query with them stays in it), TIMESTAMP columns in UTC.
	c.InterpolateParams = true
	c.ParseTime = false
	c.Loc = time.UTC
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	c.Params["time_zone"] = "'+00:00'"
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	c.Logger = slogLogger{}
	if len(s.settings.Schemas) == 0 {
		if c.DBName == "" {
			return nil, fmt.Errorf("configuration: no database to sync: name one in the %q parameter or in the URL (mysql://host/database)", sqlsource.KeySchemas)
		}
		s.settings.Schemas = []string{c.DBName}
	}
	connector, err := driver.NewConnector(c)
	if err != nil {
		return nil, s.redact(fmt.Errorf("configuration: parameter %q: %w", sqlsource.KeyURL, err))
	}
	s.db = sql.OpenDB(connector)
	s.db.SetMaxOpenConns(2)
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		s.db.Close()
		return nil, s.redact(s.connectError(err))
	}
	s.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	if err := s.readPlan(ctx); err != nil {
		s.db.Close()
		return nil, s.redact(err)
	}
	return s, nil
}

func (s *source) close() { s.db.Close() }

func (s *source) connectError(err error) error {
	c := s.dcfg
	where := c.Addr
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1045, 1044, 1698:
			return fmt.Errorf("connect to MySQL at %s as user %q: access denied (%s): check the user and password in the %q parameter", where, c.User, me.Message, sqlsource.KeyURL)
		case 1049:
			return fmt.Errorf("connect to MySQL at %s: database %q does not exist: check the database in the %q parameter", where, c.DBName, sqlsource.KeyURL)
		}
		return fmt.Errorf("connect to MySQL at %s as user %q: %w", where, c.User, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("connect to MySQL at %s: %w", where, err)
	}
	return fmt.Errorf("connect to MySQL at %s: the server cannot be reached (%v): check the host and port in the %q parameter and that the server is running", where, err, sqlsource.KeyURL)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func schemaArgs(schemas []string) []any {
	out := make([]any, len(schemas))
	for i, s := range schemas {
		out[i] = s
	}
	return out
}

func (s *source) readCatalog(ctx context.Context) ([]*sqlsource.Table, error) {
	schemas := s.settings.Schemas
	in := "(" + placeholders(len(schemas)) + ")"
	args := schemaArgs(schemas)
	existing, err := s.strings(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN `+in, args...)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if err := sqlsource.CheckSchemas(schemas, existing, "database"); err != nil {
		return nil, err
	}
	jsonCols := map[string]bool{}
	if s.mariadb {
		// MariaDB's JSON is LONGTEXT with a json_valid check.
		rows, err := s.db.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN `+in, args...)
		if err != nil {
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
		for rows.Next() {
			var sch, tbl, clause string
			if err := rows.Scan(&sch, &tbl, &clause); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the catalog: %w", err)
			}
			if col, ok := strings.CutPrefix(clause, "json_valid(`"); ok && strings.HasSuffix(col, "`)") {
				jsonCols[sch+"\x00"+tbl+"\x00"+strings.TrimSuffix(col, "`)")] = true
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, LOWER(c.DATA_TYPE), LOWER(c.COLUMN_TYPE),
		COALESCE(c.NUMERIC_PRECISION, 0), COALESCE(c.NUMERIC_SCALE, 0), LOWER(COALESCE(c.EXTRA, ''))
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
		WHERE c.TABLE_SCHEMA IN `+in+` AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW')
		ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	var tables []*sqlsource.Table
	byName := map[string]*sqlsource.Table{}
	for rows.Next() {
		var sch, tbl, ttype, name, extra string
		var c column
		if err := rows.Scan(&sch, &tbl, &ttype, &name, &c.dataType, &c.columnType, &c.precision, &c.scale, &extra); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the catalog: %w", err)
		}
		key := sch + "\x00" + tbl
		t := byName[key]
		if t == nil {
			t = &sqlsource.Table{Schema: sch, Name: tbl, View: ttype == "VIEW", Dest: sqlsource.DestName(sch, tbl, s.dcfg.DBName)}
			byName[key] = t
			tables = append(tables, t)
		}
		c.json = jsonCols[key+"\x00"+name]
		col := mapType(c)
		col.Name = name
		col.Generated = strings.Contains(extra, "generated")
		t.Columns = append(t.Columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN `+in+` ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("read the catalog's keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sch, tbl, col string
		if err := rows.Scan(&sch, &tbl, &col); err != nil {
			return nil, fmt.Errorf("read the catalog's keys: %w", err)
		}
		if t := byName[sch+"\x00"+tbl]; t != nil {
			t.Key = append(t.Key, col)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog's keys: %w", err)
	}
	return tables, nil
}

func (s *source) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *source) readPlan(ctx context.Context) error {
	all, err := s.readCatalog(ctx)
	if err != nil {
		return err
	}
	s.plan, err = sqlsource.Plan(all, s.settings, func(*sqlsource.Table) sqlsource.Mode {
		return sqlsource.Mode{Kind: sqlsource.FullRefresh}
	})
	return err
}

func schema(ctx context.Context, cfg contract.Config) ([]contract.Table, error) {
	s, err := open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.close()
	out := make([]contract.Table, len(s.plan))
	for i, p := range s.plan {
		out[i] = p.Declared(false)
	}
	return out, nil
}

func update(ctx context.Context, cfg contract.Config, state contract.State, ops contract.Ops) error {
	s, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.close()
	st, err := sqlsource.ReadState(state)
	if err != nil {
		return err
	}
	sy := &sqlsource.Sync{Ops: ops, Source: s, State: st, Every: s.settings.CheckpointRows}
	err = func() error {
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
		sy.EndRefresh()
		return sy.Checkpoint()
	}()
	return s.redact(err)
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// dialect renders values as bind parameters, typed so that MySQL compares
// them as the column's type (a string compared with a number is compared
// as a double).
type dialect struct{ args []any }

func (d *dialect) Quote(s string) string { return quoteIdent(s) }

// NullsFirst: ascending order puts NULLs first in MySQL.
func (d *dialect) NullsFirst(expr string) string { return expr }

func (d *dialect) Value(c *sqlsource.Column, v string) (string, error) {
	switch c.Kind {
	case kInt, kYear:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("position %q is not an integer", v)
		}
		d.args = append(d.args, n)
	case kUint, kUint64:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("position %q is not an unsigned integer", v)
		}
		d.args = append(d.args, n)
	case kFloat, kDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", fmt.Errorf("position %q is not a number", v)
		}
		d.args = append(d.args, f)
	case kDecimal:
		d.args = append(d.args, v)
		t, _, _ := strings.Cut(c.SQLType, " ") // decimal(p,s), less unsigned or zerofill
		return "CAST(? AS " + t + ")", nil
	case kDate, kDatetime, kTimestamp:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.999999999", v)
		}
		if err != nil {
			t, err = time.Parse("2006-01-02", v)
		}
		if err != nil {
			return "", fmt.Errorf("position %q is not a date and time", v)
		}
		d.args = append(d.args, t.UTC().Format("2006-01-02 15:04:05.999999"))
		if c.Kind == kDate {
			return "CAST(? AS DATE)", nil
		}
		return "CAST(? AS DATETIME(6))", nil
	case kBool:
		d.args = append(d.args, v == "true")
	case kBit:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("position %q is not an unsigned integer", v)
		}
		d.args = append(d.args, n)
	case kBinary:
		b, err := hex.DecodeString(v)
		if err != nil {
			return "", fmt.Errorf("position %q is not hexadecimal", v)
		}
		d.args = append(d.args, b)
	default:
		d.args = append(d.args, v)
	}
	return "?", nil
}

// selectExpr reads FLOAT as a double: its text in the text protocol has
// only six digits, its double holds the float exactly.
func selectExpr(c *sqlsource.Column) string {
	if c.Kind == kFloat {
		return "(" + quoteIdent(c.Name) + " + 0e0)"
	}
	return quoteIdent(c.Name)
}

// Read implements sqlsource.Source: an unbuffered query, each row read off
// the connection as it is scanned.
func (s *source) Read(ctx context.Context, q *sqlsource.Query, emit func([]any) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := q.Table
	d := &dialect{}
	var b strings.Builder
	b.WriteString("SELECT ")
	for j, i := range p.Cols {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(selectExpr(&p.Columns[i]))
	}
	b.WriteString(" FROM " + quoteIdent(p.Schema) + "." + quoteIdent(p.Name))
	if q.Where != nil {
		w, err := sqlsource.Where(d, p.Table, q.Where)
		if err != nil {
			return err
		}
		b.WriteString(" WHERE " + w)
	}
	if len(q.Order) > 0 {
		b.WriteString(" ORDER BY " + sqlsource.OrderBy(d, q))
	}
	rows, err := s.db.QueryContext(ctx, b.String(), d.args...)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	// A read stopped early cancels first, which ends the statement:
	// closing its rows would otherwise read the rest of the table.
	complete := false
	defer func() {
		if !complete {
			cancel()
		}
		rows.Close()
	}()
	raw := make([]sql.RawBytes, len(p.Cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	row := make([]any, len(p.Cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for j, v := range raw {
			if v == nil {
				row[j] = nil
				continue
			}
			c := &p.Columns[p.Cols[j]]
			x, err := decode(c.Kind, v)
			if err != nil {
				if errors.Is(err, errZero) {
					s.warnNull(p.Table, c)
					row[j] = nil
					continue
				}
				return fmt.Errorf("column %q (%s): %w", c.Name, c.SQLType, err)
			}
			row[j] = x
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	complete = true
	return nil
}

func (s *source) warnNull(t *sqlsource.Table, c *sqlsource.Column) {
	key := t.Qualified() + "." + c.Name
	if s.warned[key] {
		return
	}
	s.warned[key] = true
	slog.Warn("zero dates have no calendar date: they are synced as NULL", "table", t.Qualified(), "column", c.Name)
}
