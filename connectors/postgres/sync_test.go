package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/postgres"
)

// TestTablesKeysAndSelection checks include and exclude patterns, views
// only when named, composite keys, tables without a key (keyed by
// _sluice_id), and names that need quoting.
func TestTablesKeysAndSelection(t *testing.T) {
	f := newFixture(t)
	f.exec(
		`CREATE TABLE {s}.orders (region text, id int, total numeric(8,2), PRIMARY KEY (region, id))`,
		`INSERT INTO {s}.orders VALUES ('eu', 1, 10.50), ('us', 1, 20), ('eu', 2, 5)`,
		`CREATE TABLE {s}.logs (at date, msg text)`,
		`INSERT INTO {s}.logs VALUES ('2024-01-01', 'a'), ('2024-01-01', 'a'), ('2024-01-02', 'b')`,
		`CREATE TABLE {s}.skip_me (id int PRIMARY KEY)`,
		`CREATE TABLE {s}.skip_too (id int PRIMARY KEY)`,
		`CREATE TABLE {s}."Order Lines" ("Line ID" int PRIMARY KEY, "select" text)`,
		`INSERT INTO {s}."Order Lines" VALUES (1, 'reserved word')`,
		`CREATE VIEW {s}.eu_orders AS SELECT * FROM {s}.orders WHERE region = 'eu'`,
		`CREATE VIEW {s}.unnamed_view AS SELECT 1 AS one`,
	)
	w := srctest.New(t)
	sync(t, w, f.cfg("tables", "*, "+f.schema+".eu_orders", "exclude", "skip_*"))
	srctest.Want(t, "tables", w.Tables(), []string{f.dest("eu_orders"), f.dest("logs"), f.dest("order_lines"), f.dest("orders")})
	srctest.Want(t, "orders", w.Dump(f.dest("orders")), []string{"eu|1|10.50|false", "eu|2|5.00|false", "us|1|20.00|false"})
	// Two equal rows are one row: a table without a key is keyed by a hash
	// of the whole row.
	srctest.Want(t, "logs", w.Query(`SELECT "at"::VARCHAR, msg, length(_sluice_id), _sluice_deleted FROM {`+f.dest("logs")+`} ORDER BY ALL`),
		[]string{"2024-01-01|a|32|false", "2024-01-02|b|32|false"})
	srctest.Want(t, "view", w.Query(`SELECT region, id FROM {`+f.dest("eu_orders")+`} ORDER BY ALL`), []string{"eu|1", "eu|2"})
	srctest.Want(t, "quoted names", w.Dump(f.dest("order_lines")), []string{"1|reserved word|false"})

	// The key is the composite one: a second sync replaces by (region, id).
	f.exec(`UPDATE {s}.orders SET total = 11 WHERE region = 'eu' AND id = 1`)
	sync(t, w, f.cfg("tables", "orders"))
	srctest.Want(t, "orders after update", w.Dump(f.dest("orders")), []string{"eu|1|11.00|false", "eu|2|5.00|false", "us|1|20.00|false"})
}

// TestFullRefreshSoftDeletes: rows gone from the source end up soft-deleted,
// changed rows changed, new rows added; a deleted row that comes back
// revives.
func TestFullRefreshSoftDeletes(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.items (id int PRIMARY KEY, name text)`,
		`INSERT INTO {s}.items VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
		`CREATE TABLE {s}.tags (tag text)`,
		`INSERT INTO {s}.tags VALUES ('x'), ('y')`)
	w := srctest.New(t)
	sync(t, w, f.cfg())
	f.exec(`DELETE FROM {s}.items WHERE id = 2`, `UPDATE {s}.items SET name = 'THREE' WHERE id = 3`,
		`INSERT INTO {s}.items VALUES (4, 'four')`, `DELETE FROM {s}.tags WHERE tag = 'y'`)
	sync(t, w, f.cfg())
	srctest.Want(t, "items", w.Dump(f.dest("items")), []string{"1|one|false", "2|two|true", "3|THREE|false", "4|four|false"})
	srctest.Want(t, "tags", w.Query(`SELECT tag, _sluice_deleted FROM {`+f.dest("tags")+`} ORDER BY ALL`), []string{"x|false", "y|true"})
	f.exec(`INSERT INTO {s}.items VALUES (2, 'two again')`)
	sync(t, w, f.cfg())
	srctest.Want(t, "revived", w.Dump(f.dest("items")), []string{"1|one|false", "2|two again|false", "3|THREE|false", "4|four|false"})
}

