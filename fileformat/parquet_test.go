package fileformat

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicedata/sluice/internal/contract"
)

// openDuck opens an in-memory DuckDB whose time zone is UTC, so that
// TIMESTAMPTZ values do not depend on the machine.
func openDuck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`SET TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	return db
}

// duckParquet writes the rows of a query to a Parquet file with DuckDB.
func duckParquet(t testing.TB, db *sql.DB, query string, rowGroup int) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "duck.parquet")
	q := fmt.Sprintf(`COPY (%s) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE %d)`, query, p, rowGroup)
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAllRows reads every row, copying the values.
func readAllRows(t testing.TB, rows Rows) ([]Column, [][]any) {
	t.Helper()
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v := rows.Values()
		if len(v) != len(rows.Columns()) {
			t.Fatalf("row %d: %d values for %d columns", len(out)+1, len(v), len(rows.Columns()))
		}
		out = append(out, append([]any(nil), v...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return rows.Columns(), out
}

func readParquetBytes(t testing.TB, b []byte, name string) ([]Column, [][]any) {
	t.Helper()
	rows, err := OpenParquet(bytes.NewReader(b), int64(len(b)), name)
	if err != nil {
		t.Fatal(err)
	}
	return readAllRows(t, rows)
}

const duckTypesQuery = `SELECT
	i::BIGINT AS id,
	CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END AS flag,
	(i % 200 - 100)::TINYINT AS tiny,
	(i * 3 - 3000)::SMALLINT AS small,
	(i * 100000 - 5)::INTEGER AS int32,
	(4294967295 - i)::UINTEGER AS u32,
	18446744073709551615::UBIGINT - i::UBIGINT AS u64,
	(i / 4.0)::FLOAT AS f32,
	(i * 0.5 + 0.125)::DOUBLE AS f64,
	((i * 7 - 5000)::VARCHAR || '.05')::DECIMAL(9,2) AS dec9,
	('-' || i::VARCHAR || '.0042')::DECIMAL(18,4) AS dec18,
	((CASE WHEN i % 2 = 1 THEN '-' ELSE '' END) || i::VARCHAR || '1234567890123456789.0123456789')::DECIMAL(38,10) AS dec38,
	DATE '2000-01-01' + i::INTEGER AS day,
	TIMESTAMP '2020-01-01' + to_microseconds(i * 1000001) AS ts,
	(TIMESTAMP '2020-01-01' + to_microseconds(i * 1000001))::TIMESTAMPTZ AS tstz,
	make_timestamp_ns(1577836800000000000 + i * 1000000007) AS tsns,
	CASE WHEN i % 5 = 0 THEN NULL ELSE 'row ' || i || ' é"\' END AS s,
	('\x00\xFF' || i::VARCHAR)::BLOB AS bin,
	('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID AS uid,
	json_object('k', i, 'arr', [i, i + 1]) AS doc,
	CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN []::INTEGER[] ELSE [i::INTEGER, NULL, i::INTEGER + 1] END AS lst,
	CASE WHEN i % 4 = 0 THEN NULL WHEN i % 4 = 1 THEN {'a': NULL::INTEGER, 'b': 'x' || i} ELSE {'a': i::INTEGER, 'b': 'x' || i} END AS rec,
	MAP(['k' || i, 'z'], [i::BIGINT, NULL]) AS mp,
	[{'p': i::INTEGER, 'q': [1, 2]}, {'p': NULL, 'q': []}] AS recs,
	TIME '01:02:03' + to_microseconds(i) AS tod,
	[[i::INTEGER, NULL], [], NULL] AS ll,
	MAP(['a' || i], [{'x': i::INTEGER, 'y': [i::VARCHAR]}]) AS ms
FROM range(5000) r(i)`

var duckTypesColumns = []Column{
	{Name: "id", Type: contract.Long},
	{Name: "flag", Type: contract.Boolean},
	{Name: "tiny", Type: contract.Short},
	{Name: "small", Type: contract.Short},
	{Name: "int32", Type: contract.Int},
	{Name: "u32", Type: contract.Long},
	{Name: "u64", Type: contract.Decimal, Precision: 20},
	{Name: "f32", Type: contract.Float},
	{Name: "f64", Type: contract.Double},
	{Name: "dec9", Type: contract.Decimal, Precision: 9, Scale: 2},
	{Name: "dec18", Type: contract.Decimal, Precision: 18, Scale: 4},
	{Name: "dec38", Type: contract.Decimal, Precision: 38, Scale: 10},
	{Name: "day", Type: contract.NaiveDate},
	{Name: "ts", Type: contract.NaiveDateTime},
	{Name: "tstz", Type: contract.UTCDateTime},
	{Name: "tsns", Type: contract.NaiveDateTime},
	{Name: "s", Type: contract.String},
	{Name: "bin", Type: contract.Binary},
	{Name: "uid", Type: contract.String},
	{Name: "doc", Type: contract.JSON},
	{Name: "lst", Type: contract.JSON},
	{Name: "rec", Type: contract.JSON},
	{Name: "mp", Type: contract.JSON},
	{Name: "recs", Type: contract.JSON},
	{Name: "tod", Type: contract.String},
	{Name: "ll", Type: contract.JSON},
	{Name: "ms", Type: contract.JSON},
}

// duckTypesRow is what row i of duckTypesQuery must read as.
func duckTypesRow(i int) []any {
	raw := func(s string) any { return json.RawMessage(s) }
	var flag any
	if i%7 != 0 {
		flag = i%2 == 0
	}
	sign := ""
	if i%2 == 1 {
		sign = "-"
	}
	dec38 := sign + strings.TrimLeft(strconv.Itoa(i)+"1234567890123456789", "0") + ".0123456789"
	var s any
	if i%5 != 0 {
		s = fmt.Sprintf("row %d é\"\\", i)
	}
	var lst, rec any
	switch i % 3 {
	case 1:
		lst = raw("[]")
	case 2:
		lst = raw(fmt.Sprintf("[%d,null,%d]", i, i+1))
	}
	switch i % 4 {
	case 1:
		rec = raw(fmt.Sprintf(`{"a":null,"b":"x%d"}`, i))
	case 2, 3:
		rec = raw(fmt.Sprintf(`{"a":%d,"b":"x%d"}`, i, i))
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := base.Add(time.Duration(i*1000001) * time.Microsecond)
	return []any{
		int64(i),
		flag,
		int64(i%200 - 100),
		int64(i*3 - 3000),
		int64(i*100000 - 5),
		int64(4294967295 - i),
		contract.DecimalText(strconv.FormatUint(math.MaxUint64-uint64(i), 10)),
		float64(float32(float64(i) / 4)),
		float64(i)*0.5 + 0.125,
		contract.DecimalText(fmt.Sprintf("%d.05", i*7-5000)),
		contract.DecimalText(fmt.Sprintf("-%d.0042", i)),
		contract.DecimalText(dec38),
		time.Date(2000, 1, 1+i, 0, 0, 0, 0, time.UTC),
		ts,
		ts,
		time.Unix(0, 1577836800000000000+int64(i)*1000000007).UTC(),
		s,
		append([]byte{0, 0xff}, strconv.Itoa(i)...),
		fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
		raw(fmt.Sprintf(`{"k":%d,"arr":[%d,%d]}`, i, i, i+1)),
		lst,
		rec,
		raw(fmt.Sprintf(`{"k%d":%d,"z":null}`, i, i)),
		raw(fmt.Sprintf(`[{"p":%d,"q":[1,2]},{"p":null,"q":[]}]`, i)),
		fmt.Sprintf("01:02:03.%06d", i),
		raw(fmt.Sprintf(`[[%d,null],[],null]`, i)),
		raw(fmt.Sprintf(`{"a%d":{"x":%d,"y":["%d"]}}`, i, i, i)),
	}
}

func duckTypesFile(t testing.TB, db *sql.DB) []byte {
	return duckParquet(t, db, duckTypesQuery, 2048)
}

func TestParquetDuckDBTypes(t *testing.T) {
	db := openDuck(t)
	b := duckTypesFile(t, db)
	cols, rows := readParquetBytes(t, b, "duck.parquet")
	if !reflect.DeepEqual(cols, duckTypesColumns) {
		t.Fatalf("columns:\n got %v\nwant %v", cols, duckTypesColumns)
	}
	if len(rows) != 5000 {
		t.Fatalf("%d rows, want 5000", len(rows))
	}
	for i, got := range rows {
		want := duckTypesRow(i)
		for j := range want {
			if !reflect.DeepEqual(got[j], want[j]) {
				t.Fatalf("row %d, column %s: got %#v (%s), want %#v (%s)", i, cols[j].Name, got[j], pqShow(got[j]), want[j], pqShow(want[j]))
			}
		}
	}
}

func pqShow(v any) string {
	if r, ok := v.(json.RawMessage); ok {
		return string(r)
	}
	return fmt.Sprint(v)
}

func TestParquetInfoCounts(t *testing.T) {
	db := openDuck(t)
	b := duckTypesFile(t, db)
	r := &pqCountingReaderAt{r: bytes.NewReader(b)}
	meta, err := ParquetInfo(r, int64(len(b)), "duck.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Rows != 5000 || !reflect.DeepEqual(meta.Columns, duckTypesColumns) {
		t.Fatalf("meta: %d rows, columns %v", meta.Rows, meta.Columns)
	}
	var sum, bytesSum int64
	for _, g := range meta.RowGroups {
		sum += g.Rows
		bytesSum += g.CompressedBytes
		if g.CompressedBytes <= 0 {
			t.Fatalf("row group without bytes: %+v", g)
		}
	}
	// DuckDB rounds a row group up to its vector size of 2048 rows.
	if len(meta.RowGroups) != 3 || sum != 5000 || meta.RowGroups[0].Rows != 2048 {
		t.Fatalf("row groups %+v", meta.RowGroups)
	}
	if bytesSum >= int64(len(b)) {
		t.Fatalf("row groups claim %d bytes of a %d-byte file", bytesSum, len(b))
	}
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("ParquetInfo made %d reads, want 1 (the tail)", n)
	}

	// Reading the rows: the footer, then one read per row group.
	r = &pqCountingReaderAt{r: bytes.NewReader(b)}
	rows, err := OpenParquet(r, int64(len(b)), "duck.parquet")
	if err != nil {
		t.Fatal(err)
	}
	_, all := readAllRows(t, rows)
	if len(all) != 5000 {
		t.Fatalf("%d rows", len(all))
	}
	if n := r.calls.Load(); n != 4 {
		t.Fatalf("reading made %d reads, want 4 (the footer and 3 row groups)", n)
	}
}

// A row group too large to read in one go is read column by column, with
// the same rows.
func TestParquetLargeRowGroupPath(t *testing.T) {
	b := pgFile(t, 1000, 300)
	_, want := readParquetBytes(t, b, "pg.parquet")
	defer func(old int64) { parquetPrefetchMax = old }(parquetPrefetchMax)
	parquetPrefetchMax = 0
	r := &pqCountingReaderAt{r: bytes.NewReader(b)}
	rows, err := OpenParquet(r, int64(len(b)), "pg.parquet")
	if err != nil {
		t.Fatal(err)
	}
	_, got := readAllRows(t, rows)
	if !reflect.DeepEqual(got, want) {
		t.Fatal("rows differ when read column by column")
	}
	if r.calls.Load() <= 5 {
		t.Fatalf("%d reads: the row groups were not read column by column", r.calls.Load())
	}
	// Splitting a large row group re-chunks it the same way.
	parts := pqSplit(t, b, ParquetSplitOptions{PartSize: int64(len(b)) / 8})
	pqSameRows(t, readParts(t, parts, pgColumns), want)
}

type pqCountingReaderAt struct {
	r     io.ReaderAt
	calls atomic.Int64
}

func (c *pqCountingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls.Add(1)
	return c.r.ReadAt(p, off)
}

// pgRow exercises parquet-go's own writer: logical types through struct
// tags, optional and repeated fields, and a map.
type pgRow struct {
	ID     int64            `parquet:"id"`
	Small  int16            `parquet:"small,int(16)"`
	U32    uint32           `parquet:"u32,uint(32)"`
	U64    uint64           `parquet:"u64,uint(64)"`
	Name   *string          `parquet:"name,optional"`
	Price  int64            `parquet:"price,decimal(2:18)"`
	Big    [16]byte         `parquet:"big,decimal(4:38)"`
	When   time.Time        `parquet:"when,timestamp(millisecond:utc)"`
	Local  int64            `parquet:"local,timestamp(microsecond:local)"`
	Day    int32            `parquet:"day,date"`
	Raw    []byte           `parquet:"raw"`
	Tags   []string         `parquet:"tags,list"`
	Score  *float64         `parquet:"score,optional"`
	Flag   bool             `parquet:"flag"`
	Attrs  map[string]int64 `parquet:"attrs"`
	Inner  *pgInner         `parquet:"inner,optional"`
	Legacy deprecated.Int96 `parquet:"legacy"`
	Nums   []int32          `parquet:"nums"` // a bare repeated field, no LIST
}

type pgInner struct {
	A int32   `parquet:"a"`
	B *string `parquet:"b,optional"`
}

func pgRowOf(i int) pgRow {
	r := pgRow{
		ID:    int64(i),
		Small: int16(i%1000 - 500),
		U32:   math.MaxUint32 - uint32(i),
		U64:   math.MaxUint64 - uint64(i),
		Price: int64(i)*101 - 5000,
		When:  time.UnixMilli(1700000000000 + int64(i)*1001).UTC(),
		Local: 1600000000000000 + int64(i)*7,
		Day:   int32(19000 + i),
		Raw:   []byte{byte(i), 0, 0xfe},
		Flag:  i%3 == 0,
		Attrs: map[string]int64{"n": int64(i)},
	}
	// A 16-byte two's complement: -(i+1) * 10^20 + i, beyond int64.
	v := new(big.Int).Mul(big.NewInt(int64(-(i + 1))), new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil))
	v.Add(v, big.NewInt(int64(i)))
	v.Add(v, new(big.Int).Lsh(big.NewInt(1), 128)) // two's complement
	v.FillBytes(r.Big[:])
	if i%4 != 0 {
		s := fmt.Sprintf("name-%d", i)
		r.Name = &s
	}
	if i%2 == 0 {
		f := float64(i) / 8
		r.Score = &f
	}
	if i%3 != 0 {
		r.Tags = []string{"a", fmt.Sprint(i)}
	}
	if i%5 != 0 {
		b := "b"
		r.Inner = &pgInner{A: int32(i), B: &b}
		if i%5 == 1 {
			r.Inner.B = nil
		}
	}
	// 2000-01-02 03:04:05.000000006: Julian day 2451546.
	nanos := uint64(3*3600+4*60+5)*1e9 + 6
	r.Legacy = deprecated.Int96{uint32(nanos), uint32(nanos >> 32), 2451546 + uint32(i)}
	if i%2 == 1 {
		r.Nums = []int32{int32(i), -1}
	}
	return r
}

func pgRowWant(i int) []any {
	r := pgRowOf(i)
	raw := func(s string) any { return json.RawMessage(s) }
	var name, score, tags, inner any
	if r.Name != nil {
		name = *r.Name
	}
	if r.Score != nil {
		score = *r.Score
	}
	tags = raw("[]") // parquet-go writes an empty slice as an empty list
	if r.Tags != nil {
		tags = raw(fmt.Sprintf(`["a","%d"]`, i))
	}
	if r.Inner != nil {
		inner = raw(fmt.Sprintf(`{"a":%d,"b":"b"}`, i))
		if r.Inner.B == nil {
			inner = raw(fmt.Sprintf(`{"a":%d,"b":null}`, i))
		}
	}
	nums := raw("[]")
	if r.Nums != nil {
		nums = raw(fmt.Sprintf("[%d,-1]", i))
	}
	price := fmt.Sprintf("%d", r.Price)
	neg := strings.HasPrefix(price, "-")
	price = strings.TrimPrefix(price, "-")
	for len(price) < 3 {
		price = "0" + price
	}
	price = price[:len(price)-2] + "." + price[len(price)-2:]
	if neg {
		price = "-" + price
	}
	// -(i+1)*10^20 + i with scale 4.
	big := fmt.Sprintf("-%d%016d.%04d", i, 1e16-1-int64(i)/10000, (10000-int64(i)%10000)%10000)
	if i == 0 {
		big = "-10000000000000000.0000"
	}
	return []any{
		int64(i),
		int64(r.Small),
		int64(r.U32),
		contract.DecimalText(strconv.FormatUint(r.U64, 10)),
		name,
		contract.DecimalText(price),
		contract.DecimalText(big),
		r.When,
		time.UnixMicro(r.Local).UTC(),
		time.Unix(int64(r.Day)*86400, 0).UTC(),
		r.Raw,
		tags,
		score,
		r.Flag,
		raw(fmt.Sprintf(`{"n":%d}`, i)),
		inner,
		time.Date(2000, 1, 2+i, 3, 4, 5, 6, time.UTC),
		nums,
	}
}

var pgColumns = []Column{
	{Name: "id", Type: contract.Long},
	{Name: "small", Type: contract.Short},
	{Name: "u32", Type: contract.Long},
	{Name: "u64", Type: contract.Decimal, Precision: 20},
	{Name: "name", Type: contract.String},
	{Name: "price", Type: contract.Decimal, Precision: 18, Scale: 2},
	{Name: "big", Type: contract.Decimal, Precision: 38, Scale: 4},
	{Name: "when", Type: contract.UTCDateTime},
	{Name: "local", Type: contract.NaiveDateTime},
	{Name: "day", Type: contract.NaiveDate},
	{Name: "raw", Type: contract.Binary},
	{Name: "tags", Type: contract.JSON},
	{Name: "score", Type: contract.Double},
	{Name: "flag", Type: contract.Boolean},
	{Name: "attrs", Type: contract.JSON},
	{Name: "inner", Type: contract.JSON},
	{Name: "legacy", Type: contract.NaiveDateTime},
	{Name: "nums", Type: contract.JSON},
}

// pgFile writes n rows with parquet-go, rowGroup rows per row group.
func pgFile(t testing.TB, n, rowGroup int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pgRow](&buf, parquet.MaxRowsPerRowGroup(int64(rowGroup)))
	batch := make([]pgRow, 0, 100)
	for i := range n {
		batch = append(batch, pgRowOf(i))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := w.Write(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquetGoWriterFile(t *testing.T) {
	b := pgFile(t, 1000, 300)
	meta, err := ParquetInfo(bytes.NewReader(b), int64(len(b)), "pg.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if meta.Rows != 1000 || len(meta.RowGroups) != 4 || meta.RowGroups[3].Rows != 100 {
		t.Fatalf("meta %d rows, groups %+v", meta.Rows, meta.RowGroups)
	}
	cols, rows := readParquetBytes(t, b, "pg.parquet")
	if !reflect.DeepEqual(cols, pgColumns) {
		t.Fatalf("columns:\n got %v\nwant %v", cols, pgColumns)
	}
	if len(rows) != 1000 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, got := range rows {
		want := pgRowWant(i)
		for j := range want {
			if !reflect.DeepEqual(got[j], want[j]) {
				t.Fatalf("row %d, column %s: got %#v (%s), want %#v (%s)", i, cols[j].Name, got[j], pqShow(got[j]), want[j], pqShow(want[j]))
			}
		}
	}
}

func TestParquetEmptyAndNullColumns(t *testing.T) {
	db := openDuck(t)
	b := duckParquet(t, db, `SELECT 1::INTEGER AS a, NULL AS n FROM range(0)`, 2048)
	cols, rows := readParquetBytes(t, b, "empty.parquet")
	if len(rows) != 0 || len(cols) != 2 || cols[0].Type != contract.Int {
		t.Fatalf("columns %v, %d rows", cols, len(rows))
	}
	meta, err := ParquetInfo(bytes.NewReader(b), int64(len(b)), "empty.parquet")
	if err != nil || meta.Rows != 0 {
		t.Fatalf("meta %+v, %v", meta, err)
	}

	b = duckParquet(t, db, `SELECT i AS a, NULL AS n FROM range(3) r(i)`, 2048)
	cols, rows = readParquetBytes(t, b, "nulls.parquet")
	if len(rows) != 3 || rows[2][0] != int64(2) || rows[2][1] != nil {
		t.Fatalf("columns %v, rows %v", cols, rows)
	}
}

func TestParquetCorrupt(t *testing.T) {
	b := pgFile(t, 500, 100)
	open := func(data []byte) error {
		rows, err := OpenParquet(bytes.NewReader(data), int64(len(data)), "bad.parquet")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too small"},
		{"truncated", b[:len(b)/2], "no Parquet footer"},
		{"truncated footer", b[:len(b)-3], "no Parquet footer"},
		{"not parquet", []byte(strings.Repeat("a,b,c\n", 100)), "no Parquet footer"},
		{"footer too long", append(append([]byte("PAR1xxxx"), 0xff, 0xff, 0xff, 0x0f), "PAR1"...), "truncated or corrupt"},
		{"garbage footer", append(append([]byte("PAR1"), bytes.Repeat([]byte{0xee}, 100)...), 100, 0, 0, 0, 'P', 'A', 'R', '1'), "bad.parquet"},
		{"encrypted", append(append([]byte{}, b[:len(b)-4]...), "PARE"...), "encrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := open(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.parquet") {
				t.Fatalf("error %v, want one naming bad.parquet and saying %q", err, tc.want)
			}
			if _, err := ParquetInfo(bytes.NewReader(tc.data), int64(len(tc.data)), "bad.parquet"); err == nil {
				t.Fatal("ParquetInfo: no error")
			}
		})
	}

	// Data pages overwritten: the footer is fine, reading fails with an
	// error, not a panic.
	bad := append([]byte(nil), b...)
	for i := 4; i < 2000; i++ {
		bad[i] = 0xff
	}
	if err := open(bad); err == nil || !strings.Contains(err.Error(), "bad.parquet") {
		t.Fatalf("overwritten pages: %v", err)
	}

	// A source that fails: the error says so.
	failing := &pqFailingReaderAt{r: bytes.NewReader(b), after: 1}
	rows, err := OpenParquet(failing, int64(len(b)), "bad.parquet")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "bad.parquet") {
		t.Fatalf("failing source: %v", err)
	}

	// Random damage anywhere: never a panic; wherever the damage is
	// noticed, the error names the file.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		bad := append([]byte(nil), b...)
		for range 1 + rng.IntN(8) {
			bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
		}
		if err := open(bad); err != nil && !strings.Contains(err.Error(), "bad.parquet") {
			t.Fatalf("error without the file name: %v", err)
		}
		if _, err := ParquetInfo(bytes.NewReader(bad), int64(len(bad)), "bad.parquet"); err != nil && !strings.Contains(err.Error(), "bad.parquet") {
			t.Fatalf("error without the file name: %v", err)
		}
	}
	// DuckDB writes no page checksums: damage reaches the decoders.
	duck := duckTypesFile(t, openDuck(t))
	for range 100 {
		bad := append([]byte(nil), duck...)
		for range 1 + rng.IntN(8) {
			bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
		}
		if err := open(bad); err != nil && !strings.Contains(err.Error(), "bad.parquet") {
			t.Fatalf("error without the file name: %v", err)
		}
	}
}

var errInjected = errors.New("injected failure")

type pqFailingReaderAt struct {
	r     io.ReaderAt
	after int64
	calls atomic.Int64
}

func (f *pqFailingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if f.calls.Add(1) > f.after {
		return 0, errInjected
	}
	return f.r.ReadAt(p, off)
}

type benchRow struct {
	ID    int64     `parquet:"id"`
	Name  string    `parquet:"name"`
	Price int64     `parquet:"price,decimal(2:18)"`
	When  time.Time `parquet:"when,timestamp(microsecond:utc)"`
	Score *float64  `parquet:"score,optional"`
	Flag  bool      `parquet:"flag"`
}

// benchParquet writes n flat rows, rowGroup rows per row group, snappy
// compressed as most writers do.
func benchParquet(b *testing.B, n, rowGroup int) []byte {
	b.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[benchRow](&buf, parquet.MaxRowsPerRowGroup(int64(rowGroup)), parquet.Compression(&parquet.Snappy))
	batch := make([]benchRow, 1000)
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			k := i + j
			batch[j] = benchRow{ID: int64(k), Name: "customer-" + strconv.Itoa(k%5000), Price: int64(k % 100000), When: time.UnixMicro(1700000000000000 + int64(k)*1000).UTC(), Flag: k%2 == 0}
			if k%3 != 0 {
				f := float64(k) / 7
				batch[j].Score = &f
			}
		}
		if _, err := w.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// go test -run '^$' -bench BenchmarkParquetRead -benchtime 3x ./fileformat
func BenchmarkParquetRead(b *testing.B) {
	for _, bc := range []struct {
		name string
		file func(*testing.B) ([]byte, int)
	}{
		{"flat", func(b *testing.B) ([]byte, int) { return benchParquet(b, 1_000_000, 128_000), 1_000_000 }},
		{"nested", func(b *testing.B) ([]byte, int) { return pgFile(b, 200_000, 50_000), 200_000 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data, n := bc.file(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rows, err := OpenParquet(bytes.NewReader(data), int64(len(data)), "bench.parquet")
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for rows.Next() {
					got++
				}
				if err := rows.Err(); err != nil || got != n {
					b.Fatalf("%d rows, %v", got, err)
				}
				rows.Close()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// Nested shapes older writers produce, assembled from hand-made levels.
func TestParquetLegacyNestedShapes(t *testing.T) {
	i32 := thrift.New(format.Int32)
	str := thrift.New(format.ByteArray)
	req, opt, rep := thrift.New(format.Required), thrift.New(format.Optional), thrift.New(format.Repeated)
	kids := func(n int32) thrift.Null[int32] { return thrift.New(n) }
	list, mapCT, utf8 := thrift.New(deprecated.List), thrift.New(deprecated.Map), thrift.New(deprecated.UTF8)
	schema := []format.SchemaElement{
		{Name: "root", NumChildren: kids(3)},
		// A list whose repeated group "array" is the element itself.
		{Name: "l", RepetitionType: opt, NumChildren: kids(1), ConvertedType: list},
		{Name: "array", RepetitionType: rep, NumChildren: kids(2)},
		{Name: "x", RepetitionType: req, Type: i32},
		{Name: "y", RepetitionType: opt, Type: i32},
		// A two-level list of primitives.
		{Name: "m", RepetitionType: req, NumChildren: kids(1), ConvertedType: list},
		{Name: "element", RepetitionType: rep, Type: i32},
		// A map with integer keys.
		{Name: "mp", RepetitionType: opt, NumChildren: kids(1), ConvertedType: mapCT},
		{Name: "key_value", RepetitionType: rep, NumChildren: kids(2)},
		{Name: "key", RepetitionType: req, Type: i32},
		{Name: "value", RepetitionType: opt, Type: str, ConvertedType: utf8},
	}
	plan, err := newPQPlan(schema)
	if err != nil {
		t.Fatal(err)
	}
	r := &parquetRows{
		pf:     &parquetFile{plan: plan},
		name:   "legacy.parquet",
		vals:   make([]any, len(plan.fields)),
		cursor: make([][]parquet.Value, plan.leaves),
		pos:    make([]int, plan.leaves),
	}
	v := func(x parquet.Value, rep, def, col int) parquet.Value { return x.Level(rep, def, col) }
	null := parquet.NullValue()
	for _, tc := range []struct {
		row  parquet.Row
		want []any
	}{
		{
			parquet.Row{
				v(parquet.Int32Value(1), 0, 2, 0), v(parquet.Int32Value(3), 1, 2, 0),
				v(parquet.Int32Value(2), 0, 3, 1), v(null, 1, 2, 1),
				v(parquet.Int32Value(5), 0, 1, 2), v(parquet.Int32Value(6), 1, 1, 2),
				v(parquet.Int32Value(1), 0, 2, 3), v(parquet.Int32Value(2), 1, 2, 3),
				v(parquet.ByteArrayValue([]byte("a")), 0, 3, 4), v(null, 1, 2, 4),
			},
			[]any{json.RawMessage(`[{"x":1,"y":2},{"x":3,"y":null}]`), json.RawMessage(`[5,6]`), json.RawMessage(`{"1":"a","2":null}`)},
		},
		{
			parquet.Row{
				v(null, 0, 0, 0), v(null, 0, 0, 1), // l is null
				v(null, 0, 0, 2),                   // m is empty
				v(null, 0, 1, 3), v(null, 0, 1, 4), // mp is empty
			},
			[]any{nil, json.RawMessage(`[]`), json.RawMessage(`{}`)},
		},
	} {
		if err := r.convert(tc.row); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.vals, tc.want) {
			t.Fatalf("got %s, want %s", fmtVals(r.vals), fmtVals(tc.want))
		}
	}
	// Levels that do not add up are an error naming the file, not a panic.
	for _, row := range []parquet.Row{
		{v(parquet.Int32Value(1), 0, 2, 0)},
		{v(parquet.Int32Value(1), 0, 2, 0), v(parquet.Int32Value(2), 0, 3, 1), v(parquet.Int32Value(5), 0, 1, 2), v(parquet.Int32Value(5), 0, 1, 2), v(null, 0, 1, 3), v(null, 0, 1, 4)},
		{v(parquet.Int32Value(1), 0, 2, 0), v(parquet.Int32Value(2), 2, 3, 1), v(parquet.Int32Value(5), 0, 1, 2), v(null, 0, 1, 3), v(null, 0, 1, 4)},
	} {
		if err := r.convert(row); err == nil || !strings.Contains(err.Error(), "legacy.parquet") {
			t.Fatalf("bad levels %v: error %v", row, err)
		}
	}
}

func fmtVals(vals []any) string {
	var s []string
	for _, v := range vals {
		s = append(s, pqShow(v))
	}
	return strings.Join(s, " | ")
}
