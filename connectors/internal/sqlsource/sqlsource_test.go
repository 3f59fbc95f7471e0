package sqlsource

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

func TestPatterns(t *testing.T) {
	cases := []struct {
		pattern, schema, table string
		match                  bool
	}{
		{"orders", "public", "orders", true},
		{"orders", "sales", "orders", true},
		{"public.orders", "sales", "orders", false},
		{"sales.*", "sales", "x", true},
		{"*.order?", "s", "orders", true},
		{"ord*", "s", "items", false},
		{"a.b.c", "a.b", "c", true}, // the last dot separates
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := p.Match(c.schema, c.table); got != c.match {
			t.Errorf("%q matches %s.%s: %v, want %v", c.pattern, c.schema, c.table, got, c.match)
		}
	}
	for _, bad := range []string{".orders", "public.", "[", ""} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestParseMode(t *testing.T) {
	if m, err := ParseMode(" incremental: updated_at ", false); err != nil || m.Kind != Incremental || m.Cursor != "updated_at" {
		t.Errorf("incremental: %+v %v", m, err)
	}
	for v, want := range map[string]string{
		"incremental":  "needs its cursor column",
		"incremental:": "needs the cursor column",
		"replication":  "needs the replication parameter",
		"sometimes":    `"sometimes" is not a mode`,
	} {
		if _, err := ParseMode(v, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", v, err, want)
		}
	}
}

func table(schema, name string, view bool, key ...string) *Table {
	return &Table{Schema: schema, Name: name, View: view, Key: key, Dest: DestName(schema, name, "public"),
		Columns: []Column{{Name: "id", Type: contract.Long, Cursor: true}, {Name: "doc", Type: contract.JSON}}}
}

func TestPlan(t *testing.T) {
	all := []*Table{table("public", "a", false, "id"), table("public", "ab", false), table("sales", "a", false), table("public", "v", true)}
	plan := func(cfg contract.Config) ([]*Planned, error) {
		s, err := ParseSettings(cfg, false)
		if err != nil {
			return nil, err
		}
		return Plan(all, s, func(*Table) Mode { return Mode{Kind: FullRefresh} })
	}
	got := func(ps []*Planned) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Dest+"="+p.Mode.String())
		}
		return strings.Join(out, " ")
	}
	ps, err := plan(contract.Config{"modes": `{"*": "incremental:doc"}`, "exclude": "ab"})
	if err == nil {
		t.Errorf("a JSON cursor was accepted: %s", got(ps))
	} else if !strings.Contains(err.Error(), "cannot be a cursor") {
		t.Errorf("error %v", err)
	}
	ps, err = plan(contract.Config{"modes": `{"a*": "incremental:id", "public.a": "full_refresh"}`, "exclude": "ab"})
	if err != nil {
		t.Fatal(err)
	}
	// The exact name beats the pattern; the view comes only when named.
	if g := got(ps); g != "a=full_refresh sales_a=incremental:id" {
		t.Errorf("plan: %s", g)
	}
	ps, err = plan(contract.Config{"tables": "v, a*"})
	if err != nil {
		t.Fatal(err)
	}
	if g := got(ps); g != "a=full_refresh ab=full_refresh sales_a=full_refresh v=full_refresh" {
		t.Errorf("plan: %s", g)
	}
	for cfg, want := range map[string]contract.Config{
		`"nope"`:                 {"tables": "a, nope"},
		"no table to sync":       {"tables": "zz*"},
		`names table "x"`:        {"modes": `{"x": "full_refresh"}`},
		`"checkpoint_rows": "0"`: {"checkpoint_rows": "0"},
	} {
		if _, err := plan(want); err == nil || !strings.Contains(err.Error(), strings.Trim(cfg, `"`)) && !strings.Contains(err.Error(), "positive") {
			t.Errorf("%v: error %v, want %s", want, err, cfg)
		}
	}
}

type testDialect struct{ args []string }

func (d *testDialect) Quote(s string) string      { return `"` + s + `"` }
func (d *testDialect) NullsFirst(e string) string { return e + " NULLS FIRST" }
func (d *testDialect) Value(c *Column, v string) (string, error) {
	d.args = append(d.args, v)
	return "?", nil
}

