package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
)

// ReadMethod is how table rows are fetched.
type ReadMethod uint8

const (
	// ReadCopy streams COPY (SELECT ...) TO STDOUT (FORMAT binary): one
	// statement, rows as fast as the server writes them, memory bounded
	// by the connection's buffer. The default: measured faster (BENCHMARKS.md).
	ReadCopy ReadMethod = iota
	// ReadQuery streams an extended-protocol query whose rows pgconn reads
	// off the socket one at a time (a portal without a row limit), in
	// binary format.
	ReadQuery
)

// reader reads tables over one connection.
type reader struct {
	conn   *pgconn.PgConn
	method ReadMethod
	// warned keeps one warning per column about values synced as NULL.
	warned map[string]bool
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func qualified(t *sqlsource.Table) string { return quoteIdent(t.Schema) + "." + quoteIdent(t.Name) }

// dialect renders values as bind parameters (query) or literals (COPY,
// which takes no parameters), each cast to the column's declared type.
type dialect struct {
	literal bool
	params  [][]byte
}

func (d *dialect) Quote(s string) string { return quoteIdent(s) }

func (d *dialect) NullsFirst(expr string) string { return expr + " NULLS FIRST" }

func (d *dialect) Value(c *sqlsource.Column, v string) (string, error) {
	if c.Kind == kBytea {
		v = `\x` + v
	}
	if d.literal {
		return quoteLiteral(v) + "::" + c.SQLType, nil
	}
	d.params = append(d.params, []byte(v))
	return "$" + strconv.Itoa(len(d.params)) + "::" + c.SQLType, nil
}

// selectList reads native kinds as they are, in binary, and every other
// type as its text output.
func selectList(p *sqlsource.Planned) string {
	parts := make([]string, len(p.Cols))
	for j, i := range p.Cols {
		c := &p.Columns[i]
		parts[j] = quoteIdent(c.Name)
		if !native(c.Kind) {
			parts[j] += "::text"
		}
	}
	return strings.Join(parts, ", ")
}

// buildSQL renders q's SELECT.
func buildSQL(q *sqlsource.Query, d *dialect) (string, error) {
	var b strings.Builder
	b.WriteString("SELECT " + selectList(q.Table) + " FROM " + qualified(q.Table.Table))
	if q.Where != nil {
		w, err := sqlsource.Where(d, q.Table.Table, q.Where)
		if err != nil {
			return "", err
		}
		b.WriteString(" WHERE " + w)
	}
	if len(q.Order) > 0 {
		b.WriteString(" ORDER BY " + sqlsource.OrderBy(d, q))
	}
	return b.String(), nil
}

// Read implements sqlsource.Source.
func (r *reader) Read(ctx context.Context, q *sqlsource.Query, emit func([]any) error) error {
	// Stopping early (emit failed) cancels the statement rather than reading
	// the rest of a large result to its end.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dec := &rowDecoder{r: r, p: q.Table, row: make([]any, len(q.Table.Cols))}
	if r.method == ReadCopy {
		d := &dialect{literal: true}
		sql, err := buildSQL(q, d)
		if err != nil {
			return err
		}
		w := &copyParser{dec: dec, emit: emit}
		_, err = r.conn.CopyTo(ctx, w, "COPY ("+sql+") TO STDOUT (FORMAT binary)")
		if w.err != nil {
			return w.err
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if !w.trailer {
			return errors.New("read: the COPY stream ended without its trailer")
		}
		return nil
	}
	d := &dialect{}
	sql, err := buildSQL(q, d)
	if err != nil {
		return err
	}
	formats := make([]int16, len(q.Table.Cols))
	for j := range formats {
		formats[j] = 1 // binary: text-cast columns' binary form is their text
	}
	rr := r.conn.ExecParams(ctx, sql, d.params, nil, nil, formats)
	for rr.NextRow() {
		if err := dec.decode(rr.Values()); err != nil {
			cancel()
			rr.Close()
			return err
		}
		if err := emit(dec.row); err != nil {
			cancel()
			rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// rowDecoder turns raw column values into a row.
type rowDecoder struct {
	r   *reader
	p   *sqlsource.Planned
	row []any
}

func (d *rowDecoder) decode(vals [][]byte) error {
	if len(vals) != len(d.row) {
		return fmt.Errorf("read: %d columns in a row, want %d", len(vals), len(d.row))
	}
	for j, b := range vals {
		if b == nil {
			d.row[j] = nil
			continue
		}
		c := &d.p.Columns[d.p.Cols[j]]
		v, err := decodeBinary(c.Kind, b)
		if err != nil {
			if errors.Is(err, errInfinite) {
				d.r.warnNull(d.p.Table, c)
				d.row[j] = nil
				continue
			}
			return fmt.Errorf("column %q (%s): %w", c.Name, c.SQLType, err)
		}
		d.row[j] = v
	}
	return nil
}

func (r *reader) warnNull(t *sqlsource.Table, c *sqlsource.Column) {
	key := t.Qualified() + "." + c.Name
	if r.warned[key] {
		return
	}
	r.warned[key] = true
	slog.Warn("infinite or NaN values have no sluice type: they are synced as NULL", "table", t.Qualified(), "column", c.Name, "type", c.SQLType)
}

// copyParser reads COPY's binary format as pgconn hands it over, and emits
// each row. A row may span writes; what is left of one waits in buf.
type copyParser struct {
	dec     *rowDecoder
	emit    func([]any) error
	buf     []byte
	header  bool
	trailer bool
	vals    [][]byte
	err     error
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (c *copyParser) Write(p []byte) (int, error) {
	data := p
	if len(c.buf) > 0 {
		c.buf = append(c.buf, p...)
		data = c.buf
	}
	used, err := c.parse(data)
	if err != nil {
		c.err = err
		return 0, err
	}
	rest := data[used:]
	if len(c.buf) > 0 {
		c.buf = append(c.buf[:0], rest...)
	} else if len(rest) > 0 {
		c.buf = append(c.buf[:0], rest...)
	}
	return len(p), nil
}

// parse consumes whole rows from data and returns how many bytes it used.
func (c *copyParser) parse(data []byte) (int, error) {
	off := 0
	if !c.header {
		if len(data) < len(copySignature)+8 {
			return 0, nil
		}
		if string(data[:len(copySignature)]) != string(copySignature) {
			return 0, errors.New("read: not a binary COPY stream")
		}
		ext := int(binary.BigEndian.Uint32(data[len(copySignature)+4:]))
		if len(data) < len(copySignature)+8+ext {
			return 0, nil
		}
		off = len(copySignature) + 8 + ext
		c.header = true
	}
	for {
		if c.trailer {
			return len(data), nil
		}
		if len(data)-off < 2 {
			return off, nil
		}
		n := int(int16(binary.BigEndian.Uint16(data[off:])))
		if n == -1 {
			c.trailer = true
			return len(data), nil
		}
		if n != len(c.dec.row) {
			return 0, fmt.Errorf("read: %d columns in a COPY row, want %d", n, len(c.dec.row))
		}
		pos := off + 2
		c.vals = c.vals[:0]
		complete := true
		for k := 0; k < n; k++ {
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
			c.vals = append(c.vals, data[pos:pos+l:pos+l])
			pos += l
		}
		if !complete {
			return off, nil
		}
		if err := c.dec.decode(c.vals); err != nil {
			return 0, err
		}
		if err := c.emit(c.dec.row); err != nil {
			return 0, err
		}
		off = pos
	}
}
