package files

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// edgeCSV holds the CSV edge cases: a BOM, quotes, doubled quotes, line
// ends inside quotes (LF and CRLF), empty fields against quoted empty
// strings, spaces around typed values, codes with leading zeros, dates,
// exact decimals, and datetimes in every form fileformat reads.
const edgeCSV = "\ufeffid,name,note,amount,ratio,flag,day,naive,utc,code,big\n" +
	"1,\"Smith, Ann\",\"she said \"\"hi\"\"\",12.50,0.5,true,2024-03-01,2024-03-01 10:00:00,2024-03-01T10:00:00Z,007,9223372036854775807\n" +
	"2,\"multi\nline\",\"crlf\r\ninside\",-3.00,1e3,FALSE,2024-02-29,2024-03-01T10:00,2024-03-01 10:00:00+02:00,010,-9223372036854775808\n" +
	"3,,\"\",  4.25 , -2.5 , True ,2000-01-01,2024-03-01 10:00:00.123456,2024-03-01 10:00:00.5+0530,0,0\n" +
	"4,\" padded \",x,0.00,.5,false,1999-12-31,2024-03-01t23:59:59.1234567,2024-03-01T10:00:00.1234567z,,1\n" +
	"5,\"\",\"\",,,,,,,\"\",\n" +
	"6,ünïcødé ✓,\"a,b;c|d\",+7.10,+0.0,true,2024-01-31,2024-03-01 00:00,2024-03-01T00:00-01,x,+42\n"

