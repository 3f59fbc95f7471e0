package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// tx is one checkpoint's transaction. Batches are written through as they
// arrive, so memory stays bounded by the batch; only the commit makes them
// visible.
type tx struct {
	d         *DB
	tx        pgx.Tx
	synced    time.Time
	syncedSQL string
	// stages holds this transaction's staging tables by shape (see
	// stage). They are dropped at the commit or the rollback.
	stages     map[string]string
	stageCount int
	byteaFunc  bool // pg_temp.sluice_bytea_text exists in this transaction
	failed     bool
	// copy is the COPY in progress into one table, fed batch after batch
	// (see copyFresh); any other statement ends it first (exec).
	copy *openCopy
	// keyless holds the tables this transaction created, whose PRIMARY
	// KEY is added when first needed (ensureKey), at the latest before
	// the commit: built once over the loaded rows, it costs a fraction of
	// keeping it up to date row by row.
	keyless map[string][]string
}

// exec runs a statement, after ending the COPY in progress: the
// connection does one thing at a time, and the statement must see the
// rows copied so far.
func (t *tx) exec(ctx context.Context, sql string, args ...any) error {
	if err := t.settle(); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, sql, args...)
	return err
}

// ensureKey adds the PRIMARY KEY of a table created in this transaction.
func (t *tx) ensureKey(ctx context.Context, table string) error {
	key, ok := t.keyless[table]
	if !ok {
		return nil
	}
	delete(t.keyless, table)
	q := t.d.qualified(table)
	if err := t.exec(ctx, "ALTER TABLE "+q+" ADD PRIMARY KEY ("+quoteAll(key)+")"); err != nil {
		return fmt.Errorf("add the primary key (%s) of table %s: %w", strings.Join(key, ", "), q, err)
	}
	return nil
}

// Apply implements destination.Tx.
func (t *tx) Apply(ctx context.Context, changes []destination.SchemaChange) (err error) {
	defer t.fail(&err)
	for _, ch := range changes {
		if err := t.apply(ctx, ch); err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
	}
	return nil
}

// fail marks the transaction as failed (only a rollback is left) and adds
// advice to the errors a user can act on.
func (t *tx) fail(errp *error) {
	if *errp == nil {
		return
	}
	t.failed = true
	*errp = t.d.explain(*errp)
}

