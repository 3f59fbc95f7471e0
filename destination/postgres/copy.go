package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/internal/contract"
)

// COPY in PostgreSQL's binary format, written here rather than through
// pgx.CopyFrom: the engine's values come in a few known Go types (see
// engine/types.go), and encoding them directly costs a fraction of pgx's
// per-value type lookup, on the two cores that the database server shares
// with the engine. Other values (numeric, and any Go type not expected)
// go through pgx's own encoders.

// kind is how a column's values are encoded.
type kind uint8

const (
	kBool kind = iota
	kInt2
	kInt4
	kInt8
	kFloat4
	kFloat8
	kDate
	kTimestamp
	kTimestamptz
	kBytea
	kText
	kJSONB
	kNumeric
)

// column is one column of a COPY.
type copyColumn struct {
	name string
	kind kind
	oid  uint32
}

func copyColumnOf(c destination.Column) copyColumn {
	k, oid := kText, uint32(pgtype.TextOID)
	switch c.Type {
	case contract.Boolean:
		k, oid = kBool, pgtype.BoolOID
	case contract.Short:
		k, oid = kInt2, pgtype.Int2OID
	case contract.Int:
		k, oid = kInt4, pgtype.Int4OID
	case contract.Long:
		k, oid = kInt8, pgtype.Int8OID
	case contract.Float:
		k, oid = kFloat4, pgtype.Float4OID
	case contract.Double:
		k, oid = kFloat8, pgtype.Float8OID
	case contract.NaiveDate:
		k, oid = kDate, pgtype.DateOID
	case contract.NaiveDateTime:
		k, oid = kTimestamp, pgtype.TimestampOID
	case contract.UTCDateTime:
		k, oid = kTimestamptz, pgtype.TimestamptzOID
	case contract.Binary:
		k, oid = kBytea, pgtype.ByteaOID
	case contract.JSON:
		k, oid = kJSONB, pgtype.JSONBOID
	case contract.Decimal:
		k, oid = kNumeric, pgtype.NumericOID
	}
	return copyColumn{name: c.Name, kind: k, oid: oid}
}

// pgEpoch is 2000-01-01, where PostgreSQL counts dates and times from.
const pgEpoch = 946_684_800

var typeMap = pgtype.NewMap()

// appendValue appends one field: its length, then its bytes (-1 for NULL).
func appendValue(buf []byte, c copyColumn, v any) ([]byte, error) {
	if v == nil {
		return binary.BigEndian.AppendUint32(buf, math.MaxUint32), nil
	}
	switch c.kind {
	case kBool:
		if b, ok := v.(bool); ok {
			x := byte(0)
			if b {
				x = 1
			}
			return append(binary.BigEndian.AppendUint32(buf, 1), x), nil
		}
	case kInt2:
		if i, ok := v.(int64); ok && i >= math.MinInt16 && i <= math.MaxInt16 {
			return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(buf, 2), uint16(i)), nil
		}
	case kInt4:
		if i, ok := v.(int64); ok && i >= math.MinInt32 && i <= math.MaxInt32 {
			return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), uint32(i)), nil
		}
	case kInt8:
		if i, ok := v.(int64); ok {
			return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(i)), nil
		}
	case kFloat4:
		if f, ok := v.(float64); ok {
			return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), math.Float32bits(float32(f))), nil
		}
	case kFloat8:
		if f, ok := v.(float64); ok {
			return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), math.Float64bits(f)), nil
		}
	case kDate:
		// The engine gives a date as midnight UTC.
		if t, ok := v.(time.Time); ok && t.Location() == time.UTC && t.Unix()%86400 == 0 && t.Nanosecond() == 0 {
			return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(buf, 4), uint32(int32(t.Unix()/86400-pgEpoch/86400))), nil
		}
	case kTimestamp, kTimestamptz:
		// A naive time is its wall clock held in UTC.
		if t, ok := v.(time.Time); ok && t.Location() == time.UTC {
			us := (t.Unix()-pgEpoch)*1_000_000 + int64(t.Nanosecond()/1000)
			return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(buf, 8), uint64(us)), nil
		}
	case kBytea:
		if b, ok := v.([]byte); ok {
			return append(binary.BigEndian.AppendUint32(buf, uint32(len(b))), b...), nil
		}
	case kText:
		if s, ok := v.(string); ok {
			return append(binary.BigEndian.AppendUint32(buf, uint32(len(s))), s...), nil
		}
	case kJSONB:
		if s, ok := v.(string); ok {
			return append(append(binary.BigEndian.AppendUint32(buf, uint32(len(s)+1)), 1), s...), nil // jsonb format version 1
		}
	case kNumeric:
		// The engine gives decimals as text; pgx encodes its own Numeric.
		if s, ok := v.(string); ok {
			var n pgtype.Numeric
			if err := n.Scan(s); err != nil {
				return nil, fmt.Errorf("column %q: %q is not a decimal: %w", c.name, s, err)
			}
			v = n
		}
	}
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	out, err := typeMap.Encode(c.oid, pgtype.BinaryFormatCode, v, buf)
	if err != nil {
		return nil, fmt.Errorf("column %q: %w", c.name, err)
	}
	if out == nil {
		return binary.BigEndian.AppendUint32(buf[:start], math.MaxUint32), nil
	}
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}

