package cli

import (
	"bytes"
	"context"
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
