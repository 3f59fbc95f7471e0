package postgres

// These tests need a PostgreSQL server: SLUICE_POSTGRES_URL names a
// database where the user may create schemas and roles (the engine's
// conformance suite, engine/*_test.go, runs every sync rule against it).

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

var synced = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SLUICE_POSTGRES_URL")
	if u == "" {
		t.Skip("set SLUICE_POSTGRES_URL=postgres://user@host:5432/db?sslmode=disable to run the PostgreSQL tests")
	}
	return u
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// admin is a plain connection for setting up and checking, with the
// schema dropped at the end of the test.
func admin(t *testing.T, schema string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if schema != "" {
			if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quote(schema)+` CASCADE`); err != nil {
				t.Errorf("drop schema: %v", err)
			}
		}
		c.Close(ctx)
	})
	return c
}

func openTest(t *testing.T, schema string) *DB {
	t.Helper()
	d, err := Open(context.Background(), testURL(t), schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func queryStrings(t *testing.T, c *pgx.Conn, q string, args ...any) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

var items = destination.Table{
	Name:       "items",
	PrimaryKey: []string{"id"},
	Columns:    []destination.Column{{Name: "id", Type: contract.Long}, {Name: "n", Type: contract.Double}},
}

func batch(fresh bool, rows ...[]any) *destination.Batch {
	b := &destination.Batch{Table: "items", Columns: items.Columns, Key: []int{0}, Rows: len(rows), Values: make([][]any, 2)}
	for _, r := range rows {
		b.Values[0] = append(b.Values[0], r[0])
		b.Values[1] = append(b.Values[1], r[1])
		b.Set = append(b.Set, nil)
		b.Deleted = append(b.Deleted, destination.Live)
		b.Fresh = append(b.Fresh, fresh)
	}
	return b
}

// commit runs one transaction: the changes, the batches, the state.
func commit(ctx context.Context, d *DB, state string, changes []destination.SchemaChange, batches ...*destination.Batch) error {
	tx, err := d.Begin(ctx, synced)
	if err != nil {
		return err
	}
	err = tx.Apply(ctx, changes)
	for _, b := range batches {
		if err == nil {
			err = tx.Write(ctx, b)
		}
	}
	if err == nil {
		err = tx.Commit(ctx, destination.StateRecord{State: []byte(state), PrevHash: "h-" + state})
	}
	if err != nil {
		tx.Rollback()
	}
	return err
}

func TestOpenViaURL(t *testing.T) {
	u := testURL(t)
	ctx := context.Background()
	for _, scheme := range []string{"postgres", "postgresql"} {
		schema := randomName("open_")
		c := admin(t, schema)
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		pu.Scheme = scheme
		dest, err := destination.Open(ctx, pu.String(), destination.Options{Schema: schema})
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		tables, err := dest.Describe(ctx)
		if err != nil || len(tables) != 0 {
			t.Errorf("describe: %v, %v", tables, err)
		}
		if rec, err := dest.ReadState(ctx); rec != nil || err != nil {
			t.Errorf("state of a new schema: %v, %v", rec, err)
		}
		if err := dest.Log(ctx, []destination.LogRecord{{Time: synced, Level: "INFO", Message: "hello\x00world"}}); err != nil {
			t.Errorf("log: %v", err)
		}
		if err := dest.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		got := queryStrings(t, c, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schema)
		if strings.Join(got, ",") != "_sluice_log,_sluice_state,_sluice_tables" {
			t.Errorf("%s: tables %v", scheme, got)
		}
		if got := queryStrings(t, c, `SELECT level || ' ' || message FROM `+quote(schema)+`._sluice_log`); len(got) != 1 || got[0] != `INFO hello\0world` {
			t.Errorf("log rows %q", got)
		}
	}
}

// A state reads back byte for byte: the runner compares it with its file.
func TestStateKeepsItsBytes(t *testing.T) {
	schema := randomName("state_")
	admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	for _, state := range []string{`{"b": 1,  "a":[2, 3]}`, `{"cursor":"x"}`} {
		if err := commit(ctx, d, state, nil); err != nil {
			t.Fatal(err)
		}
		rec, err := d.ReadState(ctx)
		if err != nil || rec == nil || string(rec.State) != state || rec.PrevHash != "h-"+state {
			t.Errorf("state %+v, %v; want %s", rec, err, state)
		}
	}
}

func TestTxIsAtomic(t *testing.T) {
	schema := randomName("atomic_")
	c := admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	create := []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}
	// Rolled back: not even the table stays.
	tx, err := d.Begin(ctx, synced)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Apply(ctx, create); err != nil {
		t.Fatal(err)
	}
	if err := tx.Write(ctx, batch(true, []any{int64(1), 1.5})); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := queryStrings(t, c, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'items'`, schema); len(got) != 0 {
		t.Errorf("rolled back table exists")
	}
	// Committed: fresh rows by COPY, then the same keys again (stale),
	// and a partial row.
	if err := commit(ctx, d, `{"n":1}`, create, batch(true, []any{int64(1), 1.5}, []any{int64(2), 2.5})); err != nil {
		t.Fatal(err)
	}
	up := batch(false, []any{int64(2), 20.0}, []any{int64(3), 30.0}, []any{int64(1), 99.0})
	up.Set[2] = []uint64{0} // row 3 is partial and sets nothing: only synced and the flag
	up.Deleted[2] = destination.Deleted
	if err := commit(ctx, d, `{"n":2}`, nil, up); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, c, `SELECT concat_ws('|', id, n, _sluice_deleted) FROM `+quote(schema)+`.items ORDER BY id`)
	if strings.Join(got, " ") != "1|1.5|t 2|20|f 3|30|f" {
		t.Errorf("rows %v", got)
	}
}

// A batch column of a narrower type than the table's goes through staging
// and is converted as a widening converts committed values.
func TestBatchOfNarrowerType(t *testing.T) {
	schema := randomName("narrow_")
	c := admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	text := destination.Column{Name: "n", Type: contract.String}
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}, batch(true, []any{int64(1), 4.0})); err != nil {
		t.Fatal(err)
	}
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.WidenColumn, Table: destination.Table{Name: "items"}, Column: text}},
		batch(true, []any{int64(2), 4.0}, []any{int64(3), 1e15})); err != nil {
		t.Fatal(err)
	}
	got := queryStrings(t, c, `SELECT concat_ws('|', id, n) FROM `+quote(schema)+`.items ORDER BY id`)
	if strings.Join(got, " ") != "1|4.0 2|4.0 3|1000000000000000.0" {
		t.Errorf("rows %v", got)
	}
}

// cancelValue cancels a context when COPY encodes it: a cancellation in
// the middle of a statement, at a known point.
type cancelValue struct{ cancel context.CancelFunc }

func (v cancelValue) Value() (driver.Value, error) {
	v.cancel()
	return 1.0, nil
}

// A context cancelled in the middle of a write, whether the rows go
// through staging or straight into the table by COPY: the write fails, the
// rollback leaves the last commit, and the destination goes on.
func TestCancelRollsBack(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		t.Run(fmt.Sprintf("fresh=%v", fresh), func(t *testing.T) {
			schema := randomName("cancel_")
			c := admin(t, schema)
			d := openTest(t, schema)
			ctx := context.Background()
			if err := commit(ctx, d, `{"n":1}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}, batch(true, []any{int64(1), 1.0})); err != nil {
				t.Fatal(err)
			}
			rows := make([][]any, 50000)
			for i := range rows {
				rows[i] = []any{int64(i + 10), float64(i)}
			}
			cctx, cancel := context.WithCancel(ctx)
			rows[40000][1] = cancelValue{cancel}
			tx, err := d.Begin(cctx, synced)
			if err != nil {
				t.Fatal(err)
			}
			err = tx.Write(cctx, batch(fresh, rows...))
			if err == nil && fresh {
				// The COPY may take the whole batch before the cancel is
				// seen; the next step sees it.
				err = tx.Commit(cctx, destination.StateRecord{State: []byte(`{"n":9}`)})
			}
			if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "cancel") {
				t.Fatalf("write with a cancelled context: %v", err)
			}
			if err := tx.Rollback(); err != nil {
				t.Errorf("rollback: %v", err)
			}
			// The destination goes on: the next transaction commits.
			if err := commit(ctx, d, `{"n":2}`, nil, batch(false, []any{int64(2), 2.0})); err != nil {
				t.Fatalf("after the cancel: %v", err)
			}
			got := queryStrings(t, c, `SELECT concat_ws('|', id, n) FROM `+quote(schema)+`.items ORDER BY id`)
			if strings.Join(got, " ") != "1|1 2|2" {
				t.Errorf("rows %v", got)
			}
			if rec, _ := d.ReadState(ctx); rec == nil || string(rec.State) != `{"n":2}` {
				t.Errorf("state %+v", rec)
			}
		})
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

