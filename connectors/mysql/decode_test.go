package mysql

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		kind int
		in   string
		want any
	}{
		{kInt, "-5", int64(-5)},
		{kUint64, "18446744073709551615", contract.DecimalText("18446744073709551615")},
		{kBool, "0", false},
		{kBool, "5", true},
		{kBool, "\x01", true},
		{kBit, "\x01\x01", int64(257)},
		{kBit, "\xff\xff\xff\xff\xff\xff\xff\xff", contract.DecimalText("18446744073709551615")},
		{kDecimal, "-1.50", contract.DecimalText("-1.50")},
		{kDate, "2024-02-29", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{kDatetime, "2024-02-29 01:02:03", time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC)},
		{kDatetime, "2024-02-29 01:02:03.5", time.Date(2024, 2, 29, 1, 2, 3, 500000000, time.UTC)},
		{kString, "x", "x"},
	}
	for _, c := range cases {
		got, err := decode(c.kind, []byte(c.in))
		if err != nil {
			t.Errorf("decode(%d, %q): %v", c.kind, c.in, err)
			continue
		}
		if tm, ok := c.want.(time.Time); ok {
			if !got.(time.Time).Equal(tm) {
				t.Errorf("decode(%d, %q) = %v, want %v", c.kind, c.in, got, c.want)
			}
		} else if got != c.want {
			t.Errorf("decode(%d, %q) = %#v, want %#v", c.kind, c.in, got, c.want)
		}
	}
	for _, z := range []string{"0000-00-00", "2024-00-10", "0000-00-00 00:00:00"} {
		if _, err := decode(kDatetime, []byte(z)); !errors.Is(err, errZero) {
			t.Errorf("%q: %v, want a zero date", z, err)
		}
	}
	for k, s := range map[int]string{kInt: "x", kDate: "2024/01/01", kDatetime: "2024-01-01T01:02:03", kBit: "123456789"} {
		if _, err := decode(k, []byte(s)); err == nil {
			t.Errorf("kind %d: %q accepted", k, s)
		}
	}
}

func TestParseURL(t *testing.T) {
	c, err := parseURL("mysql://u:p%40ss@db.example:3307/shop?tls=skip-verify&timeout=5s&sql_mode=ANSI")
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "u" || c.Passwd != "p@ss" || c.Addr != "db.example:3307" || c.DBName != "shop" || c.TLSConfig != "skip-verify" ||
		c.Timeout != 5*time.Second || c.Params["sql_mode"] != "ANSI" {
		t.Errorf("parsed %+v", c)
	}
	if c, err := parseURL("mariadb://h/d"); err != nil || c.Addr != "h:3306" {
		t.Errorf("default port: %+v %v", c, err)
	}
	for _, bad := range []string{"", "mysql://u:p@h/d?timeout=soon", "u:secret@127.0.0.1/d"} {
		_, err := parseURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if bad != "" && contains(err.Error(), "secret") {
			t.Errorf("the password is in %v", err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
