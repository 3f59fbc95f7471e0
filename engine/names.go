package engine

import (
	"fmt"
	"strings"
	"unicode"
)

// Normalize turns a source table or column name into the warehouse form:
// lower snake_case. Word boundaries in camelCase become underscores
// ("OrderID" -> "order_id"), every run of characters that is not a letter or
// a digit becomes one underscore, trailing ones go, a leading one is kept as one ("__id" ->
// "_id"), and a
// name that starts with a digit gets a leading underscore ("1st" -> "_1st").
// Letters outside ASCII are kept, lowercased. Names are always quoted in SQL,
// so reserved words such as "order" stay as they are.
//
// A name with no letter or digit is an error, and so is one that takes the
// prefix of the system columns, _sluice_.
func Normalize(name string) (string, error) {
	var b strings.Builder
	rs := []rune(name)
	pendingSep := false
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			pendingSep = true
			continue
		}
		if unicode.IsUpper(r) && i > 0 && b.Len() > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// An acronym's plural ("IDs", "URLsSeen") keeps its "s".
			if nextLower && rs[i+1] == 's' && (i+2 == len(rs) || !unicode.IsLower(rs[i+2])) {
				nextLower = false
			}
			// "fooBar" and the "D" of "HTTPServer"'s "rS" both start a word;
			// the letters inside an acronym ("HTTP") do not.
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				pendingSep = true
			}
		}
		if pendingSep && b.Len() > 0 {
			b.WriteByte('_')
		}
		pendingSep = false
		b.WriteRune(unicode.ToLower(r))
	}
	out := b.String()
	if out != "" && strings.HasPrefix(name, "_") {
		out = "_" + out // keep "_id" apart from "id"
	}
	if out == "" {
		return "", fmt.Errorf("name %q has no letter or digit", name)
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	if strings.HasPrefix(out, "_sluice_") || out == "_sluice" {
		return "", fmt.Errorf("name %q is reserved: names starting with _sluice_ belong to sluice's system columns", name)
	}
	return out, nil
}
