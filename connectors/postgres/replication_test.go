package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/internal/contract"
)

// replFixture is a fixture with a slot and a publication of its own,
// dropped at the end. It skips the test when the server cannot do logical
// replication.
func replFixture(t *testing.T) (*fixture, contract.Config) {
	t.Helper()
	f := newFixture(t)
	var level string
	if err := f.conn.QueryRow(context.Background(), "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Skipf("the server's wal_level is %q: logical replication tests need \"logical\" (run .ci/postgres-logical)", level)
	}
	name := "sluice_t_" + f.suffix
	t.Cleanup(func() {
		ctx := context.Background()
		// The slot may still be marked active for a moment after its
		// connection closed.
		for i := 0; i < 50; i++ {
			_, err := f.conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, name)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		f.conn.Exec(ctx, `DROP PUBLICATION IF EXISTS `+name)
	})
	return f, f.cfg("replication", "pgoutput", "slot", name, "publication", name)
}

// replState reads the replication position from the warehouse's state.
func replState(t *testing.T, w *srctest.Warehouse) (lsn pglogrepl.LSN, snapshotDone bool) {
	t.Helper()
	var st struct {
		Replication struct {
			LSN          string `json:"lsn"`
			SnapshotDone bool   `json:"snapshot_done"`
		} `json:"replication"`
	}
	if err := json.Unmarshal([]byte(w.State()), &st); err != nil {
		t.Fatalf("state %s: %v", w.State(), err)
	}
	lsn, err := pglogrepl.ParseLSN(st.Replication.LSN)
	if err != nil {
		t.Fatalf("state %s: %v", w.State(), err)
	}
	return lsn, st.Replication.SnapshotDone
}

func (f *fixture) confirmed(slot string) pglogrepl.LSN {
	f.t.Helper()
	var s string
	if err := f.conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s); err != nil {
		f.t.Fatalf("read slot %s: %v", slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		f.t.Fatal(err)
	}
	return lsn
}

