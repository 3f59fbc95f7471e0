package contract

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"testing"
)

// memDS is an in-memory dataset with every capability. Its writer stages
// rows and commits them in Close, as RowWriter asks.
type memDS struct {
	info    DatasetInfo
	schema  []Column
	parts   map[string][]Row
	order   []string
	closed  int
	aborted int
	listed  []string // overrides order in ListPartitions when set
}

func (m *memDS) Info() DatasetInfo { return m.info }

func (m *memDS) ReadSchema(context.Context, Config) ([]Column, error) { return m.schema, nil }

func (m *memDS) ReadRows(ctx context.Context, req ReadRequest, emit func(Row) error) error {
	ids := m.order
	if !req.Partition.All() {
		ids = []string{req.Partition.ID}
	}
	for _, id := range ids {
		for _, r := range m.parts[id] {
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memDS) ListPartitions(context.Context, Config) ([]string, error) {
	if m.listed != nil {
		return m.listed, nil
	}
	return m.order, nil
}

func (m *memDS) PartitionExists(_ context.Context, _ Config, p Partition) (bool, error) {
	_, ok := m.parts[p.ID]
	return ok, nil
}

func (m *memDS) CountRecords(_ context.Context, _ Config, p Partition) (int64, error) {
	if !p.All() {
		return int64(len(m.parts[p.ID])), nil
	}
	var n int64
	for _, rows := range m.parts {
		n += int64(len(rows))
	}
	return n, nil
}

type memWriter struct {
	m      *memDS
	req    WriteRequest
	staged []Row
}

func (m *memDS) OpenWriter(_ context.Context, req WriteRequest) (Writer, error) {
	return &memWriter{m: m, req: req}, nil
}

func (w *memWriter) Write(_ context.Context, row WriteRow) error {
	if row.Values["v"] == "fail" {
		return errors.New("the source refused the row")
	}
	if row.Values["v"] == "panic" {
		panic("writer panic")
	}
	r := Row{}
	for k, v := range row.Values {
		r[k] = v
	}
	for k, v := range row.Extra {
		r["extra:"+k] = v
	}
	w.staged = append(w.staged, r)
	return nil
}

func (w *memWriter) Close(context.Context) error {
	w.m.closed++
	id := w.req.Partition.ID
	if _, ok := w.m.parts[id]; !ok {
		w.m.order = append(w.m.order, id)
	}
	if w.req.Mode == Overwrite {
		w.m.parts[id] = w.staged
	} else {
		w.m.parts[id] = append(w.m.parts[id], w.staged...)
	}
	return nil
}

func (w *memWriter) Abort(context.Context) error { w.m.aborted++; return nil }

func newMem() *memDS {
	return &memDS{
		info: DatasetInfo{Name: "mem", Partitioning: dayStation, Append: true,
			Params: Params{{Name: "token", Type: ParamSecret, Mandatory: true}}},
		schema: []Column{{Name: "id", Type: Long}, {Name: "v", Type: String}},
		parts: map[string][]Row{
			"2024-03-01|FR": {{"id": 1, "v": "a"}, {"id": 2, "v": "b"}},
			"2024-03-02|FR": {{"id": 3, "v": "c"}},
		},
		order: []string{"2024-03-01|FR", "2024-03-02|FR"},
	}
}

var cfg = Config{"token": "t0k"}

func open(t *testing.T, d Dataset) *DatasetHandle {
	t.Helper()
	h, err := OpenDataset(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readAll(t *testing.T, h *DatasetHandle, opts ReadOptions) ([]Row, ReadResult) {
	t.Helper()
	var rows []Row
	res, err := h.Read(context.Background(), opts, func(r Row) error { rows = append(rows, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return rows, res
}

func rowsOf(rows ...Row) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestOpenDatasetChecksConfiguration(t *testing.T) {
	_, err := OpenDataset(newMem(), Config{})
	if err == nil || !strings.Contains(err.Error(), `dataset "mem": configuration: parameter "token" is mandatory`) {
		t.Errorf("missing mandatory parameter: %v", err)
	}
	m := newMem()
	m.info.Partitioning = Partitioning{{Name: "a"}, {Name: "a"}}
	if _, err := OpenDataset(m, cfg); err == nil || !strings.Contains(err.Error(), `two dimensions are named "a"`) {
		t.Errorf("bad partitioning: %v", err)
	}
	h := open(t, newMem())
	if got := h.Secrets(); !reflect.DeepEqual(got, []string{"t0k"}) {
		t.Errorf("Secrets = %q", got)
	}
}

func TestRead(t *testing.T) {
	h := open(t, newMem())
	rows, res := readAll(t, h, ReadOptions{Partition: "2024-03-01|FR"})
	if !reflect.DeepEqual(rows, []Row{{"id": 1, "v": "a"}, {"id": 2, "v": "b"}}) || res.Rows != 2 || res.Inferred {
		t.Errorf("partition: %v, %+v", rows, res)
	}
	if rows, _ := readAll(t, h, ReadOptions{}); len(rows) != 3 {
		t.Errorf("whole dataset: %v", rows)
	}
	if rows, res := readAll(t, h, ReadOptions{Limit: 2}); len(rows) != 2 || res.Rows != 2 {
		t.Errorf("limit 2: %v", rows)
	}
	if rows, _ := readAll(t, h, ReadOptions{Limit: -1}); len(rows) != 3 {
		t.Errorf("limit -1: %v", rows)
	}
	_, err := h.Read(context.Background(), ReadOptions{Partition: "2024-03-01"}, func(Row) error { return nil })
	if !errors.Is(err, ErrBadPartitionID) {
		t.Errorf("malformed id: %v", err)
	}

	// fn's own error comes back as it is.
	stop := errors.New("enough")
	res, err = h.Read(context.Background(), ReadOptions{}, func(Row) error { return stop })
	if err != stop || res.Rows != 1 {
		t.Errorf("fn error: %v after %d rows", err, res.Rows)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Read(ctx, ReadOptions{}, func(Row) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// greedy ignores emit's errors and the limit: the runtime must stop
// delivering anyway.
type greedy struct{ emitted, refused int }

func (g *greedy) Info() DatasetInfo { return DatasetInfo{Name: "greedy"} }

func (g *greedy) ReadRows(_ context.Context, _ ReadRequest, emit func(Row) error) error {
	for i := range 50 {
		g.emitted++
		if emit(Row{"i": i}) != nil {
			g.refused++
		}
	}
	return nil
}

func TestReadLimitIgnoredByConnector(t *testing.T) {
	g := &greedy{}
	rows, res := readAll(t, open(t, g), ReadOptions{Limit: 5})
	if len(rows) != 5 || res.Rows != 5 || rows[4]["i"] != 4 {
		t.Errorf("got %d rows (%v), want the first 5", len(rows), rows)
	}
	if g.emitted != 50 || g.refused != 46 {
		t.Errorf("emitted %d, refused %d; want 50 and 46 (the 5th row is taken, then emit says stop)", g.emitted, g.refused)
	}
}

type rowsDS struct {
	info DatasetInfo
	rows []Row
}

func (d *rowsDS) Info() DatasetInfo { return d.info }

func (d *rowsDS) ReadRows(_ context.Context, _ ReadRequest, emit func(Row) error) error {
	for _, r := range d.rows {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

func TestSchemaInference(t *testing.T) {
	d := &rowsDS{info: DatasetInfo{Name: "r", SchemaSample: 2}, rows: []Row{
		{"a": 1, "n": nil},
		{"a": 2.5, "b": "x", "d": DecimalText("1.5")},
		{"c": true, "d": DecimalText("1.25")}, // after the sample: c is still kept
	}}
	h := open(t, d)
	cols, inferred, err := h.Schema(context.Background())
	want := []Column{{Name: "a", Type: Double}, {Name: "n"}, {Name: "b", Type: String}, {Name: "d", Type: Decimal, Precision: 38, Scale: 1}}
	if err != nil || !inferred || !reflect.DeepEqual(cols, want) {
		t.Errorf("Schema = %v, %v, %v\nwant %v", cols, inferred, err, want)
	}
	rows, res := readAll(t, h, ReadOptions{})
	want = append(want, Column{Name: "c", Type: Boolean})
	want[3].Scale = 2
	if len(rows) != 3 || !reflect.DeepEqual(res.Schema, want) || !res.Inferred {
		t.Errorf("Read schema = %v\nwant %v", res.Schema, want)
	}

	// The default sample is 1,000 rows: row 1,001 adds no column under a
	// strict schema.
	d = &rowsDS{info: DatasetInfo{Name: "r", StrictSchema: true}}
	for i := range 1001 {
		d.rows = append(d.rows, Row{"i": i})
	}
	d.rows[999]["late"] = "in the sample"
	d.rows[1000]["later"] = "after it"
	rows, res = readAll(t, open(t, d), ReadOptions{})
	if !reflect.DeepEqual(res.Schema, []Column{{Name: "i", Type: Long}, {Name: "late", Type: String}}) || !reflect.DeepEqual(res.Dropped, map[string]int64{"later": 1}) {
		t.Errorf("strict inferred: schema %v, dropped %v", res.Schema, res.Dropped)
	}
	if _, ok := rows[1000]["later"]; ok || d.rows[1000]["later"] != "after it" {
		t.Errorf("strict: the dropped value is delivered, or the connector's row changed")
	}
}

func TestStrictDeclaredSchema(t *testing.T) {
	m := newMem()
	m.info.StrictSchema = true
	m.parts["2024-03-01|FR"][1]["junk"] = 9
	m.parts["2024-03-02|FR"][0]["junk"] = 8
	m.parts["2024-03-02|FR"][0]["more"] = 7
	rows, res := readAll(t, open(t, m), ReadOptions{})
	if !reflect.DeepEqual(res.Dropped, map[string]int64{"junk": 2, "more": 1}) {
		t.Errorf("dropped = %v", res.Dropped)
	}
	for _, r := range rows {
		if len(r) != 2 {
			t.Errorf("row %v keeps columns outside the schema", r)
		}
	}
	// Without strict, they are kept and added to the schema.
	m.info.StrictSchema = false
	rows, res = readAll(t, open(t, m), ReadOptions{})
	if len(rows[2]) != 4 || len(res.Schema) != 4 || res.Dropped != nil {
		t.Errorf("non-strict: rows %v, schema %v, dropped %v", rows, res.Schema, res.Dropped)
	}
}

func TestWrite(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	h := open(t, m)
	res, err := h.Write(ctx, WriteOptions{Partition: "2024-03-01|FR"}, rowsOf(Row{"id": 7, "v": "x", "note": "kept apart"}, Row{"id": 8}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{{"id": 7, "v": "x", "extra:note": "kept apart"}, {"id": 8}}
	if !reflect.DeepEqual(m.parts["2024-03-01|FR"], want) || res.Rows != 2 || !reflect.DeepEqual(res.Extra, map[string]int64{"note": 1}) {
		t.Errorf("overwrite: partition %v, result %+v", m.parts["2024-03-01|FR"], res)
	}
	if _, err := h.Write(ctx, WriteOptions{Partition: "2024-03-01|FR", Mode: Append}, rowsOf(Row{"id": 9})); err != nil {
		t.Fatal(err)
	}
	if n := len(m.parts["2024-03-01|FR"]); n != 3 {
		t.Errorf("append: %d rows, want 3", n)
	}
	if m.closed != 2 || m.aborted != 0 {
		t.Errorf("closed %d, aborted %d", m.closed, m.aborted)
	}
}

func TestWriteFailureKeepsPartition(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	h := open(t, m)
	before := fmt.Sprint(m.parts["2024-03-01|FR"])
	for name, rows := range map[string]iter.Seq2[Row, error]{
		"write error": rowsOf(Row{"id": 1}, Row{"id": 2, "v": "fail"}, Row{"id": 3}),
		"input error": func(yield func(Row, error) bool) {
			_ = yield(Row{"id": 1}, nil) && yield(nil, errors.New("line 3: bad JSON"))
		},
	} {
		_, err := h.Write(ctx, WriteOptions{Partition: "2024-03-01|FR"}, rows)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	func() {
		defer func() {
			if p := recover(); p != "writer panic" {
				t.Errorf("recovered %v, want the writer's panic", p)
			}
		}()
		h.Write(ctx, WriteOptions{Partition: "2024-03-01|FR"}, rowsOf(Row{"id": 1}, Row{"v": "panic"}))
	}()
	if got := fmt.Sprint(m.parts["2024-03-01|FR"]); got != before {
		t.Errorf("the partition changed: %s, was %s", got, before)
	}
	if m.closed != 0 || m.aborted != 3 {
		t.Errorf("closed %d, aborted %d; want 0 and 3", m.closed, m.aborted)
	}

	_, err := h.Write(ctx, WriteOptions{Partition: "2024-03-01|FR"}, rowsOf(Row{"id": 1, "v": "fail"}))
	if err == nil || !strings.Contains(err.Error(), `dataset "mem": write row 1: the source refused the row`) {
		t.Errorf("write error: %v", err)
	}
	for _, id := range []string{"", "2024-03-01", "2024-03-01|"} {
		if _, err := h.Write(ctx, WriteOptions{Partition: id}, rowsOf()); err == nil {
			t.Errorf("write to partition %q: no error", id)
		}
	}
	if m.closed != 0 || m.aborted != 4 {
		t.Errorf("rejected writes opened a writer: closed %d, aborted %d", m.closed, m.aborted)
	}
}

func TestWriteInfersSchema(t *testing.T) {
	m := newMem()
	m.schema = nil
	m.info.SchemaSample = 1
	h := open(t, m)
	res, err := h.Write(context.Background(), WriteOptions{Partition: "2024-03-05|IT"}, rowsOf(Row{"x": 1}, Row{"x": 2, "y": "late"}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Schema, []Column{{Name: "x", Type: Long}}) || !reflect.DeepEqual(res.Extra, map[string]int64{"y": 1}) {
		t.Errorf("schema %v, extra %v", res.Schema, res.Extra)
	}
	if got := m.parts["2024-03-05|IT"]; !reflect.DeepEqual(got, []Row{{"x": 1}, {"x": 2, "extra:y": "late"}}) {
		t.Errorf("written %v", got)
	}

	// The input's column order, when given, orders an inferred schema.
	res, err = h.Write(context.Background(), WriteOptions{Partition: "2024-03-05|IT", Columns: []string{"z", "b"}}, rowsOf(Row{"a": 1, "b": 2, "z": 3}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Schema, []Column{{Name: "z", Type: Long}, {Name: "b", Type: Long}, {Name: "a", Type: Long}}) {
		t.Errorf("schema in the input's order: %v", res.Schema)
	}
}

func TestPartitionsCountExists(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	h := open(t, m)
	ps, err := h.Partitions(ctx)
	if err != nil || len(ps) != 2 || ps[1].Value("day") != "2024-03-02" {
		t.Errorf("Partitions = %v, %v", ps, err)
	}
	if n, err := h.Count(ctx, ""); n != 3 || err != nil {
		t.Errorf("Count all = %d, %v", n, err)
	}
	if n, err := h.Count(ctx, "2024-03-01|FR"); n != 2 || err != nil {
		t.Errorf("Count partition = %d, %v", n, err)
	}
	if _, err := h.Count(ctx, "FR"); !errors.Is(err, ErrBadPartitionID) {
		t.Errorf("Count with a malformed id: %v", err)
	}
	if ok, err := h.PartitionExists(ctx, "2024-03-02|FR"); !ok || err != nil {
		t.Errorf("exists = %v, %v", ok, err)
	}
	if ok, err := h.PartitionExists(ctx, "2024-03-09|FR"); ok || err != nil {
		t.Errorf("exists (missing) = %v, %v", ok, err)
	}
	if _, err := h.PartitionExists(ctx, "2024-03-09"); !errors.Is(err, ErrBadPartitionID) {
		t.Errorf("exists with a malformed id: %v", err)
	}
	m.listed = []string{"2024-03-01|FR", "March|FR"}
	if _, err := h.Partitions(ctx); err == nil || !strings.Contains(err.Error(), `the connector listed malformed partition id "March|FR"`) {
		t.Errorf("a bad listed id: %v", err)
	}
}

type bare struct{}

func (bare) Info() DatasetInfo { return DatasetInfo{Name: "bare"} }

func TestMissingCapabilities(t *testing.T) {
	ctx := context.Background()
	h := open(t, bare{})
	if got := Capabilities(bare{}); got != nil {
		t.Errorf("Capabilities(bare) = %q", got)
	}
	if got := Capabilities(newMem()); len(got) != 6 {
		t.Errorf("Capabilities(mem) = %q", got)
	}
	_, err1 := h.Read(ctx, ReadOptions{}, func(Row) error { return nil })
	_, err2 := h.Write(ctx, WriteOptions{}, rowsOf())
	_, err3 := h.Partitions(ctx)
	_, err4 := h.PartitionExists(ctx, "x")
	_, err5 := h.Count(ctx, "")
	_, _, err6 := h.Schema(ctx)
	for want, err := range map[string]error{
		`dataset "bare" has no "read rows" capability: the connector does not implement sdk.RowReader`:               err1,
		`dataset "bare" has no "write rows" capability: the connector does not implement sdk.RowWriter`:              err2,
		`dataset "bare" has no "list partitions" capability: the connector does not implement sdk.PartitionLister`:   err3,
		`dataset "bare" has no "partition exists" capability: the connector does not implement sdk.PartitionChecker`: err4,
		`dataset "bare" has no "records count" capability: the connector does not implement sdk.RecordCounter`:       err5,
		`dataset "bare" has no "read schema" capability`:                                                             err6,
	} {
		var ce *CapabilityError
		if !errors.As(err, &ce) || !errors.Is(err, errors.ErrUnsupported) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if err := h.Require("records count"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Require on bare: %v", err)
	}
	if err := open(t, newMem()).Require("records count"); err != nil {
		t.Errorf("Require on mem: %v", err)
	}
	m := newMem()
	m.info.Append = false
	_, err := open(t, m).Write(ctx, WriteOptions{Partition: "2024-03-01|FR", Mode: Append}, rowsOf())
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), `no "append" capability`) {
		t.Errorf("append undeclared: %v", err)
	}
}

// A row as wide as the declared schema, with one declared column missing
// and an undeclared one in its place, is not taken for a declared row:
// without a strict schema the new column is kept and added to the schema,
// with one it is dropped and counted.
func TestReadUndeclaredColumnInAFullWidthRow(t *testing.T) {
	rows := func() []Row {
		return []Row{
			{"id": int64(1), "v": "a"},
			{"id": int64(2), "late": true}, // as wide as the schema
			{"id": int64(3), "v": "c"},
			{"id": int64(4)},
		}
	}
	d := &schemaRowsDS{rowsDS: rowsDS{info: DatasetInfo{Name: "r"}, rows: rows()}, schema: []Column{{Name: "id", Type: Long}, {Name: "v", Type: String}}}
	got, res := readAll(t, open(t, d), ReadOptions{})
	want := []Column{{Name: "id", Type: Long}, {Name: "v", Type: String}, {Name: "late", Type: Boolean}}
	if len(got) != 4 || got[1]["late"] != true || !reflect.DeepEqual(res.Schema, want) || res.Dropped != nil {
		t.Errorf("non-strict: rows %v, schema %v, dropped %v; want the late column kept and in %v", got, res.Schema, res.Dropped, want)
	}

	d = &schemaRowsDS{rowsDS: rowsDS{info: DatasetInfo{Name: "r", StrictSchema: true}, rows: rows()}, schema: d.schema}
	got, res = readAll(t, open(t, d), ReadOptions{})
	if len(got) != 4 || len(got[1]) != 1 || got[1]["id"] != int64(2) || !reflect.DeepEqual(res.Dropped, map[string]int64{"late": 1}) || len(res.Schema) != 2 {
		t.Errorf("strict: rows %v, schema %v, dropped %v; want late dropped once", got, res.Schema, res.Dropped)
	}
	if d.rows[1]["late"] != true {
		t.Errorf("strict: the connector's row changed: %v", d.rows[1])
	}
}

// schemaRowsDS is rowsDS with a declared schema.
type schemaRowsDS struct {
	rowsDS
	schema []Column
}

func (d *schemaRowsDS) ReadSchema(context.Context, Config) ([]Column, error) { return d.schema, nil }