// copyHeader starts a binary COPY stream: signature, flags, extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// flushAt is how much encoded data is held before it is handed to the
// connection.
const flushAt = 1 << 16

// copyStream is one COPY ... FROM STDIN BINARY in progress: rows are
// encoded into buf, which goes through a pipe to pgconn, which sends it
// while the server takes it.
type copyStream struct {
	columns []copyColumn
	buf     []byte
	pw      *io.PipeWriter
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
}

// startCopy starts a COPY into table; freeze asks for COPY FREEZE, which
// only a table created in the current transaction (and subtransaction)
// takes.
func startCopy(ctx context.Context, pc *pgconn.PgConn, table string, columns []copyColumn, freeze bool) *copyStream {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = quote(c.name)
	}
	format := "BINARY"
	if freeze {
		format = "WITH (FORMAT binary, FREEZE)"
	}
	sql := "COPY " + table + " (" + strings.Join(names, ", ") + ") FROM STDIN " + format
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	s := &copyStream{columns: columns, buf: append(make([]byte, 0, flushAt+4096), copyHeader...), pw: pw, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		_, s.err = pc.CopyFrom(cctx, pr, sql)
		// A write waiting on the pipe must not wait for a reader that
		// has gone.
		pr.CloseWithError(errCopyEnded)
	}()
	return s
}

var errCopyEnded = errors.New("the COPY ended")

// row encodes one row; vals are in the stream's column order.
func (s *copyStream) row(vals []any) error {
	s.buf = binary.BigEndian.AppendUint16(s.buf, uint16(len(s.columns)))
	for i, c := range s.columns {
		var err error
		if s.buf, err = appendValue(s.buf, c, vals[i]); err != nil {
			return err
		}
	}
	if len(s.buf) >= flushAt {
		return s.flush()
	}
	return nil
}

// flush hands the encoded rows to the connection; it returns when pgconn
// has taken them.
func (s *copyStream) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.pw.Write(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		<-s.done
		if s.err != nil {
			return s.err
		}
		return err
	}
	return nil
}

// finish ends the stream and returns the COPY's outcome.
func (s *copyStream) finish() error {
	s.buf = binary.BigEndian.AppendUint16(s.buf, math.MaxUint16) // trailer: -1
	werr := s.flush()
	s.pw.Close()
	<-s.done
	s.cancel()
	if s.err != nil {
		return s.err
	}
	return werr
}

// abort cancels the stream: its rows are being rolled back.
func (s *copyStream) abort() {
	s.cancel()
	s.pw.CloseWithError(errors.New("COPY aborted"))
	<-s.done
}

// writeRows encodes the batch's rows of some kinds: cols gives, for each
// stream column before extra, the batch column (-1: NULL); extra fills the
// columns after them.
func (s *copyStream) writeRows(ctx context.Context, b *destination.Batch, kinds rowKind, cols []int, extra func(r int, vals []any)) error {
	vals := make([]any, len(s.columns))
	n := len(cols)
	for r := 0; r < b.Rows; r++ {
		if kinds&kindOf(b, r) == 0 {
			continue
		}
		for i, c := range cols {
			vals[i] = nil
			if c >= 0 {
				vals[i] = b.Values[c][r]
			}
		}
		extra(r, vals[n:])
		if err := s.row(vals); err != nil {
			return fmt.Errorf("batch row %d: %w", r+1, err)
		}
		if r%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return ctx.Err()
}