// TestIncremental: a second sync reads only the rows at or past the
// cursor; rows sharing the last cursor value are read again so that rows
// given that value later are not missed.
func TestIncremental(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.events (id int PRIMARY KEY, updated_at timestamptz, v text)`,
		`INSERT INTO {s}.events SELECT i, '2024-01-01'::timestamptz + i * interval '1 hour', 'v' || i FROM generate_series(1, 5) i`,
		`CREATE TABLE {s}.plain (id int PRIMARY KEY)`, `INSERT INTO {s}.plain VALUES (1)`)
	cfg := f.cfg("modes", `{"events": "incremental:updated_at"}`)
	w := srctest.New(t)
	sync(t, w, cfg)
	if st := w.State(); !strings.Contains(st, `"cursor":"2024-01-01T05:00:00Z"`) || !strings.Contains(st, `"complete":true`) {
		t.Errorf("state after the first sync: %s", st)
	}
	f.exec(`UPDATE {s}.events SET v = 'changed', updated_at = '2024-02-01' WHERE id = 2`,
		`UPDATE {s}.events SET v = 'not seen' WHERE id = 3`, // the cursor did not move: not read
		`INSERT INTO {s}.events VALUES (6, '2024-01-01 05:00:00+00', 'same cursor as the last row')`)
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	// events: 5 (the last value again), 6 (same value), 2 (moved); plain: 1.
	if c.Upserts != 4 {
		t.Errorf("second sync upserted %d rows, want 4", c.Upserts)
	}
	srctest.Want(t, "events", w.Dump(f.dest("events")), []string{
		"1|2024-01-01 01:00:00+00|v1|false", "2|2024-02-01 00:00:00+00|changed|false", "3|2024-01-01 03:00:00+00|v3|false",
		"4|2024-01-01 04:00:00+00|v4|false", "5|2024-01-01 05:00:00+00|v5|false", "6|2024-01-01 05:00:00+00|same cursor as the last row|false"})
}

// TestIncrementalCursorKinds: integer, text, numeric, date and NULL
// cursors, and a table without a key, read incrementally.
func TestIncrementalCursorKinds(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.serial (id bigserial PRIMARY KEY, v text)`,
		`INSERT INTO {s}.serial (v) SELECT 'r' || i FROM generate_series(1, 4) i`,
		`CREATE TABLE {s}.texts (code text PRIMARY KEY, n numeric(6,2), d date)`,
		`INSERT INTO {s}.texts VALUES ('a''b', 1.5, NULL), ('b', 2.25, '2024-01-01'), ('c', NULL, '2024-01-02')`,
		`CREATE TABLE {s}.nokey (n numeric(6,2), note text)`,
		`INSERT INTO {s}.nokey VALUES (1, 'x'), (2, 'y'), (NULL, 'null cursor')`)
	cfg := f.cfg("modes", `{"serial": "incremental:id", "texts": "incremental:n", "nokey": "incremental:n"}`, "checkpoint_rows", "1")
	w := srctest.New(t)
	sync(t, w, cfg)
	f.exec(`INSERT INTO {s}.serial (v) VALUES ('r5')`, `INSERT INTO {s}.texts VALUES ('d', 3, NULL)`,
		`INSERT INTO {s}.nokey VALUES (3, 'z')`)
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	// serial: 4 again and 5; texts: b (2.25) and d; nokey: 2 and 3.
	if c.Upserts != 6 {
		t.Errorf("second sync upserted %d rows, want 6", c.Upserts)
	}
	srctest.Want(t, "serial", w.Dump(f.dest("serial")), []string{"1|r1|false", "2|r2|false", "3|r3|false", "4|r4|false", "5|r5|false"})
	srctest.Want(t, "texts", w.Dump(f.dest("texts")), []string{"a'b|1.50|NULL|false", "b|2.25|2024-01-01|false", "c|NULL|2024-01-02|false", "d|3.00|NULL|false"})
	srctest.Want(t, "nokey", w.Query(`SELECT n::VARCHAR, note FROM {`+f.dest("nokey")+`} ORDER BY ALL`), []string{"1.00|x", "2.00|y", "3.00|z", "NULL|null cursor"})
}

