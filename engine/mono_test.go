package engine

import (
	"testing"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// monoBatch is a batch of full rows keyed by its first len(types) columns.
func monoBatch(types []contract.Type, rows ...[]any) *destination.Batch {
	b := &destination.Batch{Rows: len(rows), Values: make([][]any, len(types))}
	for c, ty := range types {
		b.Columns = append(b.Columns, destination.Column{Type: ty})
		b.Key = append(b.Key, c)
	}
	for _, r := range rows {
		for c := range types {
			b.Values[c] = append(b.Values[c], r[c])
		}
		b.Set = append(b.Set, nil)
		b.Deleted = append(b.Deleted, destination.Live)
	}
	return b
}

func TestAscendingDecision(t *testing.T) {
	sl := []contract.Type{contract.String, contract.Long}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		types []contract.Type
		rows  [][]any
		want  bool
	}{
		{"tuples", sl, [][]any{{"a", int64(9)}, {"b", int64(0)}, {"b", int64(1)}}, true},
		{"bytewise", sl, [][]any{{"Z", int64(0)}, {"a", int64(0)}}, true},
		{"down", sl, [][]any{{"b", int64(0)}, {"a", int64(1)}}, false},
		{"equal", sl, [][]any{{"a", int64(1)}, {"a", int64(1)}}, false},
		{"times", []contract.Type{contract.UTCDateTime}, [][]any{{t0}, {t0.Add(time.Microsecond)}}, true},
		{"one row", sl, [][]any{{"a", int64(1)}}, false},
		{"mixed types in a column", sl, [][]any{{"a", int64(1)}, {"b", "2"}}, false},
		{"float key", []contract.Type{contract.Double}, [][]any{{1.0}, {2.0}}, false},
		{"json key", []contract.Type{contract.JSON}, [][]any{{`{"a":1}`}, {`{"b":1}`}}, false},
		{"decimal key", []contract.Type{contract.Decimal}, [][]any{{"1.5"}, {"2"}}, false},
	} {
		if got := ascending(monoBatch(c.types, c.rows...)); got != c.want {
			t.Errorf("%s: ascending %v, want %v", c.name, got, c.want)
		}
	}
}

// Once a table is tracked by its largest key, no row at or below it is
// ever marked fresh, and a key that cannot be ordered against it stops the
// tracking for good, with nothing marked.
func TestMarkAscending(t *testing.T) {
	sl := []contract.Type{contract.String, contract.Long}
	tb := &table{keys: newKeyFilter(1 << 20), mono: monoOn}
	b := monoBatch(sl, []any{"a", int64(1)}, []any{"a", int64(2)}, []any{"b", int64(0)})
	tb.markAscending(b)
	if want := []bool{true, true, true}; !equalBools(b.Fresh, want) {
		t.Fatalf("first batch: fresh %v, want %v", b.Fresh, want)
	}
	b = monoBatch(sl, []any{"b", int64(0)}, []any{"a", int64(5)}, []any{"b", int64(1)}, []any{"a", int64(6)}, []any{"c", int64(0)})
	tb.markAscending(b)
	if want := []bool{false, false, true, false, true}; !equalBools(b.Fresh, want) {
		t.Fatalf("second batch: fresh %v, want %v", b.Fresh, want)
	}
	if tb.mono != monoOn || tb.keys == nil {
		t.Fatal("two late rows stopped the tracking")
	}
	b = monoBatch(sl, []any{"d", int64(0)}, []any{"e", "1"}, []any{"f", int64(0)})
	tb.markAscending(b)
	if tb.mono != monoOff || tb.keys != nil {
		t.Fatalf("a string in the integer key column: mono %d, keys %v; want tracking stopped", tb.mono, tb.keys)
	}
	if b.Fresh[1] || b.Fresh[2] {
		t.Fatalf("rows from the unordered key on marked fresh: %v", b.Fresh)
	}
	// Partial rows are never fresh, nor compared.
	tb = &table{keys: newKeyFilter(1 << 20), mono: monoOn}
	b = monoBatch(sl, []any{"a", int64(1)}, []any{"z", int64(1)})
	b.Set[1] = []uint64{3}
	tb.markAscending(b)
	if want := []bool{true, false}; !equalBools(b.Fresh, want) {
		t.Fatalf("partial row: fresh %v, want %v", b.Fresh, want)
	}
}

// Past 1 % of late rows (and 1,000), the table is merged from then on.
func TestMarkAscendingGivesUp(t *testing.T) {
	tb := &table{keys: newKeyFilter(1 << 20), mono: monoOn}
	rows := [][]any{{int64(1 << 40)}}
	for i := range 2000 {
		rows = append(rows, []any{int64(i)})
	}
	b := monoBatch([]contract.Type{contract.Long}, rows...)
	tb.markAscending(b)
	if tb.mono != monoOff || tb.keys != nil {
		t.Fatalf("2,000 late rows of 2,001: still tracked")
	}
	for r, f := range b.Fresh[1:] {
		if f {
			t.Fatalf("late row %d marked fresh", r+1)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
