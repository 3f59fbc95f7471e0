//go:build unix

package cli_test

// Which destination debug and run sync into: --destination, else
// SLUICE_DESTINATION, else sluice.json's "destination", else (debug only)
// files/warehouse.db; and the password a project file takes from the
// environment never shows.

import (
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func runDebugCmd(t *testing.T, bin, dir string, env []string, args ...string) (code int, out string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"debug"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), b.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, b.String()
}

// accounts counts the rows a sync left in a DuckDB file, -1 for no file.
func accounts(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return -1
	}
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM crash.accounts`).Scan(&n); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func TestDestinationChoice(t *testing.T) {
	bin := buildTestConn(t, "crashconn")
	project := func(t *testing.T, content string) string {
		dir := t.TempDir()
		if content != "" {
			if err := os.WriteFile(filepath.Join(dir, "sluice.json"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	noEnv := []string{"SLUICE_DESTINATION="}

	t.Run("debug precedence", func(t *testing.T) {
		dir := project(t, `{"destination": "duckdb:fromfile.db"}`)
		files := filepath.Join(dir, "files")
		for _, c := range []struct {
			name string
			env  []string
			args []string
			want string // the file that must have grown
			from string // what debug says it used
		}{
			{"project file", noEnv, nil, "fromfile.db", "(from sluice.json)"},
			{"environment over the file", []string{"SLUICE_DESTINATION=duckdb:fromenv.db"}, nil, "fromenv.db", "(from SLUICE_DESTINATION)"},
			{"flag over both", []string{"SLUICE_DESTINATION=duckdb:fromenv2.db"}, []string{"--destination", "duckdb:fromflag.db"}, "fromflag.db", "fromflag.db\n"},
		} {
			os.RemoveAll(files) // start each sync afresh
			code, out := runDebugCmd(t, bin, dir, c.env, c.args...)
			if code != 0 {
				t.Fatalf("%s: exit %d\n%s", c.name, code, out)
			}
			if n := accounts(t, filepath.Join(dir, c.want)); n <= 0 {
				t.Errorf("%s: %s has %d accounts\n%s", c.name, c.want, n, out)
			}
			if !strings.Contains(out, c.from) {
				t.Errorf("%s: output does not say %q:\n%s", c.name, c.from, out)
			}
		}
		for _, f := range []string{"fromenv2.db", filepath.Join("files", "warehouse.db")} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("%s was written", f)
			}
		}
	})

	t.Run("debug default", func(t *testing.T) {
		dir := project(t, `{"stores": {}}`)
		if code, out := runDebugCmd(t, bin, dir, noEnv); code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if n := accounts(t, filepath.Join(dir, "files", "warehouse.db")); n <= 0 {
			t.Errorf("default warehouse has %d accounts", n)
		}
	})

	t.Run("run from the project file", func(t *testing.T) {
		dir := project(t, `{"destination": {"url": "duckdb:prod.db"}}`)
		o := runProd(t, bin, dir, noEnv)
		if o.code != 0 {
			t.Fatalf("exit %d\n%s", o.code, o.raw)
		}
		checkSummary(t, o, "success", 600)
		if n := accounts(t, filepath.Join(dir, "prod.db")); n <= 0 {
			t.Errorf("prod.db has %d accounts", n)
		}
		// The environment wins over the file.
		o = runProd(t, bin, dir, []string{"SLUICE_DESTINATION=duckdb:other.db"})
		if o.code != 0 || accounts(t, filepath.Join(dir, "other.db")) <= 0 {
			t.Errorf("SLUICE_DESTINATION over the file: exit %d\n%s", o.code, o.raw)
		}
	})

	// A broken project file matters only when it is read.
	t.Run("bad project file", func(t *testing.T) {
		dir := project(t, `{"destination": "postgres://loader:pw-in-file@db/dw"}`)
		code, out := runDebugCmd(t, bin, dir, noEnv)
		if code != 1 || !strings.Contains(out, "holds a password") || strings.Contains(out, "pw-in-file") {
			t.Errorf("password in the file: exit %d\n%s", code, out)
		}
		if code, out := runDebugCmd(t, bin, dir, noEnv, "--destination", "duckdb:flag.db"); code != 0 {
			t.Errorf("with --destination: exit %d\n%s", code, out)
		}
	})

	// The password comes from the variable the file names and shows
	// nowhere, even in a connection error: port 1 refuses.
	t.Run("secret", func(t *testing.T) {
		const secret = "pw-from-env-not-shown"
		dir := project(t, `{"destination": {"url": "postgres://loader@127.0.0.1:1/dw?sslmode=disable&connect_timeout=5", "password_env": "SLUICE_TEST_DW_PASSWORD"}}`)
		env := append(noEnv, "SLUICE_TEST_DW_PASSWORD="+secret)
		code, out := runDebugCmd(t, bin, dir, env)
		if code != 1 || !strings.Contains(out, "127.0.0.1") || strings.Contains(out, secret) {
			t.Errorf("debug: exit %d, want 1 and no secret:\n%s", code, out)
		}
		o := runProd(t, bin, dir, env)
		if o.code != 1 || o.last("sync failed") == nil || strings.Contains(o.raw, secret) {
			t.Errorf("run: exit %d, want 1 and no secret:\n%s", o.code, o.raw)
		}
		// Unset: the error names the variable.
		o = runProd(t, bin, dir, noEnv)
		if f := o.last("sync failed"); o.code != 1 || f == nil || !strings.Contains(f["error"].(string), "SLUICE_TEST_DW_PASSWORD, which is not set") {
			t.Errorf("unset: exit %d, %v", o.code, f)
		}
	})

	t.Run("secret into postgres", func(t *testing.T) {
		pg := os.Getenv("SLUICE_POSTGRES_URL")
		if pg == "" {
			t.Skip("set SLUICE_POSTGRES_URL to sync into PostgreSQL through sluice.json")
		}
		u, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(u.User.Username())
		const secret = "pw-project-postgres-not-shown"
		schema := "dest_" + strings.ReplaceAll(filepath.Base(t.TempDir()), "-", "_")
		dir := project(t, `{"destination": {"url": "`+u.String()+`", "password_env": "SLUICE_TEST_DW_PASSWORD"}}`)
		t.Cleanup(func() {
			ctx := context.Background()
			if c, err := pgx.Connect(ctx, pg); err == nil {
				c.Exec(ctx, `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
				c.Close(ctx)
			}
		})
		// The test server trusts local connections, so any password
		// connects; the point is that this one never shows.
		o := runProd(t, bin, dir, append(noEnv, "SLUICE_TEST_DW_PASSWORD="+secret), "--schema", schema)
		if o.code != 0 {
			t.Fatalf("exit %d\n%s", o.code, o.raw)
		}
		checkSummary(t, o, "success", 600)
		if strings.Contains(o.raw, secret) {
			t.Errorf("the password shows:\n%s", o.raw)
		}
		if start := o.last("sync started"); start == nil || !strings.Contains(start["destination"].(string), ":***@") {
			t.Errorf("start line %v", start)
		}
	})
}
