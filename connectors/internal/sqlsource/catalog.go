package sqlsource

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluicedata/sluice/internal/contract"
)

// Column is one source column.
type Column struct {
	Name string // as in the source
	// Type is the sluice type the column is declared with. Unspecified
	// leaves it undeclared: the engine infers it from the values (used for
	// numbers without a declared precision, see the connectors' docs).
	Type      contract.Type
	Precision int
	Scale     int
	SQLType   string // the source's own type, for messages
	// Cursor says whether the column can be an incremental cursor: its
	// values order rows, and read back exactly from their text in state.
	Cursor bool
	// Kind is the connector's own decoding kind.
	Kind int
	// Generated columns are computed by the database (PostgreSQL).
	Generated bool
}

// Table is one source table or view.
type Table struct {
	Schema, Name string
	View         bool
	Columns      []Column
	Key          []string // primary key columns, in key order; empty: none
	// Dest is the table's name in the warehouse, as the connector hands it
	// to Ops (the engine normalises it).
	Dest string
	// Replicable says logical replication can carry the table's updates and
	// deletes with their keys (PostgreSQL: a primary key as replica
	// identity, or REPLICA IDENTITY FULL); Why says why not.
	Replicable bool
	Why        string
}

// Qualified is schema.name, the table's name in configuration and state.
func (t *Table) Qualified() string { return t.Schema + "." + t.Name }

// Col finds a column by source name.
func (t *Table) Col(name string) (int, bool) {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return i, true
		}
	}
	return -1, false
}

// KeyIdx gives the key columns' indexes.
func (t *Table) KeyIdx() []int {
	out := make([]int, 0, len(t.Key))
	for _, k := range t.Key {
		i, _ := t.Col(k)
		out = append(out, i)
	}
	return out
}

// DestName is a table's warehouse name: the bare name for the database's
// default schema (PostgreSQL's public, MySQL's database of the URL),
// schema_name otherwise, so that a name does not change when more schemas
// are synced.
func DestName(schema, name, defaultSchema string) string {
	if schema == defaultSchema {
		return name
	}
	return schema + "_" + name
}

// Declared is the table as the connector's Schema declares it.
func (t *Table) Declared(skipGenerated bool) contract.Table {
	dt := contract.Table{Name: t.Dest, PrimaryKey: slices.Clone(t.Key)}
	for _, c := range t.Columns {
		if c.Type == contract.Unspecified || (skipGenerated && c.Generated) {
			continue
		}
		dt.Columns = append(dt.Columns, contract.Column{Name: c.Name, Type: c.Type, Precision: c.Precision, Scale: c.Scale})
	}
	return dt
}

// Planned is a selected table with its mode.
type Planned struct {
	*Table
	Mode Mode
	// Cols are the indexes of the columns read: every column, less the
	// generated ones for a replicated table (logical replication does not
	// carry them).
	Cols []int
	// CursorIdx is the cursor column's index (Incremental), else -1.
	CursorIdx int
}

// Plan chooses the tables the settings select and gives each its mode.
// all is the catalog of the configured schemas. defaultMode gives a table
// no modes entry names its mode (full refresh, or replication when it is
// on and the table can be replicated).
func Plan(all []*Table, s *Settings, defaultMode func(*Table) Mode) ([]*Planned, error) {
	var out []*Planned
	used := make([]bool, len(s.Include))
	for _, t := range all {
		included := len(s.Include) == 0 && !t.View
		for i, p := range s.Include {
			if p.Match(t.Schema, t.Name) {
				// Views come only when named: a pattern for tables should
				// not pull in every view of the schema.
				if t.View && p.Wild() {
					continue
				}
				included, used[i] = true, true
			}
		}
		if !included || slices.ContainsFunc(s.Exclude, func(p Pattern) bool { return p.Match(t.Schema, t.Name) }) {
			continue
		}
		out = append(out, &Planned{Table: t, CursorIdx: -1})
	}
	var missing []string
	for i, p := range s.Include {
		if !used[i] && !p.Wild() {
			missing = append(missing, fmt.Sprintf("%q", p.Text))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("parameter %q names %s, which is not a table or view of the synced schemas (%s): check the spelling and the %q parameter",
			KeyTables, strings.Join(missing, ", "), strings.Join(schemasOf(all), ", "), KeySchemas)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no table to sync: the schemas %s have no table that %q and %q select", strings.Join(schemasOf(all), ", "), KeyTables, KeyExclude)
	}
	for _, r := range s.Modes {
		if r.Pattern.Wild() {
			continue
		}
		if !slices.ContainsFunc(out, func(p *Planned) bool { return r.Pattern.Match(p.Schema, p.Name) }) {
			return nil, fmt.Errorf("parameter %q names table %q, which is not synced: check the spelling, %q and %q", KeyModes, r.Pattern.Text, KeyTables, KeyExclude)
		}
	}
	seen := map[string]string{}
	for _, p := range out {
		if prev, ok := seen[p.Dest]; ok {
			return nil, fmt.Errorf("tables %s and %s would both be %q in the warehouse: exclude one of them", prev, p.Qualified(), p.Dest)
		}
		seen[p.Dest] = p.Qualified()
		p.Mode = defaultMode(p.Table)
		best := -1
		for _, r := range s.Modes {
			if r.Pattern.Match(p.Schema, p.Name) && r.Pattern.specificity() > best {
				best = r.Pattern.specificity()
				p.Mode = r.Mode
			}
		}
		if err := p.check(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Planned) check() error {
	for i, c := range p.Columns {
		if p.Mode.Kind == Replication && c.Generated {
			continue
		}
		p.Cols = append(p.Cols, i)
	}
	switch p.Mode.Kind {
	case Incremental:
		i, ok := p.Col(p.Mode.Cursor)
		if !ok {
			names := make([]string, len(p.Columns))
			for i, c := range p.Columns {
				names[i] = c.Name
			}
			return fmt.Errorf("parameter %q: table %s has no column %q to be its cursor (its columns: %s)", KeyModes, p.Qualified(), p.Mode.Cursor, strings.Join(names, ", "))
		}
		if !p.Columns[i].Cursor {
			return fmt.Errorf("parameter %q: column %q of table %s is %s, which cannot be a cursor: use a column of a number, date, time or text type, such as updated_at or a serial id", KeyModes, p.Mode.Cursor, p.Qualified(), p.Columns[i].SQLType)
		}
		p.CursorIdx = i
	case Replication:
		if p.View {
			return fmt.Errorf("parameter %q: %s is a view, which logical replication cannot carry: give it \"full_refresh\"", KeyModes, p.Qualified())
		}
		if !p.Replicable {
			return fmt.Errorf("parameter %q: table %s cannot be replicated (%s): give it \"full_refresh\", or add a primary key or REPLICA IDENTITY FULL", KeyModes, p.Qualified(), p.Why)
		}
	}
	return nil
}

func schemasOf(all []*Table) []string {
	var out []string
	for _, t := range all {
		if !slices.Contains(out, t.Schema) {
			out = append(out, t.Schema)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"(none found)"}
	}
	return out
}

// CheckSchemas reports configured schemas the catalog does not have.
func CheckSchemas(configured, existing []string, what string) error {
	var missing []string
	for _, s := range configured {
		if !slices.Contains(existing, s) {
			missing = append(missing, fmt.Sprintf("%q", s))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("parameter %q names %s %s, which does not exist (or the user may not see it): check the spelling", KeySchemas, what, strings.Join(missing, ", "))
}
