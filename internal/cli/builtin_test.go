package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/destination/duckdb"
)

func TestConnectorFlag(t *testing.T) {
	for _, tc := range []struct {
		args, rest []string
		name       string
		ok         bool
	}{
		{[]string{"--connector", "files", "--verbose"}, []string{"--verbose"}, "files", true},
		{[]string{"--verbose", "--connector=postgres"}, []string{"--verbose"}, "postgres", true},
		{[]string{"--verbose"}, []string{"--verbose"}, "", false},
	} {
		name, rest, ok := connectorFlag(tc.args)
		if name != tc.name || ok != tc.ok || !slices.Equal(rest, tc.rest) {
			t.Errorf("connectorFlag(%q) = %q, %q, %v", tc.args, name, rest, ok)
		}
	}
}

// sluice debug --connector files syncs a folder of files into the local
// warehouse, in the sluice program itself.
func TestBuiltinFilesDebug(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "users.csv"), []byte("id,name\n1,Ada\n2,\"Grace, H\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "configuration.json")
	if err := os.WriteFile(cfg, []byte(`{"root": "`+filepath.ToSlash(data)+`", "primary_key": "{\"users\":\"id\"}"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runBuiltin("debug", "files", []string{"--configuration", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	db, err := duckdb.OpenDB(context.Background(), filepath.Join(dir, FilesDir, WarehouseFile), duckdb.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []string
	rows, err := db.Query(`SELECT id::VARCHAR || '|' || name FROM files.users WHERE NOT _sluice_deleted ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []string{"1|Ada", "2|Grace, H"}; !slices.Equal(got, want) {
		t.Errorf("users: %q, want %q", got, want)
	}

	errb.Reset()
	if code := runBuiltin("debug", "nope", nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), `no built-in connector "nope" (built in: files, mysql, postgres)`) {
		t.Errorf("unknown connector: exit %d, stderr %q", code, errb.String())
	}
}
