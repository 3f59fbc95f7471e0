package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"time"
)

// appendCanon appends a self-delimiting encoding of a canonical value: a
// type tag, then the value. Keys and _sluice_id hashes are built from it, so
// equal values always encode alike and different ones never do.
func appendCanon(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, 0)
	case bool:
		if x {
			return append(buf, 1, 1)
		}
		return append(buf, 1, 0)
	case int64:
		buf = append(buf, 2)
		return binary.BigEndian.AppendUint64(buf, uint64(x))
	case float64:
		if x == 0 {
			x = 0 // -0 equals 0: one key
		}
		buf = append(buf, 3)
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(x))
	case string:
		buf = append(buf, 4)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...)
	case []byte:
		buf = append(buf, 5)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...)
	case time.Time:
		buf = append(buf, 6)
		buf = binary.BigEndian.AppendUint64(buf, uint64(x.Unix()))
		return binary.BigEndian.AppendUint32(buf, uint32(x.Nanosecond()))
	}
	// Canonical values are one of the types above; anything else is a bug,
	// but must still not collide, so tag it apart.
	return append(buf, 0xff)
}

// rowHash computes _sluice_id: SHA-256 over the non-NULL values in column
// name order, as 32 hex digits. It depends on the values alone, not on the
// order of the row's keys or on columns the row leaves out.
func rowHash(buf []byte, names []string, vals []any, order []int) (string, []byte) {
	buf = buf[:0]
	for _, i := range order {
		if i >= len(vals) || vals[i] == nil {
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(names[i])))
		buf = append(buf, names[i]...)
		buf = appendCanon(buf, vals[i])
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:16]), buf
}