// TestReplication: the first sync snapshots the tables; later syncs carry
// inserts, updates (key changes and unchanged TOAST values included),
// deletes and truncates; the slot is acknowledged only up to a position a
// committed state holds; a table that cannot be replicated is refreshed.
func TestReplication(t *testing.T) {
	f, cfg := replFixture(t)
	slot := cfg["slot"]
	f.exec(`CREATE TABLE {s}.acct (id int PRIMARY KEY, name text, bal numeric(10,2), big text)`,
		`INSERT INTO {s}.acct VALUES (1, 'ann', 10, NULL), (2, 'bob', 20, NULL), (4, 'dan', 40, NULL),
			(5, 'eve', 50, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i))`,
		`CREATE TABLE {s}.full_ident (a int, b text)`,
		`ALTER TABLE {s}.full_ident REPLICA IDENTITY FULL`,
		`INSERT INTO {s}.full_ident VALUES (1, 'x'), (2, 'y'), (3, 'z')`,
		`CREATE TABLE {s}.nokey (a int)`,
		`INSERT INTO {s}.nokey VALUES (1), (2)`,
		`CREATE TABLE {s}.trunc (id int PRIMARY KEY)`,
		`INSERT INTO {s}.trunc VALUES (1), (2)`,
	)
	w := srctest.New(t)
	sync(t, w, cfg)
	if !strings.Contains(w.Logs.String(), "cannot be replicated") {
		t.Errorf("no warning that nokey is refreshed instead:\n%s", w.Logs.String())
	}
	lsn1, done := replState(t, w)
	if !done || lsn1 == 0 {
		t.Fatalf("after the first sync: lsn %s, snapshot done %v", lsn1, done)
	}
	srctest.Want(t, "acct snapshot", w.Query(`SELECT id, name, bal::VARCHAR, length(big) FROM {`+f.dest("acct")+`} ORDER BY id`),
		[]string{"1|ann|10.00|NULL", "2|bob|20.00|NULL", "4|dan|40.00|NULL", "5|eve|50.00|12800"})

	f.exec(`INSERT INTO {s}.acct VALUES (3, 'cy', 30, NULL)`,
		`UPDATE {s}.acct SET name = 'ANN' WHERE id = 1`,
		`DELETE FROM {s}.acct WHERE id = 2`,
		`UPDATE {s}.acct SET id = 40 WHERE id = 4`,
		`UPDATE {s}.acct SET bal = 55 WHERE id = 5`, // big is unchanged: not sent
		`DELETE FROM {s}.full_ident WHERE a = 1`,
		`UPDATE {s}.full_ident SET b = 'Y' WHERE a = 2`,
		`INSERT INTO {s}.full_ident VALUES (4, 'w')`,
		`DELETE FROM {s}.nokey WHERE a = 1`,
		`TRUNCATE {s}.trunc`, `INSERT INTO {s}.trunc VALUES (3)`)
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if c.Deletes < 4 || c.Updates != 1 {
		t.Errorf("stream ops: %d deletes (want 4 or more), %d updates (want 1, for the unchanged TOAST value)", c.Deletes, c.Updates)
	}
	srctest.Want(t, "acct", w.Query(`SELECT id, name, bal::VARCHAR, length(big), _sluice_deleted FROM {`+f.dest("acct")+`} ORDER BY id`),
		[]string{"1|ANN|10.00|NULL|false", "2|bob|20.00|NULL|true", "3|cy|30.00|NULL|false", "4|dan|40.00|NULL|true",
			"5|eve|55.00|12800|false", "40|dan|40.00|NULL|false"})
	srctest.Want(t, "full_ident", w.Query(`SELECT a, b, _sluice_deleted FROM {`+f.dest("full_ident")+`} ORDER BY ALL`),
		[]string{"1|x|true", "2|Y|false", "2|y|true", "3|z|false", "4|w|false"})
	srctest.Want(t, "nokey", w.Query(`SELECT a, _sluice_deleted FROM {`+f.dest("nokey")+`} ORDER BY ALL`), []string{"1|true", "2|false"})
	srctest.Want(t, "trunc", w.Query(`SELECT id, _sluice_deleted FROM {`+f.dest("trunc")+`} ORDER BY ALL`), []string{"1|true", "2|true", "3|false"})

	// The second sync acknowledged what the first committed, no more.
	lsn2, _ := replState(t, w)
	if lsn2 <= lsn1 {
		t.Errorf("the position did not move: %s then %s", lsn1, lsn2)
	}
	if got := f.confirmed(slot); got != lsn1 {
		t.Errorf("after the second sync the slot is confirmed at %s, want %s (the first sync's committed position)", got, lsn1)
	}
	sync(t, w, cfg)
	if got := f.confirmed(slot); got != lsn2 {
		t.Errorf("after the third sync the slot is confirmed at %s, want %s", got, lsn2)
	}
}

// TestReplicationTypes: values read from the change stream (text) equal
// the snapshot's (binary) for every type.
func TestReplicationTypes(t *testing.T) {
	f, cfg := replFixture(t)
	f.exec(`CREATE TYPE {s}.mood AS ENUM ('sad', 'happy')`,
		`CREATE DOMAIN {s}.posint AS integer CHECK (VALUE > 0)`,
		typesDDL, typesRow("1"))
	cfg["tables"] = "types"
	w := srctest.New(t)
	sync(t, w, cfg)
	f.exec(typesRow("2"))
	sync(t, w, cfg)
	rows := w.Query(`SELECT COLUMNS(* EXCLUDE (id, _sluice_synced))::VARCHAR FROM {` + f.dest("types") + `} ORDER BY id`)
	if len(rows) != 2 || rows[0] != rows[1] {
		t.Errorf("the streamed row differs from the snapshot's:\n snapshot: %s\n stream:   %s", rows[0], rows[len(rows)-1])
	}
	if n := w.Query(`SELECT count(*) FROM information_schema.columns WHERE table_schema = 'src' AND table_name = ? AND column_name = 'gen'`, f.dest("types")); n[0] != "0" {
		t.Errorf("the generated column, which the stream does not carry, is in the warehouse")
	}
}