const secret = "pw-Zq81-never-shown"

// withUser returns the test URL with another user (and the secret as its
// password), database or port.
func withURL(t *testing.T, user, database string, port int) string {
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.UserPassword(user, secret)
	} else {
		name := u.User.Username()
		u.User = url.UserPassword(name, secret)
	}
	if database != "" {
		u.Path = "/" + database
	}
	if port != 0 {
		u.Host = "127.0.0.1:" + strconv.Itoa(port)
	}
	return u.String()
}

func TestConnectionErrors(t *testing.T) {
	ctx := context.Background()
	port := freePort(t)
	cases := []struct {
		name string
		url  string
		want []string
	}{
		{"refused", withURL(t, "", "", port), []string{"127.0.0.1:" + strconv.Itoa(port), "connection refused", "server is running"}},
		{"unknown role", withURL(t, "sluice_no_such_role", "", 0), []string{`role "sluice_no_such_role"`, "check the user"}},
		{"unknown database", withURL(t, "", "sluice_no_such_db", 0), []string{`database "sluice_no_such_db" does not exist`, "CREATE DATABASE"}},
		{"bad URL", "postgres://u:" + secret + "@127.0.0.1:notaport/db", []string{"not valid", "postgres://user:password@host"}},
	}
	for _, c := range cases {
		_, err := Open(ctx, c.url, "s")
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %q shows the password", c.name, err)
		}
	}
}

