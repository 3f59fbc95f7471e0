package mysql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/mysql"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestTypes checks the sluice type and warehouse value of every mapped
// MySQL/MariaDB type.
func TestTypes(t *testing.T) {
	f := newFixture(t)
	f.exec("SET SESSION sql_mode = ''", `CREATE TABLE {s}.types (
		id int PRIMARY KEY,
		flag tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint, i int, iu int unsigned,
		bi bigint, biu bigint unsigned, b1 bit(1), b9 bit(9),
		fl float, db double, dc decimal(10,2), dbig decimal(50,5),
		d date, dt datetime, dt6 datetime(6), ts timestamp(3) NULL, tm time, y year,
		c char(3), vc varchar(20), tx text, e enum('a','b'), st set('x','y'),
		bn binary(3), vb varbinary(10), bl blob, j json)`,
		`INSERT INTO {s}.types VALUES (1,
		1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295,
		-9223372036854775808, 18446744073709551615, b'1', b'100000001',
		1.2345678, 0.1, 12345678.91, 123456789012345678901234567890123456789012345.12345,
		'2024-02-29', '2024-03-01 12:34:56', '2024-03-01 12:34:56.123456', '2024-03-01 12:34:56.789', '12:34:56', 2024,
		'ab', 'varchar', 'héllo "q"', 'b', 'x,y',
		'ab', x'00ff10', x'0102', '{"a": [1, 2]}')`,
		`INSERT INTO {s}.types (id) VALUES (2)`,
		`INSERT INTO {s}.types (id, flag, d, dt) VALUES (3, 5, '0000-00-00', '0000-00-00 00:00:00')`,
	)
	w := srctest.New(t)
	sync(t, w, f.cfg())
	srctest.Want(t, "types", w.Types(f.dest("types")), []string{
		"id INTEGER", "flag BOOLEAN", "ti SMALLINT", "tiu SMALLINT", "si SMALLINT", "siu INTEGER", "mi INTEGER", "i INTEGER", "iu BIGINT",
		"bi BIGINT", "biu DECIMAL(20,0)", "b1 BOOLEAN", "b9 BIGINT",
		"fl FLOAT", "db DOUBLE", "dc DECIMAL(10,2)", "dbig VARCHAR",
		"d DATE", "dt TIMESTAMP", "dt6 TIMESTAMP", "ts TIMESTAMP WITH TIME ZONE", "tm VARCHAR", "y SMALLINT",
		"c VARCHAR", "vc VARCHAR", "tx VARCHAR", "e VARCHAR", "st VARCHAR",
		"bn BLOB", "vb BLOB", "bl BLOB", "j JSON",
		"_sluice_synced TIMESTAMP WITH TIME ZONE", "_sluice_deleted BOOLEAN",
	})
	srctest.Want(t, "rows", w.Dump(f.dest("types")), []string{
		"1|true|-128|255|-32768|65535|-8388608|-2147483648|4294967295|-9223372036854775808|18446744073709551615|true|257|" +
			"1.2345678|0.1|12345678.91|123456789012345678901234567890123456789012345.12345|" +
			"2024-02-29|2024-03-01 12:34:56|2024-03-01 12:34:56.123456|2024-03-01 12:34:56.789+00|12:34:56|2024|" +
			`ab|varchar|héllo "q"|b|x,y|ab\x00|\x00\xFF\x10|\x01\x02|{"a": [1, 2]}|false`,
		"2" + strings.Repeat("|NULL", 31) + "|false",
		// A tinyint(1) other than 0 is true; zero dates are NULL.
		"3|true" + strings.Repeat("|NULL", 30) + "|false",
	})
	if !strings.Contains(w.Logs.String(), "zero dates") {
		t.Errorf("no warning about zero dates:\n%s", w.Logs.String())
	}
}