// TestTiesAcrossCheckpoints: many rows share one cursor value and a
// checkpoint falls among them; a failure after it resumes strictly after
// the last committed (cursor, key), losing and repeating nothing.
func TestTiesAcrossCheckpoints(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.ties (id int PRIMARY KEY, updated_at timestamp, v text)`,
		`INSERT INTO {s}.ties SELECT i, CASE WHEN i <= 10 THEN timestamp '2024-01-01' ELSE timestamp '2024-01-02' END, 'v' || i FROM generate_series(1, 12) i`)
	cfg := f.cfg("modes", `{"ties": "incremental:updated_at"}`, "checkpoint_rows", "3")

	ref := srctest.New(t)
	sync(t, ref, cfg)

	w := srctest.New(t)
	// Checkpoints after rows 3 and 6; the 8th upsert fails.
	err := w.Sync(context.Background(), conn, cfg, srctest.FailAfter(7))
	if !errors.Is(err, srctest.ErrInjected) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	srctest.Want(t, "committed before the failure", w.Query(`SELECT id FROM {`+f.dest("ties")+`} ORDER BY id`), []string{"1", "2", "3", "4", "5", "6"})
	if st := w.State(); !strings.Contains(st, `"key":["6"]`) || !strings.Contains(st, `"complete":false`) {
		t.Errorf("state after the failure: %s", st)
	}
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if c.Upserts != 6 {
		t.Errorf("the resumed sync upserted %d rows, want the 6 after the checkpoint", c.Upserts)
	}
	srctest.Want(t, "resumed", w.Dump(f.dest("ties")), ref.Dump(f.dest("ties")))
}

// TestCrashResume ends a sync at many points, by a failing operation or a
// cancelled context, then runs it again: the warehouse ends identical to an
// uninterrupted sync's, for full refresh (keyed: resumed after the last
// key; keyless: started over) and incremental tables alike.
func TestCrashResume(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.big (id int PRIMARY KEY, v text)`,
		`INSERT INTO {s}.big SELECT i, 'v' || i FROM generate_series(1, 500) i`,
		`CREATE TABLE {s}.bag (v int)`,
		`INSERT INTO {s}.bag SELECT i % 150 FROM generate_series(1, 300) i`,
		`CREATE TABLE {s}.inc (id int PRIMARY KEY, seq int, v text)`,
		`INSERT INTO {s}.inc SELECT i, i / 3, 'v' || i FROM generate_series(1, 400) i`)
	cfg := f.cfg("modes", `{"inc": "incremental:seq"}`, "checkpoint_rows", "70")
	change := func() {
		f.exec(`DELETE FROM {s}.big WHERE id % 7 = 0`, `UPDATE {s}.big SET v = v || '!' WHERE id % 5 = 0`,
			`INSERT INTO {s}.big SELECT i, 'new' || i FROM generate_series(501, 540) i`,
			`DELETE FROM {s}.bag WHERE v % 10 = 0`, `INSERT INTO {s}.bag VALUES (1000), (1001)`,
			`UPDATE {s}.inc SET seq = 1000 + id, v = 'moved' WHERE id % 11 = 0`,
			`INSERT INTO {s}.inc SELECT i, 200, 'tie' || i FROM generate_series(401, 460) i`)
	}
	// The reference: a first sync, the change, an uninterrupted second one.
	f.exec(`CREATE TABLE {s}.snap_big AS SELECT * FROM {s}.big`, `CREATE TABLE {s}.snap_bag AS SELECT * FROM {s}.bag`,
		`CREATE TABLE {s}.snap_inc AS SELECT * FROM {s}.inc`)
	restore := func() {
		f.exec(`TRUNCATE {s}.big, {s}.bag, {s}.inc`, `INSERT INTO {s}.big SELECT * FROM {s}.snap_big`,
			`INSERT INTO {s}.bag SELECT * FROM {s}.snap_bag`, `INSERT INTO {s}.inc SELECT * FROM {s}.snap_inc`)
	}
	cfg["exclude"] = "snap_*"
	tables := []string{f.dest("big"), f.dest("bag"), f.dest("inc")}
	// The second sync emits about 830 rows: big's 463, bag's 272, then
	// inc's. The points fall before, on and after a checkpoint, and in
	// each table.
	srctest.ResumeMatches(t, conn, cfg, tables, []int{0, 70, 71, 300, 520, 780}, restore, change)
}

