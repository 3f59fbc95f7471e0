package fileformat_test

import (
	"testing"

	"github.com/sluicedata/sluice/fileformat"
)

func TestCleanNames(t *testing.T) {
	for _, c := range []struct {
		in, want []string
		changed  map[string]string
	}{
		{in: []string{"id", "name"}, want: []string{"id", "name"}},
		{in: []string{" First Name ", "e-mail", "unit price (€)", "a__b", "_id_", "ça"},
			want:    []string{"First_Name", "e_mail", "unit_price", "a_b", "id", "a"},
			changed: map[string]string{" First Name ": "First_Name", "e-mail": "e_mail", "unit price (€)": "unit_price", "a__b": "a_b", "_id_": "id", "ça": "a"}},
		{in: []string{"2024 total", "1"}, want: []string{"_2024_total", "_1"},
			changed: map[string]string{"2024 total": "_2024_total", "1": "_1"}},
		{in: []string{"", "x", "  ", "€"}, want: []string{"column_1", "x", "column_3", "column_4"},
			changed: map[string]string{"": "column_1", "  ": "column_3", "€": "column_4"}},
		{in: []string{"id", "ID", "id", "Id"}, want: []string{"id", "ID_1", "id_2", "Id_3"},
			changed: map[string]string{"ID": "ID_1", "id": "id_2", "Id": "Id_3"}},
		// A suffix never takes a name another column has.
		{in: []string{"a", "a", "a_1"}, want: []string{"a", "a_2", "a_1"},
			changed: map[string]string{"a": "a_2"}},
		// Cleaning can make names equal.
		{in: []string{"a b", "a-b", "a_b"}, want: []string{"a_b", "a_b_1", "a_b_2"},
			changed: map[string]string{"a b": "a_b", "a-b": "a_b_1", "a_b": "a_b_2"}},
		// An empty name's column_N may be taken already.
		{in: []string{"column_2", ""}, want: []string{"column_2", "column_2_1"},
			changed: map[string]string{"": "column_2_1"}},
		{in: nil, want: []string{}},
	} {
		got, changed := fileformat.CleanNames(c.in)
		csvWant(t, got, c.want)
		csvWant(t, changed, c.changed)
	}
}
