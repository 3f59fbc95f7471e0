// Package sqlsource is what the database source connectors (PostgreSQL,
// MySQL/MariaDB) share: their configuration, the choice of tables and modes,
// the state they checkpoint, and the table reads of full refresh and
// incremental mode with their checkpoints. A connector brings the catalog,
// the SQL dialect and the row reader (Source).
package sqlsource

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/sluicedata/sluice/internal/contract"
)

// Configuration keys every database source takes.
const (
	KeyURL            = "url"
	KeySchemas        = "schemas"
	KeyTables         = "tables"
	KeyExclude        = "exclude"
	KeyModes          = "modes"
	KeyCheckpointRows = "checkpoint_rows"
)

// DefaultCheckpointRows is how many rows a table read emits between
// checkpoints unless checkpoint_rows says otherwise: a crash costs at most
// this many rows read again, and each checkpoint is one warehouse commit.
const DefaultCheckpointRows = 100_000

// CommonParams declares the keys above. schemasDoc says what the schemas
// default to, which differs between databases.
func CommonParams(urlDoc, schemasDoc, schemasDefault string) contract.Params {
	return contract.Params{
		{Name: KeyURL, Label: urlDoc, Type: contract.ParamSecret, Mandatory: true},
		{Name: KeySchemas, Label: schemasDoc, Type: contract.ParamString, Default: schemasDefault},
		{Name: KeyTables, Label: "Tables to sync, comma-separated: name, schema.name or a pattern with * and ? (empty: every table of the schemas)", Type: contract.ParamString},
		{Name: KeyExclude, Label: "Tables to leave out, comma-separated, same forms as tables", Type: contract.ParamString},
		{Name: KeyModes, Label: `Per-table modes, a JSON object from table (or pattern) to "full_refresh" or "incremental:<cursor column>"`, Type: contract.ParamKeyValue},
		{Name: KeyCheckpointRows, Label: "Rows read between checkpoints", Type: contract.ParamInt, Default: fmt.Sprint(DefaultCheckpointRows)},
	}
}

// ModeKind is how a table is read.
type ModeKind uint8

const (
	// FullRefresh reads the whole table each sync; rows gone from the
	// source end up soft-deleted (a Truncate before the rows).
	FullRefresh ModeKind = iota + 1
	// Incremental reads the rows whose cursor column is at or past the
	// value the last sync reached.
	Incremental
	// Replication takes changes from the database's change stream after
	// one full snapshot (PostgreSQL logical replication).
	Replication
)

func (k ModeKind) String() string {
	switch k {
	case FullRefresh:
		return "full_refresh"
	case Incremental:
		return "incremental"
	case Replication:
		return "replication"
	}
	return "unknown"
}

// Mode is one table's mode.
type Mode struct {
	Kind   ModeKind
	Cursor string // Incremental: the cursor column's source name
}

func (m Mode) String() string {
	if m.Kind == Incremental {
		return "incremental:" + m.Cursor
	}
	return m.Kind.String()
}

// ParseMode reads a mode value of the modes parameter.
func ParseMode(v string, replication bool) (Mode, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "full_refresh":
		return Mode{Kind: FullRefresh}, nil
	case v == "replication":
		if !replication {
			return Mode{}, errors.New(`"replication" needs the replication parameter set (to "pgoutput")`)
		}
		return Mode{Kind: Replication}, nil
	case strings.HasPrefix(v, "incremental:"):
		c := strings.TrimSpace(strings.TrimPrefix(v, "incremental:"))
		if c == "" {
			return Mode{}, errors.New(`"incremental:" needs the cursor column after the colon, as in "incremental:updated_at"`)
		}
		return Mode{Kind: Incremental, Cursor: c}, nil
	case v == "incremental":
		return Mode{}, errors.New(`"incremental" needs its cursor column, as in "incremental:updated_at"`)
	}
	want := `"full_refresh" or "incremental:<cursor column>"`
	if replication {
		want = `"full_refresh", "incremental:<cursor column>" or "replication"`
	}
	return Mode{}, fmt.Errorf("%q is not a mode: use %s", v, want)
}