// TestTablesKeysAndSelection: patterns, views only when named, composite
// keys, tables without a key (keyed by _sluice_id), names needing quotes.
func TestTablesKeysAndSelection(t *testing.T) {
	f := newFixture(t)
	f.exec("CREATE TABLE {s}.orders (region varchar(5), id int, total decimal(8,2), PRIMARY KEY (region, id))",
		"INSERT INTO {s}.orders VALUES ('eu', 1, 10.5), ('us', 1, 20), ('eu', 2, 5)",
		"CREATE TABLE {s}.logs (at date, msg text)",
		"INSERT INTO {s}.logs VALUES ('2024-01-01', 'a'), ('2024-01-01', 'a'), ('2024-01-02', 'b')",
		"CREATE TABLE {s}.skip_me (id int PRIMARY KEY)",
		"CREATE TABLE {s}.`Order Lines` (`Line ID` int PRIMARY KEY, `select` text)",
		"INSERT INTO {s}.`Order Lines` VALUES (1, 'reserved word')",
		"CREATE VIEW {s}.eu_orders AS SELECT * FROM {s}.orders WHERE region = 'eu'",
		"CREATE VIEW {s}.unnamed_view AS SELECT 1 AS one")
	w := srctest.New(t)
	sync(t, w, f.cfg("tables", "*, eu_orders", "exclude", "skip_*"))
	srctest.Want(t, "tables", w.Tables(), []string{f.dest("eu_orders"), f.dest("logs"), f.dest("order_lines"), f.dest("orders")})
	srctest.Want(t, "orders", w.Dump(f.dest("orders")), []string{"eu|1|10.50|false", "eu|2|5.00|false", "us|1|20.00|false"})
	srctest.Want(t, "logs", w.Query(`SELECT "at"::VARCHAR, msg, length(_sluice_id) FROM {`+f.dest("logs")+`} ORDER BY ALL`),
		[]string{"2024-01-01|a|32", "2024-01-02|b|32"})
	srctest.Want(t, "quoted", w.Dump(f.dest("order_lines")), []string{"1|reserved word|false"})
	f.exec("UPDATE {s}.orders SET total = 11 WHERE region = 'eu' AND id = 1", "DELETE FROM {s}.orders WHERE region = 'us'")
	sync(t, w, f.cfg("tables", "orders"))
	srctest.Want(t, "orders after", w.Dump(f.dest("orders")), []string{"eu|1|11.00|false", "eu|2|5.00|false", "us|1|20.00|true"})
}

// TestIncremental: only rows at or past the cursor are read again.
func TestIncremental(t *testing.T) {
	f := newFixture(t)
	f.exec("CREATE TABLE {s}.ev (id int PRIMARY KEY, updated_at datetime(6), v varchar(20))",
		"INSERT INTO {s}.ev VALUES (1, '2024-01-01 01:00:00', 'v1'), (2, '2024-01-01 02:00:00', 'v2'), (3, '2024-01-01 03:00:00', 'v3')",
		"CREATE TABLE {s}.dec_cur (code varchar(10) PRIMARY KEY, n decimal(8,3), u bigint unsigned)",
		"INSERT INTO {s}.dec_cur VALUES ('a', 1.5, 18446744073709551615), ('b', 2.25, 1)")
	cfg := f.cfg("modes", `{"ev": "incremental:updated_at", "dec_cur": "incremental:n"}`)
	w := srctest.New(t)
	sync(t, w, cfg)
	f.exec("UPDATE {s}.ev SET v = 'changed', updated_at = '2024-02-01' WHERE id = 1",
		"UPDATE {s}.ev SET v = 'not seen' WHERE id = 2",
		"INSERT INTO {s}.ev VALUES (4, '2024-01-01 03:00:00', 'tie')",
		"INSERT INTO {s}.dec_cur VALUES ('c', 3, 2)")
	var c srctest.Counter
	if err := w.Sync(context.Background(), conn, cfg, c.Wrap); err != nil {
		t.Fatal(err)
	}
	// ev: 3 again, 4 (tie), 1 (moved); dec_cur: b again, c.
	if c.Upserts != 5 {
		t.Errorf("second sync upserted %d rows, want 5", c.Upserts)
	}
	srctest.Want(t, "ev", w.Dump(f.dest("ev")), []string{"1|2024-02-01 00:00:00|changed|false", "2|2024-01-01 02:00:00|v2|false",
		"3|2024-01-01 03:00:00|v3|false", "4|2024-01-01 03:00:00|tie|false"})
	srctest.Want(t, "dec_cur", w.Dump(f.dest("dec_cur")), []string{"a|1.500|18446744073709551615|false", "b|2.250|1|false", "c|3.000|2|false"})
}