// writeCorpus writes a folder with every kind of table the fast path may
// or may not take.
func writeCorpus(t testing.TB, root string) {
	t.Helper()
	writeFile(t, filepath.Join(root, "edge.csv"), edgeCSV)
	writeFile(t, filepath.Join(root, "crlf.csv"), strings.ReplaceAll("a,b,c\n1,\"x\",2024-01-01\n2,\"y\nz\",2024-01-02\n\n3,,\n", "\n", "\r\n"))
	writeFile(t, filepath.Join(root, "semi.csv"), "a;b;c\n1;2,5;x\n2;3,5;y\n")
	writeFile(t, filepath.Join(root, "tabbed.tsv"), "a\tb\n1\tx y\n2\t\"q\"\n")
	writeFile(t, filepath.Join(root, "noheader.csv"), "1,2.5,2024-01-01\n2,3.5,2024-01-02\n")
	writeGzip(t, filepath.Join(root, "zipped.csv.gz"), "id,word\n1,alpha\n2,\"be\nta\"\n3,gamma\n")
	writeFile(t, filepath.Join(root, "one.csv"), "only\n1\n\n2\n")
	writeFile(t, filepath.Join(root, "lines.jsonl"), `{"a": 1, "b": "x"}`+"\n"+`{"a": 2, "c": [1, 2]}`+"\n")

	// A column of numbers with text after the sample: fileformat turns
	// it to STRING, so the fast path must decline.
	var w strings.Builder
	w.WriteString("id,v\n")
	for i := 1; i <= 1100; i++ {
		fmt.Fprintf(&w, "%d,%d\n", i, i*3)
	}
	w.WriteString("1101,n/a\n1102, 7 \n")
	writeFile(t, filepath.Join(root, "widen.csv"), w.String())

	// A Hive-partitioned folder of CSV files, with a NULL partition.
	writeFile(t, filepath.Join(root, "events", "date=2024-03-01", "region=eu", "part-0.csv"), "id,what\n1,open\n2,close\n")
	writeFile(t, filepath.Join(root, "events", "date=2024-03-02", "region=us", "part-0.csv"), "id,what\n3,\"o,pen\"\n")
	writeFile(t, filepath.Join(root, "events", "date=2024-03-02", "region=__HIVE_DEFAULT_PARTITION__", "part-0.csv"), "id,what\n4,\n")

	// Keyed tables: duplicate keys within a file and across files.
	writeFile(t, filepath.Join(root, "dups.csv"), "id,v\n1,a\n2,b\n1,c\n3,d\n2,e\n")
	writeFile(t, filepath.Join(root, "kfolder", "a.csv"), "k1,k2,v\nx,1,first\ny,2,first\n")
	writeFile(t, filepath.Join(root, "kfolder", "b.csv"), "k1,k2,v\nx,1,second\nz,3,second\nz,3,third\n")

	null := func(i int, expr string) string {
		return fmt.Sprintf("CASE WHEN i %% 10 = %d THEN NULL ELSE %s END", i, expr)
	}
	// Parquet of every type the fast path reads, several row groups.
	fast := []string{
		"i AS id",
		null(1, "i % 2 = 0") + " AS b",
		null(2, "(i % 100)::TINYINT") + " AS ti",
		null(3, "(i * 3)::SMALLINT") + " AS si",
		null(4, "(i * 7)::INTEGER") + " AS ii",
		null(5, "(i * 1000003)::BIGINT") + " AS bi",
		null(6, "(i % 200)::UTINYINT") + " AS uti",
		null(7, "(i * 5)::USMALLINT") + " AS usi",
		null(8, "(i * 11)::UINTEGER") + " AS ui",
		null(9, "(18446744073709551615 - i * 13)::UBIGINT") + " AS ubi",
		null(0, "(i / 7.0)::FLOAT") + " AS f",
		null(1, "(i / 3.0)::DOUBLE") + " AS d",
		null(2, "(i * 1.25)::DECIMAL(10,2)") + " AS dec",
		null(3, "(i * 1.0000000001)::DECIMAL(38,10)") + " AS dec38",
		null(4, "DATE '2024-01-01' + i::INTEGER") + " AS dt",
		null(5, "TIMESTAMP '2024-01-01 00:00:00' + to_seconds(i * 3601) + to_microseconds(i)") + " AS ts",
		null(6, "TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i * 61)") + " AS tstz",
		null(7, "(TIMESTAMP '2024-01-01' + to_milliseconds(i * 1001))::TIMESTAMP_MS") + " AS tsms",
		null(8, "'text ' || i || CASE WHEN i % 3 = 0 THEN '' ELSE ' ✓' END") + " AS s",
		null(9, "('blob' || i)::BLOB") + " AS bl",
		null(0, "('{\"k\": ' || i || ', \"a\": [1, 2]}')::JSON") + " AS j",
	}
	// And the types it leaves to the row-by-row path.
	other := append(slices.Clone(fast),
		null(1, "TIME '12:30:00' + to_microseconds(i * 1000)")+" AS tm",
		null(2, "uuid()")+" AS u",
		null(3, "TIMESTAMP_NS '2024-01-01 00:00:00.123456789' + to_seconds(i)")+" AS tsns",
		null(4, "[i, i + 1]")+" AS l",
		null(5, "{'a': i, 'b': 'x' || i}")+" AS st",
		null(6, "MAP {'k': i}")+" AS m",
	)
	duckExec(t,
		"COPY (SELECT "+strings.Join(fast, ", ")+" FROM range(1000) t(i)) TO '"+filepath.Join(root, "fast.parquet")+"' (ROW_GROUP_SIZE 100)",
		"COPY (SELECT "+strings.Join(other, ", ")+" FROM range(1000) t(i)) TO '"+filepath.Join(root, "alltypes.parquet")+"' (ROW_GROUP_SIZE 128)",
	)
	// A Hive-partitioned Parquet folder.
	if err := os.MkdirAll(filepath.Join(root, "sales"), 0o755); err != nil {
		t.Fatal(err)
	}
	duckExec(t, "COPY (SELECT i AS id, i % 3 AS year, (i * 1.5)::DECIMAL(8,2) AS amount FROM range(300) t(i)) TO '"+filepath.Join(root, "sales")+"' (FORMAT parquet, PARTITION_BY (year))")
}

// corpusConfig keys dups and kfolder; every other table is appended.
func corpusConfig(root, fast string) map[string]string {
	return cfgFor(root, "fast_path", fast, "primary_key", `{"dups": "id", "kfolder": "k1,k2"}`, "checkpoint_rows", "400")
}

