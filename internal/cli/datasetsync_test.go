package cli

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/internal/contract"
)

// debugShop runs debug on the shop dataset in the current folder.
func debugShop(t *testing.T, s *shop, args ...string) (code int, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code = runDataset(s, append([]string{"debug"}, args...), strings.NewReader(""), &stdout, &stderr)
	out = stdout.String() + stderr.String()
	if strings.Contains(out, "s3cr3t-code") {
		t.Errorf("the secret parameter's value was printed:\n%s", out)
	}
	return code, out
}

func shopRows(t *testing.T) []string {
	t.Helper()
	db, err := duckdb.OpenDB(context.Background(), filepath.Join(FilesDir, "warehouse.db"), duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT _partition || ' ' || _row || ' ' || coalesce(id::VARCHAR, '-') || ' ' || coalesce(name, '-') || ' ' ||
		country || ' ' || strftime("day", '%Y-%m-%d') || ' ' || _sluice_deleted FROM shop.shop ORDER BY _partition, _row`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// debug on a dataset syncs every partition into one table keyed by
// (partition, row), replaces a partition on a later sync (rows it no longer
// has are soft-deleted), syncs only new partitions with --incremental, and
// never prints the secret parameter the connector logs.
func TestDatasetDebug(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("configuration.json", []byte(`{"login_code": "s3cr3t-code"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newShop()
	if code, out := debugShop(t, s); code != 0 {
		t.Fatalf("debug: exit %d\n%s", code, out)
	}
	want := []string{
		"2024-03-01|FR 0 1 Ada FR 2024-03-01 false",
		"2024-03-01|FR 1 2 Grace, \"GH\" FR 2024-03-01 false",
		"2024-03-02|DE 0 3 - DE 2024-03-02 false",
	}
	if got := shopRows(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the first sync:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The FR partition shrinks to one row; only it is synced again.
	s.parts["2024-03-01|FR"] = []contract.Row{{"id": 9, "name": "Nine"}}
	if code, out := debugShop(t, s, "--partition", "2024-03-01|FR"); code != 0 {
		t.Fatalf("debug --partition: exit %d\n%s", code, out)
	}
	want = []string{
		"2024-03-01|FR 0 9 Nine FR 2024-03-01 false",
		"2024-03-01|FR 1 2 Grace, \"GH\" FR 2024-03-01 true",
		"2024-03-02|DE 0 3 - DE 2024-03-02 false",
	}
	if got := shopRows(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after replacing FR:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	state, err := os.ReadFile(filepath.Join(FilesDir, StateFile))
	if err != nil || !strings.Contains(string(state), `"2024-03-01|FR":1`) || !strings.Contains(string(state), `"2024-03-02|DE":1`) {
		t.Errorf("state %s (%v)", state, err)
	}

	// --incremental reads only the partition the state has not seen: the DE
	// change is not picked up, the new IT partition is.
	s.parts["2024-03-02|DE"] = []contract.Row{{"id": 4, "name": "changed"}}
	s.parts["2024-03-03|IT"] = []contract.Row{{"id": 5, "name": "Ciao"}}
	s.order = append(s.order, "2024-03-03|IT")
	if code, out := debugShop(t, s, "--incremental"); code != 0 {
		t.Fatalf("debug --incremental: exit %d\n%s", code, out)
	}
	want = append(want, "2024-03-03|IT 0 5 Ciao IT 2024-03-03 false")
	if got := shopRows(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after --incremental:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	code, out := debugShop(t, s, "--partition", "2024-3-1|FR")
	if code != 1 || !strings.Contains(out, `malformed partition id "2024-3-1|FR"`) {
		t.Errorf("a malformed partition id: exit %d\n%s", code, out)
	}
	db, err := duckdb.OpenDB(context.Background(), filepath.Join(FilesDir, "warehouse.db"), duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var leaked int
	if err := db.QueryRow(`SELECT count(*) FROM shop._sluice_log WHERE message LIKE '%s3cr3t-code%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("the secret is in _sluice_log %d times (%v)", leaked, err)
	}
}

// Rows whose columns change from one row to the next get exactly their own
// values: no value carries over from an earlier row (the sync reuses one
// map), a dimension column the row has itself keeps the row's value, and
// _row is the position whatever the row says. The connector's rows are
// left as they were.
func TestDatasetDebugRowsOfChangingShape(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("configuration.json", []byte(`{"login_code": "s3cr3t-code"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newShop()
	s.parts["2024-03-01|FR"] = []contract.Row{
		{"id": 1, "name": "Ada", "country": "XX"},
		{"id": 2, "_row": 99},
		{"id": 3, "name": "C", "_partition": "forged"},
		{"id": 4, "name": "D"},
	}
	if code, out := debugShop(t, s); code != 0 {
		t.Fatalf("debug: exit %d\n%s", code, out)
	}
	want := []string{
		"2024-03-01|FR 0 1 Ada XX 2024-03-01 false",
		"2024-03-01|FR 1 2 - FR 2024-03-01 false",
		"2024-03-01|FR 2 3 C FR 2024-03-01 false",
		"2024-03-01|FR 3 4 D FR 2024-03-01 false",
		"2024-03-02|DE 0 3 - DE 2024-03-02 false",
	}
	if got := shopRows(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := s.parts["2024-03-01|FR"][1]; len(r) != 2 || r["_row"] != 99 {
		t.Errorf("the connector's row changed: %v", r)
	}
}

// datasetRow gives each row exactly its own columns and the added ones,
// whatever the rows before it had, and never changes the connector's row;
// extra adds the same values for an engine to fold beside the row.
func TestDatasetRow(t *testing.T) {
	dims := contract.Partitioning{{Name: "day", Period: contract.Day}, {Name: "country"}}
	p, err := dims.Parse("2024-03-01|FR")
	if err != nil {
		t.Fatal(err)
	}
	day := p.Values[0]
	q, err := dims.Parse("2024-03-02|DE")
	if err != nil {
		t.Fatal(err)
	}
	r := newDatasetRow(dims)
	steps := []struct {
		part contract.Partition
		in   contract.Row
		want map[string]any
	}{
		{p, contract.Row{"id": 1, "name": "Ada"}, map[string]any{"id": 1, "name": "Ada", "_partition": "2024-03-01|FR", "_row": int64(0), "day": day, "country": "FR"}},
		{p, contract.Row{"id": 2}, map[string]any{"id": 2, "_partition": "2024-03-01|FR", "_row": int64(1), "day": day, "country": "FR"}},
		{p, contract.Row{"id": 3, "country": "XX"}, map[string]any{"id": 3, "_partition": "2024-03-01|FR", "_row": int64(2), "day": day, "country": "XX"}},
		{p, contract.Row{"id": 4, "note": "n"}, map[string]any{"id": 4, "note": "n", "_partition": "2024-03-01|FR", "_row": int64(3), "day": day, "country": "FR"}},
		{p, contract.Row{"_row": 99, "_partition": "forged"}, map[string]any{"_partition": "2024-03-01|FR", "_row": int64(4), "day": day, "country": "FR"}},
		{q, contract.Row{"id": 5}, map[string]any{"id": 5, "_partition": "2024-03-02|DE", "_row": int64(0), "day": q.Values[0], "country": "DE"}},
		{q, contract.Row{}, map[string]any{"_partition": "2024-03-02|DE", "_row": int64(1), "day": q.Values[0], "country": "DE"}},
	}
	n := int64(0)
	for i, s := range steps {
		if i > 0 && s.part.ID != steps[i-1].part.ID {
			n = 0
		}
		if i == 0 || s.part.ID != steps[i-1].part.ID {
			r.partition(s.part)
		}
		before := maps.Clone(s.in)
		// What an engine folds from UpsertWith: the row, its values
		// replaced by the added ones.
		viaExtra := maps.Clone(s.in)
		for _, f := range r.extra(s.in, n) {
			viaExtra[f.Name] = f.Value
		}
		got := r.row(s.in, n)
		n++
		if !maps.Equal(got, s.want) {
			t.Errorf("row %d: got %v, want %v", i, got, s.want)
		}
		if !maps.Equal(viaExtra, s.want) {
			t.Errorf("row %d: the row with its extra values is %v, want %v", i, viaExtra, s.want)
		}
		if !maps.Equal(s.in, before) {
			t.Errorf("row %d: the connector's row changed to %v", i, s.in)
		}
	}

	// Without partitioning only the id (empty) and the position are added.
	r = newDatasetRow(nil)
	r.partition(contract.Partition{})
	if got := r.row(contract.Row{"a": 1}, 7); !maps.Equal(got, map[string]any{"a": 1, "_partition": "", "_row": int64(7)}) {
		t.Errorf("unpartitioned: %v", got)
	}
}
