package sqlsource

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

// Source reads rows. The connector implements it over its driver.
type Source interface {
	// Read streams the rows q selects, in q's order, calling emit with one
	// value per column of q.Table.Cols, in the canonical Go forms of the
	// engine (int64, float64, bool, string, []byte, time.Time,
	// contract.DecimalText, nil). row is reused between calls; values in it
	// are not. emit's error ends the read and is returned.
	Read(ctx context.Context, q *Query, emit func(row []any) error) error
}

// Query is one ordered table read.
type Query struct {
	Table *Planned
	// Order lists column indexes (into Table.Columns) to sort by,
	// ascending. NullsFirst says the first may be NULL and NULLs sort
	// first (a cursor column); key columns are never NULL.
	Order      []int
	NullsFirst bool
	Where      *Cond // nil: every row
}

// CondKind is the shape of a condition.
type CondKind uint8

const (
	// RowAfter: (Cols...) > (Vals...), in the order's sense.
	RowAfter CondKind = iota + 1
	// AtLeast: Cols[0] >= Vals[0].
	AtLeast
	// Greater: Cols[0] > Vals[0].
	Greater
	IsNull
	NotNull
	And
	Or
)

// Cond is a WHERE condition over column indexes and values as text (see
// PosText), which a Dialect turns into SQL.
type Cond struct {
	Kind CondKind
	Cols []int
	Vals []string
	Sub  []*Cond
}

// Dialect renders conditions and orders in a database's SQL.
type Dialect interface {
	Quote(ident string) string
	// Value gives an SQL expression for the value whose text is v in
	// column c: a bind parameter or a literal of the column's type.
	Value(c *Column, v string) (string, error)
	// NullsFirst sorts a column ascending with NULLs first.
	NullsFirst(expr string) string
}

// Where renders a condition.
func Where(d Dialect, t *Table, c *Cond) (string, error) {
	col := func(i int) string { return d.Quote(t.Columns[i].Name) }
	switch c.Kind {
	case RowAfter, AtLeast, Greater:
		lhs := make([]string, len(c.Cols))
		rhs := make([]string, len(c.Cols))
		for j, i := range c.Cols {
			lhs[j] = col(i)
			v, err := d.Value(&t.Columns[i], c.Vals[j])
			if err != nil {
				return "", fmt.Errorf("column %q: %w", t.Columns[i].Name, err)
			}
			rhs[j] = v
		}
		op := ">"
		if c.Kind == AtLeast {
			op = ">="
		}
		if len(lhs) == 1 {
			return lhs[0] + " " + op + " " + rhs[0], nil
		}
		return "(" + strings.Join(lhs, ", ") + ") " + op + " (" + strings.Join(rhs, ", ") + ")", nil
	case IsNull:
		return col(c.Cols[0]) + " IS NULL", nil
	case NotNull:
		return col(c.Cols[0]) + " IS NOT NULL", nil
	case And, Or:
		parts := make([]string, len(c.Sub))
		for j, s := range c.Sub {
			p, err := Where(d, t, s)
			if err != nil {
				return "", err
			}
			parts[j] = "(" + p + ")"
		}
		sep := " AND "
		if c.Kind == Or {
			sep = " OR "
		}
		return strings.Join(parts, sep), nil
	}
	return "", fmt.Errorf("unknown condition kind %d", c.Kind)
}

// OrderBy renders q's ORDER BY list.
func OrderBy(d Dialect, q *Query) string {
	parts := make([]string, len(q.Order))
	for j, i := range q.Order {
		parts[j] = d.Quote(q.Table.Columns[i].Name)
		if j == 0 && q.NullsFirst {
			parts[j] = d.NullsFirst(parts[j])
		}
	}
	return strings.Join(parts, ", ")
}