// TestFastPathSameRows syncs one folder with the fast path and without it,
// then changes it and syncs again, and compares the warehouses row by row,
// every column but _sluice_synced.
func TestFastPathSameRows(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	writeCorpus(t, root)
	fastDB, slowDB := filepath.Join(dir, "fast.db"), filepath.Join(dir, "slow.db")

	compare := func(round string) {
		t.Helper()
		fc, sc := openWarehouse(t, fastDB), openWarehouse(t, slowDB)
		defer fc.Close()
		defer sc.Close()
		for _, table := range []string{"edge", "crlf", "semi", "tabbed", "noheader", "zipped", "one", "lines", "widen", "events", "dups", "kfolder", "fast", "alltypes", "sales"} {
			f, s := dump(t, fc, table), dump(t, sc, table)
			if len(f) == 0 {
				t.Errorf("%s: table %s is empty", round, table)
			}
			if !slices.Equal(f, s) {
				t.Errorf("%s: table %s differs:\nfast path:\n%s\nrow by row:\n%s", round, table, strings.Join(diff(f, s), "\n"), strings.Join(diff(s, f), "\n"))
			}
			if ft, st := columnTypes(t, fc, table), columnTypes(t, sc, table); !slices.Equal(ft, st) {
				t.Errorf("%s: table %s column types differ:\nfast path: %v\nrow by row: %v", round, table, ft, st)
			}
		}
	}

	fast := syncDir(t, fastDB, corpusConfig(root, "true"), syncOpts{})
	slow := syncDir(t, slowDB, corpusConfig(root, "false"), syncOpts{})
	if fast.err != nil || slow.err != nil {
		t.Fatalf("sync: fast path: %v; row by row: %v", fast.err, slow.err)
	}
	if slow.loads != 0 {
		t.Errorf("fast_path false loaded %d files with the reader", slow.loads)
	}
	// Every CSV and Parquet file but widen.csv, one.csv and
	// alltypes.parquet goes the fast way.
	if fast.loads != 16 {
		t.Errorf("the reader loaded %d files, want 16; declined: %q", fast.loads, fast.declined)
	}
	for _, want := range []string{"widen.csv: a value does not read", "one.csv: a CSV file of one column", "alltypes.parquet: column \"tm\""} {
		if !slices.ContainsFunc(fast.declined, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no file declined as %q; declined: %q", want, fast.declined)
		}
	}
	for table, c := range slow.counts {
		if fast.counts[table] != c {
			t.Errorf("table %s: counts %+v with the fast path, %+v row by row", table, fast.counts[table], c)
		}
	}
	compare("first sync")

	// Changes: a shorter edge.csv (rows beyond soft-deleted), a changed
	// keyed file, a new partition, a rewritten Parquet file.
	writeFile(t, filepath.Join(root, "edge.csv"), strings.Join(strings.SplitAfter(edgeCSV, "\n")[:2], "")+"9,changed,,1.00,1e2,false,2024-05-05,2024-05-05 05:05,2024-05-05T05:05Z,z,5\n")
	writeFile(t, filepath.Join(root, "kfolder", "b.csv"), "k1,k2,v\nx,1,changed\ny,2,changed\nw,9,new\n")
	writeFile(t, filepath.Join(root, "events", "date=2024-03-03", "region=eu", "part-0.csv"), "id,what\n5,late\n")
	duckExec(t, "COPY (SELECT i AS id, 'v2 ' || i AS s FROM range(50) t(i)) TO '"+filepath.Join(root, "fast.parquet")+"'")
	for _, p := range []string{"edge.csv", "kfolder/b.csv", "fast.parquet"} {
		touch(t, filepath.Join(root, p), 2e9)
	}
	fast = syncDir(t, fastDB, corpusConfig(root, "true"), syncOpts{})
	slow = syncDir(t, slowDB, corpusConfig(root, "false"), syncOpts{})
	if fast.err != nil || slow.err != nil {
		t.Fatalf("second sync: fast path: %v; row by row: %v", fast.err, slow.err)
	}
	if fast.loads != 4 {
		t.Errorf("second sync: the reader loaded %d files, want 4; declined: %q", fast.loads, fast.declined)
	}
	compare("second sync")
}

// diff lists the lines of a that b lacks.
func diff(a, b []string) []string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "  "+l)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("  … and %d more", len(out)-20))
	}
	return out
}

