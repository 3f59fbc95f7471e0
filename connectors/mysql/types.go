package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
	"github.com/sluicedata/sluice/internal/contract"
)

// Decoding kinds. Rows come in MySQL's text protocol; each kind reads its
// column's text.
const (
	kString = iota // char, varchar, text, enum, set, time, and any other type
	kInt
	kUint    // unsigned, fits in 64-bit signed
	kUint64  // bigint unsigned: DECIMAL(20,0)
	kBool    // tinyint(1), bit(1)
	kBit     // bit(n), n > 1: big-endian bytes
	kFloat   // float, read as a double (see selectExpr)
	kDouble  // double
	kDecimal // decimal(p,s)
	kDate
	kDatetime
	kTimestamp
	kYear
	kBinary // binary, varbinary, blobs, geometry
	kJSON
)

// column is what information_schema says of a column.
type column struct {
	dataType   string // DATA_TYPE, lower case
	columnType string // COLUMN_TYPE, as in tinyint(1) unsigned
	precision  int64
	scale      int64
	json       bool // MariaDB: longtext with a json_valid check
}

// mapType gives the sluice type and decoding kind of a column. The mapping
// is documented in doc.go.
func mapType(c column) (out sqlsource.Column) {
	out.SQLType = c.columnType
	out.Kind, out.Type = kString, contract.String
	unsigned := strings.Contains(c.columnType, "unsigned")
	switch c.dataType {
	case "tinyint":
		if strings.HasPrefix(c.columnType, "tinyint(1)") && !unsigned {
			out.Kind, out.Type = kBool, contract.Boolean
			return out
		}
		out.Kind, out.Type, out.Cursor = kInt, contract.Short, true
		if unsigned {
			out.Kind = kUint
		}
	case "smallint":
		out.Kind, out.Type, out.Cursor = kInt, contract.Short, true
		if unsigned {
			out.Kind, out.Type = kUint, contract.Int
		}
	case "mediumint":
		out.Kind, out.Type, out.Cursor = kInt, contract.Int, true
		if unsigned {
			out.Kind = kUint
		}
	case "int", "integer":
		out.Kind, out.Type, out.Cursor = kInt, contract.Int, true
		if unsigned {
			out.Kind, out.Type = kUint, contract.Long
		}
	case "bigint":
		out.Kind, out.Type, out.Cursor = kInt, contract.Long, true
		if unsigned {
			out.Kind, out.Type, out.Precision = kUint64, contract.Decimal, 20
		}
	case "bit":
		switch {
		case c.precision == 1:
			out.Kind, out.Type = kBool, contract.Boolean
		case c.precision == 64:
			out.Kind, out.Type, out.Precision = kBit, contract.Decimal, 20
		default:
			out.Kind, out.Type = kBit, contract.Long
		}
	case "float":
		out.Kind, out.Type, out.Cursor = kFloat, contract.Float, true
	case "double", "real":
		out.Kind, out.Type, out.Cursor = kDouble, contract.Double, true
	case "decimal", "numeric":
		out.Kind, out.Cursor = kDecimal, true
		if c.precision <= 38 {
			out.Type, out.Precision, out.Scale = contract.Decimal, int(c.precision), int(c.scale)
		}
	case "date":
		out.Kind, out.Type, out.Cursor = kDate, contract.NaiveDate, true
	case "datetime":
		out.Kind, out.Type, out.Cursor = kDatetime, contract.NaiveDateTime, true
	case "timestamp":
		out.Kind, out.Type, out.Cursor = kTimestamp, contract.UTCDateTime, true
	case "year":
		out.Kind, out.Type, out.Cursor = kYear, contract.Short, true
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		out.Kind, out.Type = kBinary, contract.Binary
	case "json":
		out.Kind, out.Type = kJSON, contract.JSON
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		out.Cursor = true
		if c.json {
			out.Kind, out.Type, out.Cursor = kJSON, contract.JSON, false
		}
	}
	return out
}

// errZero marks a zero date ('0000-00-00', or a zero month or day), which
// no calendar holds: it is synced as NULL.
var errZero = errors.New("zero date")

// decode reads one value of a kind from its text. b is the driver's
// buffer: what is kept is copied.
func decode(kind int, b []byte) (any, error) {
	switch kind {
	case kInt, kUint, kYear:
		return strconv.ParseInt(string(b), 10, 64)
	case kUint64:
		if _, err := strconv.ParseUint(string(b), 10, 64); err != nil {
			return nil, err
		}
		return contract.DecimalText(b), nil
	case kBool:
		if len(b) == 1 && b[0] <= 1 { // bit(1) comes as one raw byte
			return b[0] == 1, nil
		}
		n, err := strconv.ParseInt(string(b), 10, 64)
		return n != 0, err
	case kBit:
		if len(b) > 8 {
			return nil, fmt.Errorf("bit value of %d bytes", len(b))
		}
		var buf [8]byte
		copy(buf[8-len(b):], b)
		u := binary.BigEndian.Uint64(buf[:])
		if u > 1<<63-1 {
			return contract.DecimalText(strconv.FormatUint(u, 10)), nil
		}
		return int64(u), nil
	case kFloat:
		f, err := strconv.ParseFloat(string(b), 64)
		return float64(float32(f)), err
	case kDouble:
		return strconv.ParseFloat(string(b), 64)
	case kDecimal:
		return contract.DecimalText(b), nil
	case kDate:
		return parseDateTime(b, true)
	case kDatetime, kTimestamp:
		return parseDateTime(b, false)
	case kBinary:
		return bytes.Clone(b), nil
	}
	return string(b), nil // kString, kJSON
}

// parseDateTime reads "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS[.ffffff]".
func parseDateTime(b []byte, dateOnly bool) (any, error) {
	s := string(b)
	bad := func() (any, error) { return nil, fmt.Errorf("date %q", s) }
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return bad()
	}
	y, e1 := strconv.Atoi(s[0:4])
	m, e2 := strconv.Atoi(s[5:7])
	d, e3 := strconv.Atoi(s[8:10])
	if e1 != nil || e2 != nil || e3 != nil {
		return bad()
	}
	if m == 0 || d == 0 {
		return nil, errZero
	}
	if dateOnly || len(s) == 10 {
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
	}
	c := s[10:]
	if c[0] != ' ' {
		return bad()
	}
	h, mi, sec, us, ok := sqlsource.ParseClock(c[1:])
	if !ok {
		return bad()
	}
	return time.Date(y, time.Month(m), d, h, mi, sec, us*1000, time.UTC), nil
}