// Pattern names tables: a table pattern, with an optional schema pattern
// before a dot. Both may hold * and ? wildcards.
type Pattern struct {
	Text   string // as written, for messages
	Schema string // "" matches any schema
	Table  string
}

// ParsePattern reads "name", "schema.name" or a pattern of either.
func ParsePattern(s string) (Pattern, error) {
	s = strings.TrimSpace(s)
	p := Pattern{Text: s, Table: s}
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		p.Schema, p.Table = s[:i], s[i+1:]
		if p.Schema == "" {
			return p, fmt.Errorf("%q has nothing before the dot: write schema.table or table", s)
		}
	}
	if p.Table == "" {
		return p, fmt.Errorf("%q names no table", s)
	}
	for _, part := range []string{p.Schema, p.Table} {
		if _, err := path.Match(part, ""); err != nil {
			return p, fmt.Errorf("%q is not a valid pattern: %w", s, err)
		}
	}
	return p, nil
}

// Wild reports whether the pattern has wildcards.
func (p Pattern) Wild() bool { return strings.ContainsAny(p.Text, "*?[") }

// Match reports whether the pattern names schema.table.
func (p Pattern) Match(schema, table string) bool {
	if p.Schema != "" {
		if ok, _ := path.Match(p.Schema, schema); !ok {
			return false
		}
	}
	ok, _ := path.Match(p.Table, table)
	return ok
}

// specificity orders patterns that match the same table: an exact
// schema.table beats an exact table name, which beats any pattern; among
// patterns, the one with more literal characters wins.
func (p Pattern) specificity() int {
	if !p.Wild() {
		if p.Schema != "" {
			return 1 << 20
		}
		return 1 << 19
	}
	n := 0
	for _, r := range p.Text {
		if r != '*' && r != '?' {
			n++
		}
	}
	return n
}

// ModeRule is one entry of the modes parameter.
type ModeRule struct {
	Pattern Pattern
	Mode    Mode
}

// Settings is the parsed common configuration.
type Settings struct {
	Schemas        []string
	Include        []Pattern
	Exclude        []Pattern
	Modes          []ModeRule
	CheckpointRows int64
}

// ParseSettings reads the common keys from a configuration that
// contract.Params.Validate accepted. replication says whether the
// "replication" mode is allowed.
func ParseSettings(cfg contract.Config, replication bool) (*Settings, error) {
	s := &Settings{Schemas: List(cfg[KeySchemas])}
	var errs []error
	for _, key := range []string{KeyTables, KeyExclude} {
		for _, item := range List(cfg[key]) {
			p, err := ParsePattern(item)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %q: %w", key, err))
				continue
			}
			if key == KeyTables {
				s.Include = append(s.Include, p)
			} else {
				s.Exclude = append(s.Exclude, p)
			}
		}
	}
	modes, err := cfg.KeyValues(KeyModes)
	if err != nil {
		errs = append(errs, err)
	}
	for k, v := range modes {
		p, err := ParsePattern(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("parameter %q, key %q: %w", KeyModes, k, err))
			continue
		}
		m, err := ParseMode(v, replication)
		if err != nil {
			errs = append(errs, fmt.Errorf("parameter %q, table %q: %w", KeyModes, k, err))
			continue
		}
		s.Modes = append(s.Modes, ModeRule{Pattern: p, Mode: m})
	}
	s.CheckpointRows = DefaultCheckpointRows
	if v := strings.TrimSpace(cfg[KeyCheckpointRows]); v != "" {
		n, err := cfg.Int(KeyCheckpointRows)
		switch {
		case err != nil:
			errs = append(errs, err)
		case n < 1:
			errs = append(errs, fmt.Errorf("parameter %q: %d is not a positive number of rows", KeyCheckpointRows, n))
		default:
			s.CheckpointRows = n
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// List splits a comma-separated value, dropping empty items.
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