func TestWhere(t *testing.T) {
	tb := &Table{Columns: []Column{{Name: "c"}, {Name: "k1"}, {Name: "k2"}}}
	c := &Cond{Kind: And, Sub: []*Cond{
		{Kind: AtLeast, Cols: []int{0}, Vals: []string{"5"}},
		{Kind: Or, Sub: []*Cond{{Kind: Greater, Cols: []int{0}, Vals: []string{"5"}}, {Kind: RowAfter, Cols: []int{1, 2}, Vals: []string{"a", "b"}}}},
	}}
	d := &testDialect{}
	got, err := Where(d, tb, c)
	want := `("c" >= ?) AND (("c" > ?) OR (("k1", "k2") > (?, ?)))`
	if err != nil || got != want || strings.Join(d.args, ",") != "5,5,a,b" {
		t.Errorf("Where: %s %v %v, want %s", got, d.args, err, want)
	}
	q := &Query{Table: &Planned{Table: tb}, Order: []int{0, 1}, NullsFirst: true}
	if o := OrderBy(d, q); o != `"c" NULLS FIRST, "k1"` {
		t.Errorf("OrderBy: %s", o)
	}
}

func TestPosText(t *testing.T) {
	ts := time.Date(2024, 3, 1, 12, 34, 56, 123456000, time.UTC)
	cases := []struct {
		v    any
		typ  contract.Type
		want string
	}{
		{int64(-5), contract.Long, "-5"},
		{0.1, contract.Double, "0.1"},
		{contract.DecimalText("12.50"), contract.Decimal, "12.50"},
		{"a'b", contract.String, "a'b"},
		{[]byte{0, 255}, contract.Binary, "00ff"},
		{ts, contract.NaiveDate, "2024-03-01"},
		{ts, contract.NaiveDateTime, "2024-03-01T12:34:56.123456"},
		{ts, contract.UTCDateTime, "2024-03-01T12:34:56.123456Z"},
	}
	for _, c := range cases {
		got, err := PosText(c.v, &Column{Name: "x", Type: c.typ})
		if err != nil || got != c.want {
			t.Errorf("PosText(%v, %s) = %q, %v; want %q", c.v, c.typ, got, err, c.want)
		}
	}
	if _, err := PosText(struct{}{}, &Column{Name: "x"}); err == nil {
		t.Error("a struct was kept as a position")
	}
}

func TestReadState(t *testing.T) {
	st, err := ReadState(contract.State{"tables": map[string]any{"s.t": map[string]any{"cursor_column": "u", "cursor": "5", "complete": true}}})
	if err != nil || st.Tables["s.t"] == nil || *st.Tables["s.t"].Cursor != "5" {
		t.Errorf("ReadState: %+v %v", st, err)
	}
	if _, err := ReadState(contract.State{"tables": "nope"}); err == nil || !strings.Contains(err.Error(), "sluice reset") {
		t.Errorf("a foreign state: %v", err)
	}
}

func TestRedact(t *testing.T) {
	base := &myErr{}
	err := Redact(base, "hunter2")
	if err.Error() != "login *** failed" {
		t.Errorf("Redact: %q", err)
	}
	var target *myErr
	if !errors.As(err, &target) {
		t.Error("the cause is lost")
	}
}

type myErr struct{}

func (*myErr) Error() string { return "login hunter2 failed" }

func TestParseClock(t *testing.T) {
	for _, c := range []struct {
		in          string
		h, m, s, us int
		ok          bool
	}{
		{"12:34:56", 12, 34, 56, 0, true},
		{"00:00:00.5", 0, 0, 0, 500000, true},
		{"23:59:59.123456", 23, 59, 59, 123456, true},
		{"23:59:59.1234567", 0, 0, 0, 0, false}, // more than microseconds
		{"23:59:59.", 0, 0, 0, 0, false},
		{"23:59:59x1", 0, 0, 0, 0, false},
		{"23:59", 0, 0, 0, 0, false},
		{"2x:59:59", 0, 0, 0, 0, false},
		{"23-59-59", 0, 0, 0, 0, false},
		{"", 0, 0, 0, 0, false},
	} {
		h, m, s, us, ok := ParseClock(c.in)
		if h != c.h || m != c.m || s != c.s || us != c.us || ok != c.ok {
			t.Errorf("ParseClock(%q) = %d %d %d %d %v, want %d %d %d %d %v", c.in, h, m, s, us, ok, c.h, c.m, c.s, c.us, c.ok)
		}
	}
}