// PosText renders a value read from column c as the text kept in state.
// Dialect.Value reads it back.
func PosText(v any, c *Column) (string, error) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case string:
		return x, nil
	case contract.DecimalText:
		return string(x), nil
	case []byte:
		return hex.EncodeToString(x), nil
	case time.Time:
		switch c.Type {
		case contract.NaiveDate:
			return x.Format("2006-01-02"), nil
		case contract.NaiveDateTime:
			return x.Format("2006-01-02T15:04:05.999999"), nil
		}
		return x.UTC().Format("2006-01-02T15:04:05.999999Z07:00"), nil
	}
	return "", fmt.Errorf("a %T value of column %q cannot be kept as a position", v, c.Name)
}

// Sync carries a database source's run: it reads tables in their modes,
// emits their rows and checkpoints their progress.
type Sync struct {
	Ops    contract.Ops
	Source Source
	State  *State
	Every  int64 // rows between checkpoints
	// RefreshDone says a full refresh finished a table; a connector uses
	// it to mark the replicated tables its snapshot covered.
	RefreshDone func(*Planned)
}

// Checkpoint commits what was emitted with the current state.
func (s *Sync) Checkpoint() error { return s.Ops.Checkpoint(s.State) }

// rowMap is the map a table's rows are emitted in. The engine reads a row
// during the Upsert call and keeps none of the map, so one map per table
// serves every row: no allocation per row.
type rowMap struct {
	names []string
	m     map[string]any
}

func newRowMap(p *Planned) *rowMap {
	r := &rowMap{m: make(map[string]any, len(p.Cols))}
	for _, i := range p.Cols {
		r.names = append(r.names, p.Columns[i].Name)
	}
	return r
}

func (r *rowMap) fill(row []any) map[string]any {
	for j, n := range r.names {
		r.m[n] = row[j]
	}
	return r.m
}

// rowIndex maps column indexes to their place in a read row.
func rowIndex(p *Planned) map[int]int {
	m := make(map[int]int, len(p.Cols))
	for j, i := range p.Cols {
		m[i] = j
	}
	return m
}

func (s *Sync) texts(p *Planned, idx map[int]int, row []any, cols []int) ([]string, error) {
	out := make([]string, len(cols))
	for j, i := range cols {
		t, err := PosText(row[idx[i]], &p.Columns[i])
		if err != nil {
			return nil, err
		}
		out[j] = t
	}
	return out, nil
}

// Refresh reads a table in full: a Truncate, then every row, in key order so
// that a crash resumes after the last committed key instead of starting
// over. A table without a key starts over after a crash.
func (s *Sync) Refresh(ctx context.Context, p *Planned) error {
	if s.State.Refresh == nil {
		s.State.Refresh = map[string]*RefreshState{}
	}
	name := p.Qualified()
	rs := s.State.Refresh[name]
	if rs != nil && rs.Done {
		return nil
	}
	keys := p.KeyIdx()
	q := &Query{Table: p, Order: keys}
	if rs != nil && rs.After != nil && len(keys) == len(rs.After) && len(keys) > 0 {
		q.Where = &Cond{Kind: RowAfter, Cols: keys, Vals: rs.After}
		slog.Info("resuming the full refresh of a table after its last committed key", "table", name)
	} else {
		if err := s.Ops.Truncate(p.Dest); err != nil {
			return err
		}
		rs = &RefreshState{}
		s.State.Refresh[name] = rs
		slog.Debug("full refresh", "table", name)
	}
	idx := rowIndex(p)
	rm := newRowMap(p)
	var n int64
	err := s.Source.Read(ctx, q, func(row []any) error {
		if err := s.Ops.Upsert(p.Dest, rm.fill(row)); err != nil {
			return err
		}
		n++
		if n%s.Every != 0 {
			return nil
		}
		if len(keys) > 0 {
			after, err := s.texts(p, idx, row, keys)
			if err != nil {
				return err
			}
			rs.After = after
		}
		return s.Checkpoint()
	})
	if err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	s.State.Refresh[name] = &RefreshState{Done: true}
	if s.RefreshDone != nil {
		s.RefreshDone(p)
	}
	return s.Checkpoint()
}

