package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/postgres"
	"github.com/sluicedata/sluice/internal/contract"
)

// TestBadInput: each mistake ends the sync with an error that names what
// is wrong and where, and never shows the password.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.exec(`CREATE TABLE {s}.items (id int PRIMARY KEY, payload jsonb, updated_at timestamptz)`)
	const pw = "s3cr3t-Pa55"
	good := f.cfg()
	withURL := func(u string) contract.Config { c := f.cfg(); c["url"] = u; return c }
	cases := []struct {
		name string
		cfg  contract.Config
		want []string
	}{
		{"unreachable", withURL("postgres://postgres:" + pw + "@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"), []string{"127.0.0.1:1", "cannot be reached", `"url"`}},
		{"bad credentials", withURL("postgres://nosuchuser:" + pw + "@127.0.0.1:5432/test?sslmode=disable"), []string{`"nosuchuser"`, "authentication failed"}},
		{"no such database", withURL("postgres://postgres:" + pw + "@127.0.0.1:5432/nosuchdb?sslmode=disable"), []string{`"nosuchdb" does not exist`}},
		{"bad url", withURL("postgres://postgres:" + pw + "@127.0.0.1:notaport/test"), []string{`"url" is not a valid PostgreSQL URL`}},
		{"no url", withURL(""), []string{`"url"`, "mandatory"}},
		{"no such schema", f.cfg("schemas", "nosuchschema"), []string{`"nosuchschema"`, "does not exist"}},
		{"no such table", f.cfg("tables", "items, nosuchtable"), []string{`"nosuchtable"`, "not a table"}},
		{"no such cursor", f.cfg("modes", `{"items": "incremental:nosuchcol"}`), []string{f.schema + ".items", `no column "nosuchcol"`, "updated_at"}},
		{"not a cursor", f.cfg("modes", `{"items": "incremental:payload"}`), []string{`"payload"`, "jsonb", "cannot be a cursor"}},
		{"bad mode", f.cfg("modes", `{"items": "sometimes"}`), []string{`"sometimes" is not a mode`}},
		{"modes for no table", f.cfg("modes", `{"other": "full_refresh"}`), []string{`"other"`, "not synced"}},
		{"modes not JSON", f.cfg("modes", `items=full`), []string{`"modes"`, "JSON object"}},
		{"bad checkpoint_rows", f.cfg("checkpoint_rows", "0"), []string{`"checkpoint_rows"`, "positive"}},
		{"bad replication", f.cfg("replication", "wal2json"), []string{`"replication"`, "pgoutput"}},
		{"bad slot", f.cfg("replication", "pgoutput", "slot", "Bad Slot"), []string{`"slot"`, "Bad Slot"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := srctest.New(t)
			err := w.Sync(context.Background(), postgres.Connector(), c.cfg, nil)
			srctest.WantErr(t, err, c.want...)
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Errorf("the password is in the error: %v", err)
			}
			if strings.Contains(w.Logs.String(), pw) {
				t.Errorf("the password is in the logs:\n%s", w.Logs.String())
			}
		})
	}
	// The same configuration with the mistake fixed syncs.
	w := srctest.New(t)
	sync(t, w, good)
}

func TestSecrets(t *testing.T) {
	for _, u := range []string{
		"postgres://u:pw-url@host/db",
		"host=h user=u password=pw-kv dbname=d",
	} {
		s := postgres.Secrets(contract.Config{"url": u})
		found := false
		for _, v := range s {
			if strings.HasPrefix(v, "pw-") {
				found = true
			}
		}
		if !found || !contains(s, u) {
			t.Errorf("Secrets(%q) = %q: want the URL and its password", u, s)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