// A role that may not create the schema, or tables in it, is told which
// grant it needs.
func TestPermissionErrors(t *testing.T) {
	ctx := context.Background()
	schema := randomName("perm_")
	c := admin(t, schema)
	role := randomName("sluice_noperm_")
	if _, err := c.Exec(ctx, `CREATE ROLE `+quote(role)+` LOGIN PASSWORD '`+secret+`'`); err != nil {
		t.Skipf("cannot create a role to test with: %v", err)
	}
	t.Cleanup(func() {
		c.Exec(ctx, `DROP SCHEMA IF EXISTS `+quote(schema)+` CASCADE`)
		if _, err := c.Exec(ctx, `DROP ROLE `+quote(role)); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	u := withURL(t, role, "", 0)
	_, err := Open(ctx, u, schema)
	if err == nil {
		t.Fatal("no error creating a schema without the privilege")
	}
	t.Log(err)
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q shows the password", err)
	}
	for _, w := range []string{`schema "` + schema + `"`, "GRANT CREATE ON DATABASE", role} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// The schema exists, but the role may not create tables in it.
	if _, err := c.Exec(ctx, `CREATE SCHEMA `+quote(schema)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, u, schema)
	if err == nil {
		t.Fatal("no error creating tables without the privilege")
	}
	t.Log(err)
	for _, w := range []string{"GRANT USAGE, CREATE ON SCHEMA " + quote(schema), role} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// Granted, it works.
	if _, err := c.Exec(ctx, `GRANT USAGE, CREATE ON SCHEMA `+quote(schema)+` TO `+quote(role)); err != nil {
		t.Fatal(err)
	}
	d, err := Open(ctx, u, schema)
	if err != nil {
		t.Fatalf("with the grant: %v", err)
	}
	if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}, batch(true, []any{int64(1), 1.0})); err != nil {
		t.Errorf("sync with the grant: %v", err)
	}
	d.Close()
}

