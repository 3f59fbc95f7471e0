package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/postgres"
)

const typesDDL = `CREATE TABLE {s}.types (
	id bigint PRIMARY KEY,
	b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
	f4 real, f8 double precision,
	n_ps numeric(10,2), n_big numeric(50,5), n_free numeric, n_neg numeric(5,-2),
	d date, ts timestamp, ts3 timestamp(3), tstz timestamptz,
	t text, vc varchar(20), ch char(3), nm name,
	by bytea, u uuid, j json, jb jsonb, x xml,
	arr_i integer[], arr_t text[], arr_2d integer[][], arr_b boolean[], arr_j jsonb[], arr_n numeric[],
	e {s}.mood, dom {s}.posint,
	tm time, iv interval, money_c money, inet_c inet,
	gen bigint GENERATED ALWAYS AS (i8 / 2) STORED
)`

// typesRow is one row of every type, by id.
func typesRow(id string) string {
	return `INSERT INTO {s}.types (id, b, i2, i4, i8, o, f4, f8, n_ps, n_big, n_free, n_neg, d, ts, ts3, tstz, t, vc, ch, nm,
		by, u, j, jb, x, arr_i, arr_t, arr_2d, arr_b, arr_j, arr_n, e, dom, tm, iv, money_c, inet_c) VALUES (` + id + `,
		true, -32768, 2147483647, -9223372036854775808, 4000000000,
		1.2345678, 0.1, 12345678.91, '123456789012345678901234567890123456789012345.12345', 3.14159265358979323846, 12345,
		'2024-02-29', '2024-03-01 12:34:56.123456', '2024-03-01 12:34:56.789', '2024-03-01 12:34:56.5+02',
		'héllo "q"', 'varchar', 'ab', 'nm',
		'\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"a": [1, 2]}', '{"b": {"c": null}}', '<a>x</a>',
		'{1,NULL,3}', '{"x,y","",NULL,"q\"z", "1"}', '{{1,2},{3,4}}', '{t,f}', ARRAY['{"k": 1}'::jsonb], '{1.50,NaN}',
		'happy', 7, '12:34:56', '1 day 02:03:04', 12.34, '192.168.0.1/24')`
}

// TestTypes checks the sluice type and the warehouse value of every mapped
// PostgreSQL type, both read methods, and values sluice has no type for.
func TestTypes(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TYPE {s}.mood AS ENUM ('sad', 'happy')`,
		`CREATE DOMAIN {s}.posint AS integer CHECK (VALUE > 0)`,
		typesDDL, typesRow("1"),
		`INSERT INTO {s}.types (id) VALUES (2)`,
		`INSERT INTO {s}.types (id, d, ts, tstz, n_free, n_ps, f8) VALUES (3, '-infinity', 'infinity', 'infinity', 'NaN', 'NaN', 'Infinity')`,
		`INSERT INTO {s}.types (id, d, ts, tstz) VALUES (4, '0044-03-15 BC', '10000-01-01 00:00:00', '1999-12-31 23:59:59.999999-08')`,
	)
	wantTypes := []string{
		"id BIGINT", "b BOOLEAN", "i2 SMALLINT", "i4 INTEGER", "i8 BIGINT", "o BIGINT",
		"f4 FLOAT", "f8 DOUBLE",
		"n_ps DECIMAL(10,2)", "n_big VARCHAR", "n_neg DECIMAL(7,0)",
		"d DATE", "ts TIMESTAMP", "ts3 TIMESTAMP", "tstz TIMESTAMP WITH TIME ZONE",
		"t VARCHAR", "vc VARCHAR", "ch VARCHAR", "nm VARCHAR",
		"by BLOB", "u VARCHAR", "j JSON", "jb JSON", "x VARCHAR",
		"arr_i JSON", "arr_t JSON", "arr_2d JSON", "arr_b JSON", "arr_j JSON", "arr_n JSON",
		"e VARCHAR", "dom INTEGER", "tm VARCHAR", "iv VARCHAR", "money_c VARCHAR", "inet_c VARCHAR",
		"gen BIGINT",
		// A numeric without precision is not declared: the engine adds it
		// when its first value arrives, as DECIMAL(38, the value's scale).
		"n_free DECIMAL(38,20)",
		"_sluice_synced TIMESTAMP WITH TIME ZONE", "_sluice_deleted BOOLEAN",
	}
	wantRows := []string{
		"1|true|-32768|2147483647|-9223372036854775808|4000000000|1.2345678|0.1|12345678.91|123456789012345678901234567890123456789012345.12345|12300|" +
			"2024-02-29|2024-03-01 12:34:56.123456|2024-03-01 12:34:56.789|2024-03-01 10:34:56.5+00|" +
			`héllo "q"|varchar|ab |nm|` + `\x00\xFF\x10|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{"a": [1, 2]}|{"b": {"c": null}}|<a>x</a>|` +
			`[1,null,3]|["x,y","",null,"q\"z","1"]|[[1,2],[3,4]]|[true,false]|[{"k": 1}]|[1.50,"NaN"]|` +
			"happy|7|12:34:56|1 day 02:03:04|$12.34|192.168.0.1/24|-4611686018427387904|3.14159265358979323846|false",
		"2|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|false",
		"3|NULL|NULL|NULL|NULL|NULL|NULL|inf|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|false",
		"4|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|0044-03-15 (BC)|10000-01-01 00:00:00|NULL|2000-01-01 07:59:59.999999+00|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|false",
	}
	for _, m := range []struct {
		name string
		opts postgres.Options
	}{{"copy", postgres.Options{Read: postgres.ReadCopy}}, {"query", postgres.Options{Read: postgres.ReadQuery}}} {
		t.Run(m.name, func(t *testing.T) {
			w := srctest.New(t)
			if err := w.Sync(context.Background(), postgres.ConnectorWith(m.opts), f.cfg(), nil); err != nil {
				t.Fatalf("sync: %v", err)
			}
			srctest.Want(t, "types", w.Types(f.dest("types")), wantTypes)
			srctest.Want(t, "rows", w.Dump(f.dest("types")), wantRows)
			if !strings.Contains(w.Logs.String(), "infinite or NaN") {
				t.Errorf("no warning about the values synced as NULL:\n%s", w.Logs.String())
			}
		})
	}
}