func (t *tx) apply(ctx context.Context, ch destination.SchemaChange) error {
	d := t.d
	name := ch.Table.Name
	q := d.qualified(name)
	switch ch.Kind {
	case destination.CreateTable:
		if err := checkName("table", name); err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString("CREATE TABLE " + q + " (")
		for _, col := range ch.Table.Columns {
			if err := checkName("column", col.Name); err != nil {
				return err
			}
			b.WriteString(quote(col.Name) + " " + SQLType(col))
			if slices.Contains(ch.Table.PrimaryKey, col.Name) {
				// The PRIMARY KEY comes after the rows (ensureKey); a key
				// column that is NOT NULL already spares it a scan of
				// the table to check that.
				b.WriteString(" NOT NULL")
			}
			b.WriteString(", ")
		}
		b.WriteString(quote(destination.ColumnSynced) + " timestamptz NOT NULL, " + quote(destination.ColumnDeleted) + " boolean NOT NULL DEFAULT false)")
		if err := t.exec(ctx, b.String()); err != nil {
			return err
		}
		t.keyless[name] = slices.Clone(ch.Table.PrimaryKey)
		if err := t.exec(ctx, `INSERT INTO `+d.qualified(tablesTable)+` VALUES ($1, $2) ON CONFLICT (table_name) DO UPDATE SET primary_key = EXCLUDED.primary_key`,
			name, strings.Join(ch.Table.PrimaryKey, ",")); err != nil {
			return err
		}
		tbl := ch.Table
		tbl.Columns = slices.Clone(tbl.Columns)
		tbl.PrimaryKey = slices.Clone(tbl.PrimaryKey)
		d.tables[name] = &tbl
		return nil
	case destination.AddColumn:
		if err := checkName("column", ch.Column.Name); err != nil {
			return err
		}
		if err := t.exec(ctx, "ALTER TABLE "+q+" ADD COLUMN "+quote(ch.Column.Name)+" "+SQLType(ch.Column)); err != nil {
			return err
		}
	case destination.WidenColumn:
		tbl, err := d.target(name)
		if err != nil {
			return err
		}
		old, ok := tbl.Column(ch.Column.Name)
		if !ok {
			return fmt.Errorf("column %q is not in table %s", ch.Column.Name, q)
		}
		if storedAlike(old, ch.Column) {
			break // STRING and XML: both text
		}
		if old.Type == contract.Binary && SQLType(ch.Column) == "text" {
			if err := t.ensureByteaFunc(ctx); err != nil {
				return err
			}
		}
		c := quote(ch.Column.Name)
		if err := t.exec(ctx, "ALTER TABLE "+q+" ALTER COLUMN "+c+" TYPE "+SQLType(ch.Column)+" USING "+convertSQL(c, old, ch.Column)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown schema change %d", ch.Kind)
	}
	if tbl := d.tables[name]; tbl != nil {
		tbl.Columns = changed(tbl.Columns, ch)
	}
	return nil
}

func (t *tx) ensureByteaFunc(ctx context.Context) error {
	if t.byteaFunc {
		return nil
	}
	if err := t.exec(ctx, byteaTextFunc); err != nil {
		return fmt.Errorf("create the conversion function pg_temp.sluice_bytea_text: %w", err)
	}
	t.byteaFunc = true
	return nil
}

// changed returns columns with one AddColumn or WidenColumn applied.
func changed(columns []destination.Column, ch destination.SchemaChange) []destination.Column {
	out := slices.Clone(columns)
	for i := range out {
		if out[i].Name == ch.Column.Name {
			out[i] = ch.Column
			return out
		}
	}
	return append(out, ch.Column)
}

// Which rows of a batch a statement takes.
type rowKind uint8

const (
	freshRows   rowKind = 1 << iota // full rows whose key cannot be in the table
	staleRows                       // full rows whose key may be in the table
	partialRows                     // rows that change some columns of an existing row
)

func kindOf(b *destination.Batch, r int) rowKind {
	switch {
	case b.Set[r] != nil:
		return partialRows
	case r < len(b.Fresh) && b.Fresh[r]:
		return freshRows
	}
	return staleRows
}

// Write implements destination.Tx: a truncate first, then the rows that
// may meet rows in the table through a staging table, then fresh rows by
// COPY into the table, left open for the next batch.
func (t *tx) Write(ctx context.Context, b *destination.Batch) (err error) {
	defer t.fail(&err)
	if t.failed {
		return errors.New("write after a failed step")
	}
	d := t.d
	tbl, err := d.target(b.Table)
	if err != nil {
		return err
	}
	q := d.qualified(b.Table)
	var n [partialRows + 1]int
	for r := 0; r < b.Rows; r++ {
		n[kindOf(b, r)]++
	}
	// Columns of the batch that the table has: the others hold only NULLs,
	// as the engine has not typed them yet.
	var cols []int
	same := true
	for c, col := range b.Columns {
		if tc, ok := tbl.Column(col.Name); ok {
			cols = append(cols, c)
			same = same && storedAlike(tc, col)
		}
	}
	staged := staleRows | partialRows
	if !same {
		staged |= freshRows // converted on the way through staging
	}
	full := n[staleRows]
	if staged&freshRows != 0 {
		full += n[freshRows]
	}
	if b.Truncate || full+n[partialRows] > 0 {
		if err := t.ensureKey(ctx, b.Table); err != nil {
			return err
		}
	}
	if b.Truncate {
		if err := t.exec(ctx, `UPDATE `+q+` SET `+quote(destination.ColumnDeleted)+` = true, `+
			quote(destination.ColumnSynced)+` = `+t.syncedSQL+` WHERE NOT `+quote(destination.ColumnDeleted)); err != nil {
			return fmt.Errorf("truncate table %s: %w", q, err)
		}
	}
	if full+n[partialRows] > 0 {
		stage, err := t.stage(ctx, b, cols, staged)
		if err != nil {
			return fmt.Errorf("stage rows of table %s: %w", q, err)
		}
		if full > 0 {
			if err := t.exec(ctx, d.upsertSQL(tbl, b, cols, stage, t.syncedSQL)); err != nil {
				return fmt.Errorf("upsert into table %s: %w", q, err)
			}
		}
		if n[partialRows] > 0 {
			if err := t.exec(ctx, d.updateSQL(tbl, b, cols, stage, t.syncedSQL)); err != nil {
				return fmt.Errorf("update table %s: %w", q, err)
			}
		}
	}
	if n[freshRows] > 0 && staged&freshRows == 0 {
		if err := t.copyFresh(ctx, tbl, b); err != nil {
			return fmt.Errorf("insert into table %s: %w", q, err)
		}
	}
	return nil
}

// openCopy is a COPY into a table that stays open across batches, as long
// as only fresh rows of that table come: one COPY per batch measured at
// three quarters of the rate of one for the whole load. Its rows reach
// the table when it ends (settle).
type openCopy struct {
	table  string
	stream *copyStream
}

// copyFresh copies the batch's fresh rows straight into the table, whose
// columns have the batch's types: their keys cannot be there. Columns the
// batch lacks get NULL. It returns when every row is encoded, so that the
// engine may reuse the batch.
func (t *tx) copyFresh(ctx context.Context, tbl *destination.Table, b *destination.Batch) error {
	c := t.copy
	if c != nil && c.table != tbl.Name {
		if err := t.settle(); err != nil {
			return err
		}
		c = nil
	}
	if c == nil {
		cols := make([]copyColumn, 0, len(tbl.Columns)+2)
		for _, col := range tbl.Columns {
			cols = append(cols, copyColumnOf(col))
		}
		cols = append(cols, copyColumn{name: destination.ColumnSynced, kind: kTimestamptz, oid: pgtype.TimestamptzOID},
			copyColumn{name: destination.ColumnDeleted, kind: kBool, oid: pgtype.BoolOID})
		// A table created in this transaction takes its rows frozen
		// (COPY FREEZE): no other transaction can have seen it, and
		// frozen, all-visible rows spare the key's build and the first
		// readers the visibility checks and hint-bit writes, and VACUUM
		// a later pass over every page to freeze them.
		_, created := t.keyless[tbl.Name]
		c = &openCopy{table: tbl.Name, stream: startCopy(ctx, t.tx.Conn().PgConn(), t.d.qualified(tbl.Name), cols, created)}
		t.copy = c
	}
	// from[i] is the batch column of the table's column i, or -1.
	idx := columnIndex(b.Columns)
	from := make([]int, len(tbl.Columns))
	for i, col := range tbl.Columns {
		from[i] = -1
		if j, ok := idx[col.Name]; ok {
			from[i] = j
		}
	}
	err := c.stream.writeRows(ctx, b, freshRows, from, func(r int, vals []any) {
		vals[0], vals[1] = t.synced, b.Deleted[r] == destination.Deleted
	})
	if err != nil {
		t.abortCopy()
	}
	return err
}

// settle ends the COPY in progress, if any, and returns its error.
func (t *tx) settle() error {
	c := t.copy
	if c == nil {
		return nil
	}
	t.copy = nil
	if err := c.stream.finish(); err != nil {
		return fmt.Errorf("copy into table %s: %w", t.d.qualified(c.table), err)
	}
	return nil
}

// abortCopy cancels the COPY in progress, if any: its rows are being
// rolled back.
func (t *tx) abortCopy() {
	if c := t.copy; c != nil {
		t.copy = nil
		c.stream.abort()
	}
}

// stage fills a temporary table with the batch's rows of the given kinds:
// the columns cols of the batch in their own types, then _sluice_row_set
// (NULL for a full row, else one '0' or '1' per staged column) and
// _sluice_row_del (-1 keeps the deleted flag as it is). A staging table is
// made once per shape in a transaction and emptied before each use.
func (t *tx) stage(ctx context.Context, b *destination.Batch, cols []int, kinds rowKind) (string, error) {
	var sig strings.Builder
	sig.WriteString(b.Table)
	for _, c := range cols {
		sig.WriteString("\x00" + b.Columns[c].Name + "\x00" + SQLType(b.Columns[c]))
	}
	name, ok := t.stages[sig.String()]
	if ok {
		if err := t.exec(ctx, `TRUNCATE pg_temp.`+quote(name)); err != nil {
			return "", err
		}
	} else {
		t.stageCount++
		name = "_sluice_stage_" + strconv.Itoa(t.stageCount)
		var ddl strings.Builder
		ddl.WriteString(`CREATE TEMP TABLE ` + quote(name) + ` (`)
		for _, c := range cols {
			ddl.WriteString(quote(b.Columns[c].Name) + " " + SQLType(b.Columns[c]) + ", ")
		}
		ddl.WriteString(`"_sluice_row_set" text, "_sluice_row_del" smallint NOT NULL) ON COMMIT DROP`)
		if err := t.exec(ctx, ddl.String()); err != nil {
			return "", err
		}
		t.stages[sig.String()] = name
	}
	columns := make([]copyColumn, 0, len(cols)+2)
	for _, c := range cols {
		columns = append(columns, copyColumnOf(b.Columns[c]))
	}
	columns = append(columns, copyColumn{name: "_sluice_row_set", kind: kText, oid: pgtype.TextOID},
		copyColumn{name: "_sluice_row_del", kind: kInt2, oid: pgtype.Int2OID})
	stream := startCopy(ctx, t.tx.Conn().PgConn(), "pg_temp."+quote(name), columns, false)
	set := make([]byte, len(cols))
	err := stream.writeRows(ctx, b, kinds, cols, func(r int, vals []any) {
		if b.Set[r] == nil {
			vals[0] = nil
		} else {
			for j, c := range cols {
				set[j] = '0'
				if b.IsSet(r, c) {
					set[j] = '1'
				}
			}
			vals[0] = string(set)
		}
		vals[1] = int64(b.Deleted[r])
	})
	if err != nil {
		stream.abort()
		return "", err
	}
	return name, stream.finish()
}

// upsertSQL writes the staged full rows: inserted, or replacing every
// column of the row with their key (a column the batch lacks becomes
// NULL), system columns included.
func (d *DB) upsertSQL(tbl *destination.Table, b *destination.Batch, cols []int, stage, synced string) string {
	byName := map[string]int{}
	for _, c := range cols {
		byName[b.Columns[c].Name] = c
	}
	names := make([]string, 0, len(tbl.Columns)+2)
	vals := make([]string, 0, len(tbl.Columns)+2)
	var set []string
	for _, col := range tbl.Columns {
		n := quote(col.Name)
		names = append(names, n)
		if c, ok := byName[col.Name]; ok {
			vals = append(vals, convertSQL("s."+n, b.Columns[c], col))
		} else {
			vals = append(vals, "NULL")
		}
		if !slices.Contains(tbl.PrimaryKey, col.Name) {
			set = append(set, n+" = EXCLUDED."+n)
		}
	}
	for _, n := range []string{quote(destination.ColumnSynced), quote(destination.ColumnDeleted)} {
		names = append(names, n)
		set = append(set, n+" = EXCLUDED."+n)
	}
	vals = append(vals, synced, `s."_sluice_row_del" = 1`)
	return `INSERT INTO ` + d.qualified(tbl.Name) + ` (` + strings.Join(names, ", ") + `) SELECT ` + strings.Join(vals, ", ") +
		` FROM pg_temp.` + quote(stage) + ` AS s WHERE s."_sluice_row_set" IS NULL` +
		` ON CONFLICT (` + quoteAll(tbl.PrimaryKey) + `) DO UPDATE SET ` + strings.Join(set, ", ")
}

// updateSQL applies the staged partial rows in place: each changes the
// columns its _sluice_row_set marks, and the deleted flag unless
// _sluice_row_del is -1. A key that is not in the table matches nothing.
func (d *DB) updateSQL(tbl *destination.Table, b *destination.Batch, cols []int, stage, synced string) string {
	var set, on []string
	for j, c := range cols {
		col := b.Columns[c]
		target, _ := tbl.Column(col.Name)
		n := quote(col.Name)
		if slices.Contains(tbl.PrimaryKey, col.Name) {
			on = append(on, "t."+n+" = "+convertSQL("s."+n, col, target))
			continue
		}
		set = append(set, fmt.Sprintf(`%s = CASE WHEN substr(s."_sluice_row_set", %d, 1) = '1' THEN %s ELSE t.%s END`, n, j+1, convertSQL("s."+n, col, target), n))
	}
	set = append(set, quote(destination.ColumnSynced)+" = "+synced,
		quote(destination.ColumnDeleted)+` = CASE s."_sluice_row_del" WHEN 1 THEN true WHEN 0 THEN false ELSE t.`+quote(destination.ColumnDeleted)+` END`)
	return `UPDATE ` + d.qualified(tbl.Name) + ` AS t SET ` + strings.Join(set, ", ") + ` FROM pg_temp.` + quote(stage) +
		` AS s WHERE s."_sluice_row_set" IS NOT NULL AND ` + strings.Join(on, " AND ")
}

// Commit implements destination.Tx.
func (t *tx) Commit(ctx context.Context, state destination.StateRecord) (err error) {
	defer t.fail(&err)
	if t.failed {
		return errors.New("commit after a failed step")
	}
	if err := t.settle(); err != nil {
		return err
	}
	keyless := make([]string, 0, len(t.keyless))
	for name := range t.keyless {
		keyless = append(keyless, name)
	}
	slices.Sort(keyless)
	for _, name := range keyless {
		if err := t.ensureKey(ctx, name); err != nil {
			return err
		}
	}
	if err := t.exec(ctx, `INSERT INTO `+t.d.qualified(destination.StateTable)+` VALUES (1, $1::json, $2, $3)
		ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, prev_hash = EXCLUDED.prev_hash, committed_at = EXCLUDED.committed_at`,
		string(state.State), state.PrevHash, t.synced); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Rollback implements destination.Tx.
func (t *tx) Rollback() error {
	// The table cache may hold changes that are being rolled back.
	t.d.tables = nil
	t.abortCopy()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := t.tx.Rollback(ctx)
	if errors.Is(err, pgx.ErrTxClosed) || t.d.conn == nil || t.d.conn.IsClosed() {
		// Committed or rolled back already, or the connection is gone,
		// and with it the transaction: the server rolls it back.
		return nil
	}
	return err
}
