package contract

import (
	"encoding/json"
	"math"
	"strconv"
)

// Numbers in a State read from JSON are json.Number, so that a 64-bit cursor
// such as 1234567890123456789 survives the round trip exactly (a float64
// would round it). These accessors read a key whatever numeric form it has:
// json.Number from a saved state, or an int or float the connector put there.

// Int64 returns the key's value as an integer, and whether it is one.
func (s State) Int64(key string) (int64, bool) {
	switch v := s[key].(type) {
	case json.Number:
		i, err := v.Int64()
		return i, err == nil
	case int:
		return int64(v), true
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), true
		}
	case string:
		i, err := strconv.ParseInt(v, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// Float64 returns the key's value as a float, and whether it is a number.
func (s State) Float64(key string) (float64, bool) {
	switch v := s[key].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// String returns the key's value if it is a string.
func (s State) String(key string) (string, bool) {
	v, ok := s[key].(string)
	return v, ok
}