// TestCrashResume: a sync ended by an error or a cancelled context, then
// run again, leaves the warehouse an uninterrupted sync leaves; ties on
// the cursor across a checkpoint lose and repeat nothing.
func TestCrashResume(t *testing.T) {
	f := newFixture(t)
	f.exec("CREATE TABLE {s}.big (id int PRIMARY KEY, v varchar(20))",
		"CREATE TABLE {s}.bag (v int)",
		"CREATE TABLE {s}.inc (id int PRIMARY KEY, seq int, v varchar(20))",
		"CREATE TABLE {s}.seed (i int PRIMARY KEY)")
	var vals []string
	for i := 1; i <= 400; i++ {
		vals = append(vals, fmt.Sprintf("(%d)", i))
	}
	f.exec("INSERT INTO {s}.seed VALUES " + strings.Join(vals, ","))
	load := func() {
		f.exec("DELETE FROM {s}.big", "DELETE FROM {s}.bag", "DELETE FROM {s}.inc",
			"INSERT INTO {s}.big SELECT i, CONCAT('v', i) FROM {s}.seed",
			"INSERT INTO {s}.bag SELECT i % 150 FROM {s}.seed WHERE i <= 300",
			// seq ties: ten rows share each value.
			"INSERT INTO {s}.inc SELECT i, i DIV 10, CONCAT('v', i) FROM {s}.seed")
	}
	change := func() {
		f.exec("DELETE FROM {s}.big WHERE id % 7 = 0", "UPDATE {s}.big SET v = CONCAT(v, '!') WHERE id % 5 = 0",
			"DELETE FROM {s}.bag WHERE v % 10 = 0", "INSERT INTO {s}.bag VALUES (1000), (1001)",
			"UPDATE {s}.inc SET seq = 1000 + id, v = 'moved' WHERE id % 11 = 0",
			"INSERT INTO {s}.inc SELECT 1000 + i, 40, CONCAT('tie', i) FROM {s}.seed WHERE i <= 25")
	}
	cfg := f.cfg("tables", "big, bag, inc", "modes", `{"inc": "incremental:seq"}`, "checkpoint_rows", "13")
	tables := []string{f.dest("big"), f.dest("bag"), f.dest("inc")}
	// The second sync emits 343 (big) + 272 (bag) + about 70 (inc) rows.
	srctest.ResumeMatches(t, conn, cfg, tables, []int{0, 13, 14, 300, 620, 650}, load, change)
}

// TestBadInput: each mistake ends the sync with an error that names it,
// and never shows the password.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.exec("CREATE TABLE {s}.items (id int PRIMARY KEY, payload blob, updated_at datetime)")
	const pw = "s3cr3t-Pa55"
	withURL := func(u string) contract.Config { c := f.cfg(); c["url"] = u; return c }
	cases := []struct {
		name string
		cfg  contract.Config
		want []string
	}{
		{"unreachable", withURL("root:" + pw + "@tcp(127.0.0.1:1)/test"), []string{"127.0.0.1:1", "cannot be reached"}},
		{"unreachable url", withURL("mysql://root:" + pw + "@127.0.0.1:1/test"), []string{"127.0.0.1:1", "cannot be reached"}},
		{"bad credentials", withURL("root:" + pw + "@tcp(127.0.0.1:3306)/test"), []string{`user "root"`, "access denied"}},
		{"bad dsn", withURL("root:" + pw + "@127.0.0.1:3306/test"), []string{`"url"`, "DSN"}},
		{"no database", func() contract.Config { c := withURL("mysql://root@127.0.0.1:3306"); c["schemas"] = ""; return c }(), []string{"no database to sync"}},
		{"no such database", f.cfg("schemas", "nosuchdb_x"), []string{`"nosuchdb_x"`, "does not exist"}},
		{"no such table", f.cfg("tables", "nosuchtable"), []string{`"nosuchtable"`, "not a table"}},
		{"no such cursor", f.cfg("modes", `{"items": "incremental:nosuchcol"}`), []string{`no column "nosuchcol"`}},
		{"not a cursor", f.cfg("modes", `{"items": "incremental:payload"}`), []string{`"payload"`, "cannot be a cursor"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := srctest.New(t)
			err := w.Sync(context.Background(), conn, c.cfg, nil)
			srctest.WantErr(t, err, c.want...)
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Errorf("the password is in the error: %v", err)
			}
			if strings.Contains(w.Logs.String(), pw) {
				t.Errorf("the password is in the logs:\n%s", w.Logs.String())
			}
		})
	}
	// The URL form of the good configuration syncs.
	w := srctest.New(t)
	sync(t, w, withURL("mysql://root@127.0.0.1:3306/test"))
	srctest.Want(t, "tables", w.Tables(), []string{f.dest("items")})
}

func TestSecrets(t *testing.T) {
	for _, u := range []string{"mysql://u:pw-url@host/db", "u:pw-dsn@tcp(host:3306)/db"} {
		s := mysql.Secrets(contract.Config{"url": u})
		if len(s) != 2 || s[0] != u || !strings.HasPrefix(s[1], "pw-") {
			t.Errorf("Secrets(%q) = %q: want the URL and its password", u, s)
		}
	}
}