// Tables in the schema that sluice did not make, or whose shape changed
// under it, are errors naming the table, the column and the types.
func TestIncompatibleTables(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup string
		want  []string
	}{
		{"foreign table", `CREATE TABLE {s}.other (a int)`, []string{`"other"`, "not created by sluice", "drop or rename"}},
		{"column type", `ALTER TABLE {s}.items ALTER COLUMN n TYPE varchar(10)`, []string{`"items"`, `column "n"`, "character varying(10)", "sluice does not write"}},
		{"no primary key", `ALTER TABLE {s}.items DROP CONSTRAINT items_pkey`, []string{`"items"`, "no PRIMARY KEY", `keys it by (id)`, "ADD PRIMARY KEY"}},
		{"other primary key", `ALTER TABLE {s}.items DROP CONSTRAINT items_pkey, ADD PRIMARY KEY (n)`, []string{`"items"`, "PRIMARY KEY (n)", "(id)"}},
		{"system column", `ALTER TABLE {s}.items DROP COLUMN _sluice_synced`, []string{`"items"`, "no column _sluice_synced", "timestamp with time zone"}},
		{"system column type", `ALTER TABLE {s}.items ALTER COLUMN _sluice_deleted DROP DEFAULT, ALTER COLUMN _sluice_deleted TYPE int USING 0`, []string{`"items"`, "_sluice_deleted", "integer", "want boolean"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schema := randomName("shape_")
			c := admin(t, schema)
			d := openTest(t, schema)
			if err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}, batch(true, []any{int64(1), 1.0})); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, strings.ReplaceAll(tc.setup, "{s}", quote(schema))); err != nil {
				t.Fatal(err)
			}
			_, err := d.Describe(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// Two syncs of one schema at once: the second waits for the first, and
// says so when it gives up.
func TestSchemaLock(t *testing.T) {
	schema := randomName("lock_")
	admin(t, schema)
	d := openTest(t, schema)
	defer func(w time.Duration) { lockWait = w }(lockWait)
	lockWait = 0
	_, err := Open(context.Background(), testURL(t), schema)
	if err == nil || !strings.Contains(err.Error(), "being synced by another sluice run") || !strings.Contains(err.Error(), schema) {
		t.Fatalf("second open: %v", err)
	}
	d.Close()
	d2, err := Open(context.Background(), testURL(t), schema)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	d2.Close()
}

func TestBadValuesAndNames(t *testing.T) {
	schema := randomName("bad_")
	admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	long := destination.Table{Name: strings.Repeat("x", 64), PrimaryKey: []string{"id"}, Columns: []destination.Column{{Name: "id", Type: contract.Long}}}
	err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: long}})
	if err == nil || !strings.Contains(err.Error(), "63") || !strings.Contains(err.Error(), "shorten") {
		t.Errorf("a 64-byte name: %v", err)
	}
	text := destination.Table{Name: "t", PrimaryKey: []string{"id"}, Columns: []destination.Column{{Name: "id", Type: contract.Long}, {Name: "s", Type: contract.String}}}
	b := &destination.Batch{Table: "t", Columns: text.Columns, Key: []int{0}, Rows: 1, Values: [][]any{{int64(1)}, {"nul\x00byte"}}, Set: [][]uint64{nil}, Deleted: []int8{0}, Fresh: []bool{true}}
	err = commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: text}}, b)
	if err == nil || !strings.Contains(err.Error(), "NUL") || !strings.Contains(err.Error(), `"t"`) {
		t.Errorf("a NUL byte in text: %v", err)
	}
}