// TestReplicationCrashReplays: a sync that fails before the checkpoint
// covering some changes commits none of them and leaves the slot where it
// was; the next sync replays them. With checkpoints inside the stream, a
// failure resumes after the last committed transaction.
func TestReplicationCrashReplays(t *testing.T) {
	f, cfg := replFixture(t)
	slot := cfg["slot"]
	f.exec(`CREATE TABLE {s}.t (id int PRIMARY KEY, v text)`, `INSERT INTO {s}.t VALUES (1, 'a'), (2, 'b')`)
	w := srctest.New(t)
	sync(t, w, cfg)
	before := w.Dump(f.dest("t"))
	lsn1, _ := replState(t, w)

	f.exec(`INSERT INTO {s}.t VALUES (3, 'c'), (4, 'd')`, `DELETE FROM {s}.t WHERE id = 1`, `UPDATE {s}.t SET v = 'B' WHERE id = 2`)
	err := w.Sync(context.Background(), conn, cfg, srctest.FailAfter(2))
	if !errors.Is(err, srctest.ErrInjected) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	srctest.Want(t, "after the failed sync", w.Dump(f.dest("t")), before)
	if lsn, _ := replState(t, w); lsn != lsn1 {
		t.Errorf("the failed sync moved the state to %s", lsn)
	}
	if got := f.confirmed(slot); got > lsn1 {
		t.Errorf("the slot was confirmed at %s, past the committed %s", got, lsn1)
	}
	sync(t, w, cfg)
	srctest.Want(t, "replayed", w.Dump(f.dest("t")), []string{"1|a|true", "2|B|false", "3|c|false", "4|d|false"})

	// Five transactions of one change each, a checkpoint every two changes:
	// a failure in the fifth resumes with the fifth alone.
	for _, q := range []string{`INSERT INTO {s}.t VALUES (5, 'e')`, `INSERT INTO {s}.t VALUES (6, 'f')`,
		`INSERT INTO {s}.t VALUES (7, 'g')`, `INSERT INTO {s}.t VALUES (8, 'h')`, `DELETE FROM {s}.t WHERE id = 3`} {
		f.exec(q)
	}
	cfg["checkpoint_rows"] = "2"
	if err := w.Sync(context.Background(), conn, cfg, srctest.FailAfter(4)); !errors.Is(err, srctest.ErrInjected) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	srctest.Want(t, "committed before the failure", w.Query(`SELECT id FROM {`+f.dest("t")+`} WHERE NOT _sluice_deleted ORDER BY id`),
		[]string{"2", "3", "4", "5", "6", "7", "8"})
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	if c.Upserts != 0 || c.Deletes != 1 {
		t.Errorf("the resumed stream made %d upserts and %d deletes, want only the last transaction's delete", c.Upserts, c.Deletes)
	}
	srctest.Want(t, "resumed", w.Query(`SELECT id FROM {`+f.dest("t")+`} WHERE NOT _sluice_deleted ORDER BY id`),
		[]string{"2", "4", "5", "6", "7", "8"})
}

