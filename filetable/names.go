package filetable

import (
	"sort"
	"strings"
)

// closest returns up to n of names that look like name: by edit distance
// (ignoring case), within about a third of the name's length, or holding
// it, or held by it. The nearest come first.
func closest(name string, names []string, n int) []string {
	low := strings.ToLower(name)
	limit := max(2, len([]rune(low))/3)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, c := range names {
		lc := strings.ToLower(c)
		d := editDistance(low, lc)
		if d > limit && !(len(low) >= 3 && (strings.Contains(lc, low) || strings.Contains(low, lc) && len(lc) >= 3)) {
			continue
		}
		cs = append(cs, cand{c, d})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for _, c := range cs {
		if len(out) == n {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