// EndRefresh closes a pass: the next sync refreshes every table again.
func (s *Sync) EndRefresh() { s.State.Refresh = nil }

// Incremental reads the rows at or past the table's cursor position, in
// (cursor, key) order, and checkpoints the position every Every rows.
func (s *Sync) Incremental(ctx context.Context, p *Planned) error {
	name := p.Qualified()
	cur := p.CursorIdx
	keys := p.KeyIdx()
	ts := s.State.Tables[name]
	if ts != nil && ts.CursorColumn != p.Mode.Cursor {
		slog.Warn("the table's cursor column changed: reading it from the start", "table", name, "was", ts.CursorColumn, "now", p.Mode.Cursor)
		ts = nil
	}
	q := &Query{Table: p, Order: append([]int{cur}, keys...), NullsFirst: true}
	switch {
	case ts == nil:
	case ts.Complete || len(keys) == 0 || len(ts.Key) != len(keys):
		// The end of the table last time, or no key to break ties: every
		// row from the cursor value on. Rows at that value are read again
		// (their upserts change nothing), and rows given that value since
		// are not missed.
		if ts.Cursor != nil {
			q.Where = &Cond{Kind: AtLeast, Cols: []int{cur}, Vals: []string{*ts.Cursor}}
		}
	case ts.Cursor == nil:
		// Stopped among the rows whose cursor is NULL, which come first.
		q.Where = &Cond{Kind: Or, Sub: []*Cond{
			{Kind: And, Sub: []*Cond{{Kind: IsNull, Cols: []int{cur}}, {Kind: RowAfter, Cols: keys, Vals: ts.Key}}},
			{Kind: NotNull, Cols: []int{cur}},
		}}
	default:
		// Stopped at a checkpoint: strictly after (cursor, key). Written as
		// cursor >= v AND (...) so that an index on the cursor serves it.
		v := *ts.Cursor
		q.Where = &Cond{Kind: And, Sub: []*Cond{
			{Kind: AtLeast, Cols: []int{cur}, Vals: []string{v}},
			{Kind: Or, Sub: []*Cond{
				{Kind: Greater, Cols: []int{cur}, Vals: []string{v}},
				{Kind: RowAfter, Cols: keys, Vals: ts.Key},
			}},
		}}
	}
	idx := rowIndex(p)
	rm := newRowMap(p)
	var n int64
	var last []any // the cursor and key of the last row emitted
	position := func(complete bool) error {
		st := &TableState{CursorColumn: p.Mode.Cursor, Complete: complete}
		if v := last[0]; v != nil {
			t, err := PosText(v, &p.Columns[cur])
			if err != nil {
				return err
			}
			st.Cursor = &t
		}
		for j, i := range keys {
			t, err := PosText(last[1+j], &p.Columns[i])
			if err != nil {
				return err
			}
			st.Key = append(st.Key, t)
		}
		s.State.Tables[name] = st
		return nil
	}
	err := s.Source.Read(ctx, q, func(row []any) error {
		if err := s.Ops.Upsert(p.Dest, rm.fill(row)); err != nil {
			return err
		}
		last = last[:0]
		last = append(last, row[idx[cur]])
		for _, i := range keys {
			last = append(last, row[idx[i]])
		}
		n++
		if n%s.Every != 0 {
			return nil
		}
		if err := position(false); err != nil {
			return err
		}
		return s.Checkpoint()
	})
	if err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	switch {
	case n > 0:
		if err := position(true); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
	case ts != nil:
		ts.Complete = true
		s.State.Tables[name] = ts
	}
	slog.Debug("incremental read", "table", name, "rows", n)
	return s.Checkpoint()
}

// Redact hides secrets in errors from drivers, which may quote a
// connection string: the message is rewritten, the cause kept for
// errors.Is and errors.As.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "***")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
