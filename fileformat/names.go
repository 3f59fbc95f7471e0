package fileformat

import (
	"strconv"
	"strings"
)

// CleanNames turns header names into names every warehouse takes unquoted
// and every tool can type:
//
//   - each character that is not an ASCII letter, digit or _ becomes _
//     (one _ per character, whatever its UTF-8 length), and runs of _
//     become one, so "unit price (€)" is "unit_price";
//   - _ at either end goes, so spaces around a name leave no trace;
//   - a name that starts with a digit gets a leading _ ("2024 total" is
//     "_2024_total"), as the engine's own normalisation does;
//   - a name left empty becomes column_N, N its 1-based position;
//   - a name equal to an earlier one, ignoring case, gets the first free
//     suffix _1, _2, ... in order ("id", "ID", "id" are "id", "ID_1",
//     "id_2"), never taking a name that another column has.
//
// Case is kept. clean has one name per input name; changed maps each
// original name that changed to its clean form, for showing the user (for
// the same original twice, the last one wins: clean is the reference).
func CleanNames(names []string) (clean []string, changed map[string]string) {
	clean = make([]string, len(names))
	for i, n := range names {
		var b strings.Builder
		b.Grow(len(n))
		under := true // no _ at the start
		for _, r := range n {
			if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				b.WriteRune(r)
				under = false
				continue
			}
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
		s := strings.TrimRight(b.String(), "_")
		switch {
		case s == "":
			s = "column_" + strconv.Itoa(i+1)
		case s[0] >= '0' && s[0] <= '9':
			s = "_" + s
		}
		clean[i] = s
	}

	// Names a column already has are reserved before any suffix is
	// chosen, so that a suffixed duplicate never takes a later column's
	// name.
	taken := make(map[string]bool, len(clean))
	for _, s := range clean {
		taken[strings.ToLower(s)] = true
	}
	seen := make(map[string]bool, len(clean))
	next := make(map[string]int)
	for i, s := range clean {
		low := strings.ToLower(s)
		if !seen[low] {
			seen[low] = true
			continue
		}
		k := next[low]
		for {
			k++
			cand := s + "_" + strconv.Itoa(k)
			if !taken[strings.ToLower(cand)] {
				clean[i] = cand
				taken[strings.ToLower(cand)] = true
				seen[strings.ToLower(cand)] = true
				break
			}
		}
		next[low] = k
	}
	for i, n := range names {
		if clean[i] != n {
			if changed == nil {
				changed = make(map[string]string)
			}
			changed[n] = clean[i]
		}
	}
	return clean, changed
}