// A table created in the transaction is loaded frozen (COPY FREEZE), with
// its key columns NOT NULL from the start, also after a column is added
// in the same transaction; a table from an earlier transaction takes its
// rows the ordinary way. Frozen pages are read through the pg_visibility
// extension, created in the test's schema (dropped with it).
func TestNewTableLoadsFrozen(t *testing.T) {
	schema := randomName("frozen_")
	c := admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	if _, err := c.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_visibility SCHEMA `+quote(schema)); err != nil {
		t.Skipf("pg_visibility is not available here (%v): cannot see frozen pages", err)
	}
	frozen := func(table string) (pages, allFrozen int64) {
		t.Helper()
		q := `SELECT (SELECT relpages FROM pg_class WHERE oid = $1::regclass), all_frozen FROM ` + quote(schema) + `.pg_visibility_map_summary($1::regclass)`
		if _, err := c.Exec(ctx, `ANALYZE `+quote(schema)+`.`+quote(table)); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, q, quote(schema)+"."+quote(table)).Scan(&pages, &allFrozen); err != nil {
			t.Fatal(err)
		}
		return pages, allFrozen
	}
	rows := func(from, n int) *destination.Batch {
		var rs [][]any
		for i := from; i < from+n; i++ {
			rs = append(rs, []any{int64(i), float64(i) / 2})
		}
		return batch(true, rs...)
	}
	extra := destination.Column{Name: "note", Type: contract.String}
	wider := rows(2000, 2000)
	wider.Columns = append(wider.Columns, extra)
	wider.Values = append(wider.Values, make([]any, wider.Rows))
	for r := range wider.Rows {
		wider.Values[2][r] = "x"
	}
	tx, err := d.Begin(ctx, synced)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.Apply(ctx, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}})
	if err == nil {
		err = tx.Write(ctx, rows(0, 2000))
	}
	if err == nil {
		err = tx.Apply(ctx, []destination.SchemaChange{{Kind: destination.AddColumn, Table: destination.Table{Name: "items"}, Column: extra}})
	}
	if err == nil {
		err = tx.Write(ctx, wider)
	}
	if err == nil {
		err = tx.Commit(ctx, destination.StateRecord{State: []byte(`{}`)})
	}
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if pages, all := frozen("items"); pages < 2 || all != pages {
		t.Errorf("after the first load: %d of %d pages frozen, want all", all, pages)
	}
	if got := queryStrings(t, c, `SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND attnotnull ORDER BY attnum`, quote(schema)+".items"); strings.Join(got, " ") != "id _sluice_synced _sluice_deleted" {
		t.Errorf("NOT NULL columns %v", got)
	}
	// The next transaction appends to a table that exists: not frozen.
	if err := commit(ctx, d, `{}`, nil, rows(4000, 4000)); err != nil {
		t.Fatal(err)
	}
	if pages, all := frozen("items"); all >= pages {
		t.Errorf("after an append: %d of %d pages frozen, want the new ones not", all, pages)
	}
	got := queryStrings(t, c, `SELECT concat_ws('|', count(*), count(DISTINCT id), count(note), min(id), max(id)) FROM `+quote(schema)+`.items`)
	if strings.Join(got, " ") != "8000|8000|2000|0|7999" {
		t.Errorf("rows %v", got)
	}
	// The key still refuses a duplicate.
	if _, err := c.Exec(ctx, `INSERT INTO `+quote(schema)+`.items (id, _sluice_synced) VALUES (5, now())`); err == nil || !strings.Contains(err.Error(), "duplicate key") {
		t.Errorf("duplicate key: %v", err)
	}
}

// A NULL key (the engine refuses one first) fails the write, in a new
// table as in an old one, and the rollback leaves no table.
func TestNullKeyRefused(t *testing.T) {
	schema := randomName("nullkey_")
	c := admin(t, schema)
	d := openTest(t, schema)
	ctx := context.Background()
	err := commit(ctx, d, `{}`, []destination.SchemaChange{{Kind: destination.CreateTable, Table: items}}, batch(true, []any{int64(1), 1.0}, []any{nil, 2.0}))
	if err == nil || !strings.Contains(err.Error(), "null value") {
		t.Fatalf("NULL key in a new table: %v", err)
	}
	if got := queryStrings(t, c, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'items'`, schema); len(got) != 0 {
		t.Errorf("the failed transaction left table items")
	}
}