// TestReadMethodsAgree: COPY and the streamed query give one warehouse.
func TestReadMethodsAgree(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.m (id int PRIMARY KEY, t text, ts timestamptz, n numeric(12,3), b bytea)`,
		`INSERT INTO {s}.m SELECT i, repeat('x', i % 50), '2024-01-01'::timestamptz + i * interval '1 second', i / 7.0, decode(lpad(to_hex(i), 8, '0'), 'hex') FROM generate_series(1, 3000) i`)
	cfg := f.cfg("checkpoint_rows", "1000")
	a, b := srctest.New(t), srctest.New(t)
	if err := a.Sync(context.Background(), postgres.ConnectorWith(postgres.Options{Read: postgres.ReadCopy}), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(context.Background(), postgres.ConnectorWith(postgres.Options{Read: postgres.ReadQuery}), cfg, nil); err != nil {
		t.Fatal(err)
	}
	srctest.Want(t, "rows", a.Dump(f.dest("m")), b.Dump(f.dest("m")))
	if n := a.Query(`SELECT count(*) FROM {` + f.dest("m") + `}`); n[0] != "3000" {
		t.Errorf("%s rows, want 3000", n[0])
	}
}

// TestFullRefreshResumesAfterKey: a full refresh cut short resumes after the
// last committed key, without a second truncate; a table without a key
// starts over.
func TestFullRefreshResumesAfterKey(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.k (id int PRIMARY KEY)`, `INSERT INTO {s}.k SELECT generate_series(1, 100)`)
	cfg := f.cfg("checkpoint_rows", "30")
	w := srctest.New(t)
	if err := w.Sync(context.Background(), conn, cfg, srctest.FailAfter(70)); !errors.Is(err, srctest.ErrInjected) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	if st := w.State(); !strings.Contains(st, `"after":["60"]`) {
		t.Errorf("state after the failure: %s", st)
	}
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if c.Upserts != 40 || c.Truncates != 0 {
		t.Errorf("the resumed sync made %d upserts and %d truncates, want 40 and 0", c.Upserts, c.Truncates)
	}
	srctest.Want(t, "rows", w.Query(`SELECT count(*), min(id), max(id), count(*) FILTER (WHERE _sluice_deleted) FROM {`+f.dest("k")+`}`), []string{"100|1|100|0"})
	// The pass is over: the next sync refreshes again, truncate first.
	var c2 srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c2.Wrap); err != nil {
		t.Fatal(err)
	}
	if c2.Upserts != 100 || c2.Truncates != 1 {
		t.Errorf("the next sync made %d upserts and %d truncates, want 100 and 1", c2.Upserts, c2.Truncates)
	}
}