// TestReplicationSnapshotResume: a first sync cut short in its snapshot
// resumes in a new snapshot after the last committed key; changes made in
// between converge through the stream, to what a full read shows.
func TestReplicationSnapshotResume(t *testing.T) {
	f, cfg := replFixture(t)
	f.exec(`CREATE TABLE {s}.s (id int PRIMARY KEY, v text)`, `INSERT INTO {s}.s SELECT i, 'v' || i FROM generate_series(1, 300) i`)
	cfg["checkpoint_rows"] = "50"
	w := srctest.New(t)
	if err := w.Sync(context.Background(), conn, cfg, srctest.FailAfter(120)); !errors.Is(err, srctest.ErrInjected) {
		t.Fatalf("want the injected failure, got %v", err)
	}
	if _, done := replState(t, w); done {
		t.Fatal("the snapshot is marked done after a failure in it")
	}
	f.exec(`UPDATE {s}.s SET v = 'changed' WHERE id IN (10, 250)`, `DELETE FROM {s}.s WHERE id IN (20, 200)`,
		`INSERT INTO {s}.s VALUES (301, 'new')`)
	sync(t, w, cfg)
	if _, done := replState(t, w); !done {
		t.Error("the snapshot is not marked done")
	}
	// What a plain full read of the table now gives.
	ref := srctest.New(t)
	sync(t, ref, f.cfg())
	got := w.Query(`SELECT id, v FROM {` + f.dest("s") + `} WHERE NOT _sluice_deleted ORDER BY id`)
	srctest.Want(t, "live rows", got, ref.Query(`SELECT id, v FROM {`+f.dest("s")+`} ORDER BY id`))
	srctest.Want(t, "deleted", w.Query(`SELECT id FROM {`+f.dest("s")+`} WHERE _sluice_deleted ORDER BY id`), []string{"20"})
}

// hookOps runs fn before the first upsert into a table.
type hookOps struct {
	contract.Ops
	table string
	fn    func()
}

func (h *hookOps) Upsert(t string, r map[string]any) error {
	if t == h.table && h.fn != nil {
		h.fn()
		h.fn = nil
	}
	return h.Ops.Upsert(t, r)
}

// TestReplicationNewColumn: a column added after the sync read the catalog
// ends the stream at the last whole transaction; the next sync declares
// the column and goes on. Values of a column dropped since are ignored.
func TestReplicationNewColumn(t *testing.T) {
	f, cfg := replFixture(t)
	f.exec(`CREATE TABLE {s}.c (id int PRIMARY KEY, v text)`, `INSERT INTO {s}.c VALUES (1, 'a')`,
		`CREATE TABLE {s}.other (id int PRIMARY KEY)`, `INSERT INTO {s}.other VALUES (1)`)
	cfg["modes"] = `{"other": "full_refresh"}`
	w := srctest.New(t)
	sync(t, w, cfg)
	f.exec(`INSERT INTO {s}.c VALUES (2, 'b')`)
	// other is refreshed after the catalog was read and before the stream
	// starts: the column comes in between.
	hook := func(o contract.Ops) contract.Ops {
		return &hookOps{Ops: o, table: f.dest("other"), fn: func() {
			f.exec(`ALTER TABLE {s}.c ADD COLUMN n int`, `INSERT INTO {s}.c VALUES (3, 'c', 33)`)
		}}
	}
	if err := w.Sync(context.Background(), conn, cfg, hook); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Logs.String(), "new column") {
		t.Errorf("no word of the new column:\n%s", w.Logs.String())
	}
	srctest.Want(t, "stopped before the new column", w.Dump(f.dest("c")), []string{"1|a|false", "2|b|false"})
	sync(t, w, cfg)
	srctest.Want(t, "types", w.Types(f.dest("c")), []string{"id INTEGER", "v VARCHAR", "_sluice_synced TIMESTAMP WITH TIME ZONE", "_sluice_deleted BOOLEAN", "n INTEGER"})
	srctest.Want(t, "rows", w.Dump(f.dest("c")), []string{"1|a|false|NULL", "2|b|false|NULL", "3|c|false|33"})
	f.exec(`INSERT INTO {s}.c VALUES (4, 'd', 44)`, `ALTER TABLE {s}.c DROP COLUMN v`, `INSERT INTO {s}.c VALUES (5, 55)`)
	sync(t, w, cfg)
	srctest.Want(t, "after a drop", w.Dump(f.dest("c")), []string{"1|a|false|NULL", "2|b|false|NULL", "3|c|false|33", "4|NULL|false|44", "5|NULL|false|55"})
}
