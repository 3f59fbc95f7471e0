package postgres

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// The hand-written encoders give the bytes pgx's own would, for every
// type and the edges of its range; values of other Go types take pgx's
// path.
func TestAppendValueMatchesPgx(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		typ  contract.Type
		vals []any
	}{
		{contract.Boolean, []any{true, false}},
		{contract.Short, []any{int64(0), int64(math.MinInt16), int64(math.MaxInt16), int64(-1)}},
		{contract.Int, []any{int64(math.MinInt32), int64(math.MaxInt32), int64(7)}},
		{contract.Long, []any{int64(math.MinInt64), int64(math.MaxInt64), int64(0)}},
		{contract.Float, []any{1.5, 0.1, math.Inf(-1), -0.0, 3.4e38}},
		{contract.Double, []any{0.1, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Copysign(0, -1)}},
		{contract.NaiveDate, []any{day(2000, 1, 1), day(1999, 12, 31), day(1900, 3, 1), day(2024, 2, 29), day(9999, 12, 31), day(1, 1, 1)}},
		{contract.NaiveDateTime, []any{time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC), time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), time.Date(1850, 6, 1, 12, 0, 0, 999999000, time.UTC)}},
		{contract.UTCDateTime, []any{time.Date(2024, 2, 29, 21, 59, 59, 500000000, time.UTC), time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)}},
		{contract.Binary, []any{[]byte{0, 1, 255}, []byte{}}},
		{contract.String, []any{"héllo", "", "a\"b"}},
		{contract.XML, []any{"<a/>"}},
		{contract.JSON, []any{`{"k":[1,2]}`, `"x"`, `null`}},
		{contract.Decimal, []any{"-12345678.9", "0", "123456789012345678.0123456789", "-0.5"}},
	}
	for _, c := range cases {
		col := copyColumnOf(destination.Column{Name: "c", Type: c.typ, Precision: 38, Scale: 10})
		for _, v := range append(c.vals, nil) {
			got, err := appendValue(nil, col, v)
			if err != nil {
				t.Errorf("%s %v: %v", c.typ, v, err)
				continue
			}
			want := binary.BigEndian.AppendUint32(nil, math.MaxUint32)
			if v != nil {
				pv := v
				if s, ok := v.(string); ok && c.typ == contract.Decimal {
					var n pgtype.Numeric
					if err := n.Scan(s); err != nil {
						t.Fatal(err)
					}
					pv = n
				}
				body, err := typeMap.Encode(col.oid, pgtype.BinaryFormatCode, pv, nil)
				if err != nil {
					t.Errorf("%s %v: pgx: %v", c.typ, v, err)
					continue
				}
				want = append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %#v: got % x, pgx % x", c.typ, v, got, want)
			}
		}
	}
	// Values outside the engine's canonical forms still encode, through
	// pgx, or fail with the column's name.
	col := copyColumnOf(destination.Column{Name: "n", Type: contract.Int})
	if _, err := appendValue(nil, col, int32(5)); err != nil {
		t.Errorf("an int32: %v", err)
	}
	if _, err := appendValue(nil, col, int64(math.MaxInt32)+1); err == nil {
		t.Errorf("an int64 out of range for integer: no error")
	}
	dec := copyColumnOf(destination.Column{Name: "d", Type: contract.Decimal, Precision: 10, Scale: 2})
	if _, err := appendValue(nil, dec, "1.2.3"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`column "d"`)) {
		t.Errorf("a bad decimal: %v", err)
	}
}