// TestFastPathAfterSample puts one value after the rows the CSV reader
// sniffs types from, for many values of each type: the fast path must
// load exactly what upserting gives, and decline the file where fileformat
// widens the column.
func TestFastPathAfterSample(t *testing.T) {
	type tc struct {
		typ     string // a value of the sniffed type, repeated for the sample
		value   string // written as is (quotes included)
		decline bool
	}
	cases := []tc{
		{"12", "+5", false}, {"12", " 42\t", false}, {"12", "-0", false}, {"12", `""`, false}, {"12", `"  "`, false}, {"12", "-9223372036854775808", false},
		{"12", "007", true}, {"12", "1e3", true}, {"12", "9223372036854775808", true}, {"12", "1_000", true}, {"12", "0x10", true}, {"12", "4.0", true}, {"12", `"4\n"`, true},
		{"1.5e1", ".5", false}, {"1.5e1", "5.", false}, {"1.5e1", "-1E-3", false}, {"1.5e1", " 2.5 ", false}, {"1.5e1", "1e308", false}, {"1.5e1", "0", false},
		{"1.5e1", "1e400", true}, {"1.5e1", "inf", true}, {"1.5e1", "NaN", true}, {"1.5e1", "01.5", true}, {"1.5e1", `"1,5"`, true}, {"1.5e1", "- 1", true},
		{"1.25", "+1.20", false}, {"1.25", "7", false}, {"1.25", " -0.05 ", false}, {"1.25", "1.234", true}, {"1.25", "-.5", true}, {"1.25", "00.5", true},
		{"true", "TRUE", false}, {"true", " False ", false}, {"true", "t", true}, {"true", "1", true}, {"true", "yes", true},
		{"2024-01-02", " 2024-02-29 ", false}, {"2024-01-02", "2024-1-1", true}, {"2024-01-02", "2023-02-29", true}, {"2024-01-02", "2024-01-02T00:00", true},
		{"2024-01-02 10:00:00", "2024-01-02", false}, {"2024-01-02 10:00:00", "2024-01-02t10:00", false}, {"2024-01-02 10:00:00", "2024-01-02 10:00:00.1234567", false},
		{"2024-01-02 10:00:00", "2024-01-02 24:00:00", true}, {"2024-01-02 10:00:00", "2024-01-02 10:00:60", true}, {"2024-01-02 10:00:00", "2024-01-02 10:00:00Z", true},
		{"2024-01-02T10:00:00Z", "2024-01-02 10:00+05:30", false}, {"2024-01-02T10:00:00Z", "2024-01-02T10:00:00.000000001z", false}, {"2024-01-02T10:00:00Z", "2024-01-02 10:00:00-0130", false},
		{"2024-01-02T10:00:00Z", "2024-01-02 10:00:00", true}, {"2024-01-02T10:00:00Z", "2024-01-02 10:00:00+24", true}, {"2024-01-02T10:00:00Z", "2024-01-02", true},
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for i, c := range cases {
		var b strings.Builder
		b.WriteString("k,v\n")
		for r := 0; r < 1000; r++ {
			fmt.Fprintf(&b, "%d,%s\n", r, c.typ)
		}
		fmt.Fprintf(&b, "1000,%s\n1001,%s\n", c.value, c.typ)
		writeFile(t, filepath.Join(root, fmt.Sprintf("case%02d.csv", i)), b.String())
	}
	fastDB, slowDB := filepath.Join(dir, "fast.db"), filepath.Join(dir, "slow.db")
	fast := syncDir(t, fastDB, cfgFor(root, "fast_path", "true"), syncOpts{})
	slow := syncDir(t, slowDB, cfgFor(root, "fast_path", "false"), syncOpts{})
	if fast.err != nil || slow.err != nil {
		t.Fatalf("fast path: %v; row by row: %v", fast.err, slow.err)
	}
	fc, sc := openWarehouse(t, fastDB), openWarehouse(t, slowDB)
	defer fc.Close()
	defer sc.Close()
	for i, c := range cases {
		table := fmt.Sprintf("case%02d", i)
		declined := slices.ContainsFunc(fast.declined, func(s string) bool { return strings.HasPrefix(s, table+".csv:") })
		if declined != c.decline {
			t.Errorf("%s (%q after %q): declined %v, want %v", table, c.value, c.typ, declined, c.decline)
		}
		q := `SELECT coalesce(v::VARCHAR, 'NULL') || ' ' || typeof(v) FROM files.` + table + ` WHERE k = 1000`
		if f, s := query(t, fc, q), query(t, sc, q); f != s {
			t.Errorf("%s (%q after %q): fast path %q, row by row %q", table, c.value, c.typ, f, s)
		}
		if f, s := dump(t, fc, table), dump(t, sc, table); !slices.Equal(f, s) {
			t.Errorf("%s differs: %q", table, diff(f, s))
		}
	}
}
