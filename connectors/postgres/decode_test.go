package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
	"github.com/sluicedata/sluice/internal/contract"
)

func TestArrayJSON(t *testing.T) {
	cases := []struct {
		in   string
		kind int
		want string
	}{
		{`{}`, kArrayText, `[]`},
		{`{1,NULL,-3.5e2}`, kArrayNum, `[1,null,-3.5e2]`},
		{`{NaN,Infinity}`, kArrayNum, `["NaN","Infinity"]`},
		{`{1,2}`, kArrayText, `["1","2"]`},
		{`{"a,b","",NULL,"q\"z\\\\",null}`, kArrayText, `["a,b","",null,"q\"z\\\\",null]`},
		{`{{1,2},{3,4}}`, kArrayNum, `[[1,2],[3,4]]`},
		{`[0:1]={t,f}`, kArrayBool, `[true,false]`},
		{`{"{\"k\": 1}","not json"}`, kArrayJSON, `[{"k": 1},"not json"]`},
	}
	for _, c := range cases {
		got, err := arrayJSON(c.in, c.kind)
		if err != nil || got != c.want {
			t.Errorf("arrayJSON(%s) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`{1,2`, `1,2}`, `{"a}`, `{1}x`, `[1:2]`} {
		if _, err := arrayJSON(bad, kArrayNum); err == nil {
			t.Errorf("arrayJSON(%s): want an error", bad)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	cases := []struct {
		in    string
		zoned bool
		want  time.Time
	}{
		{"2024-03-01 12:34:56", false, time.Date(2024, 3, 1, 12, 34, 56, 0, time.UTC)},
		{"2024-03-01 12:34:56.5", false, time.Date(2024, 3, 1, 12, 34, 56, 500000000, time.UTC)},
		{"2024-03-01 12:34:56.123456+02", true, time.Date(2024, 3, 1, 10, 34, 56, 123456000, time.UTC)},
		{"2024-03-01 12:34:56-03:30", true, time.Date(2024, 3, 1, 16, 4, 56, 0, time.UTC)},
		{"1890-01-01 00:00:00+00:09:21", true, time.Date(1889, 12, 31, 23, 50, 39, 0, time.UTC)},
		{"0044-03-15 12:00:00 BC", false, time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC)},
		{"10000-01-01 00:00:00", false, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		v, err := parseTimestamp(c.in, c.zoned)
		if err != nil || !v.(time.Time).Equal(c.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", c.in, v, err, c.want)
		}
	}
	for _, bad := range []string{"2024-03-01", "2024-03-01 12:34", "2024-03-01 12:34:56.1234567", "24-03-01 12:34:56", "2024-03-01 12:34:56+xx"} {
		if _, err := parseTimestamp(bad, true); err == nil {
			t.Errorf("parseTimestamp(%q): want an error", bad)
		}
	}
	if _, err := parseTimestamp("infinity", false); !errors.Is(err, errInfinite) {
		t.Errorf("infinity: %v", err)
	}
}

func TestNumericTypmod(t *testing.T) {
	mod := func(p, s int) int32 { return int32((p<<16)|(s&0x7ff)) + 4 }
	cases := []struct {
		typmod int32
		p, s   int
		ok     bool
	}{
		{-1, 0, 0, false},
		{mod(10, 2), 10, 2, true},
		{mod(5, -2), 7, 0, true},
		{mod(3, 5), 5, 5, true},
	}
	for _, c := range cases {
		p, s, ok := numericTypmod(c.typmod)
		if p != c.p || s != c.s || ok != c.ok {
			t.Errorf("numericTypmod(%d) = %d, %d, %v; want %d, %d, %v", c.typmod, p, s, ok, c.p, c.s, c.ok)
		}
	}
}

// TestDecodeBadInput: values of the wrong size are errors, not panics.
func TestDecodeBadInput(t *testing.T) {
	for _, k := range []int{kBool, kInt2, kInt4, kInt8, kOID, kFloat4, kFloat8, kDate, kTimestamp, kTimestamptz, kUUID} {
		if _, err := decodeBinary(k, []byte{1, 2, 3}); err == nil {
			t.Errorf("kind %d: 3 bytes accepted", k)
		}
	}
	for k, s := range map[int]string{kBool: "x", kInt8: "1.5", kBytea: "00ff", kDate: "2024-13", kFloat8: "one"} {
		if _, err := decodeText(k, []byte(s)); err == nil {
			t.Errorf("kind %d: %q accepted", k, s)
		}
	}
	if v, err := decodeText(kNumeric, []byte("NaN")); !errors.Is(err, errInfinite) || v != nil {
		t.Errorf("NaN numeric: %v %v", v, err)
	}
	if v, _ := decodeText(kNumeric, []byte("-1.50")); v != contract.DecimalText("-1.50") {
		t.Errorf("numeric: %v", v)
	}
}

// TestCopyParserSplits feeds a binary COPY stream one byte at a time: rows
// that span writes are put together.
func TestCopyParserSplits(t *testing.T) {
	var s bytes.Buffer
	s.Write(copySignature)
	s.Write(make([]byte, 8)) // flags, extension length
	row := func(vals ...[]byte) {
		binary.Write(&s, binary.BigEndian, int16(len(vals)))
		for _, v := range vals {
			if v == nil {
				binary.Write(&s, binary.BigEndian, int32(-1))
				continue
			}
			binary.Write(&s, binary.BigEndian, int32(len(v)))
			s.Write(v)
		}
	}
	i8 := func(n int64) []byte { b := make([]byte, 8); binary.BigEndian.PutUint64(b, uint64(n)); return b }
	row(i8(1), []byte("one"))
	row(i8(2), nil)
	row(i8(3), []byte{})
	binary.Write(&s, binary.BigEndian, int16(-1))

	p := &sqlsource.Planned{Table: &sqlsource.Table{Columns: []sqlsource.Column{{Name: "id", Kind: kInt8}, {Name: "v", Kind: kString}}}, Cols: []int{0, 1}}
	r := &reader{warned: map[string]bool{}}
	var got []string
	w := &copyParser{dec: &rowDecoder{r: r, p: p, row: make([]any, 2)}, emit: func(row []any) error {
		v := "NULL"
		if row[1] != nil {
			v = "'" + row[1].(string) + "'"
		}
		got = append(got, v)
		return nil
	}}
	for _, b := range s.Bytes() {
		if _, err := w.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if !w.trailer || len(got) != 3 || got[0] != "'one'" || got[1] != "NULL" || got[2] != "''" {
		t.Errorf("rows %v, trailer %v", got, w.trailer)
	}
	bad := &copyParser{dec: w.dec, emit: w.emit}
	if _, err := bad.Write([]byte("not a COPY stream at all")); err == nil {
		t.Error("a stream without the signature was accepted")
	}
}
