package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/postgres"
	"github.com/sluicedata/sluice/internal/contract"
)

// fixture is a PostgreSQL schema of the test's own, dropped at the end, so
// that tests run twice and beside other packages' tests.
type fixture struct {
	t      *testing.T
	url    string
	conn   *pgx.Conn
	schema string
	suffix string
}

func pgURL(t *testing.T) string {
	u := os.Getenv("SLUICE_POSTGRES_URL")
	if u == "" {
		t.Skip("SLUICE_POSTGRES_URL is not set: set it to a PostgreSQL database URL, such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL source tests")
	}
	return u
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	u := pgURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to SLUICE_POSTGRES_URL: %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	f := &fixture{t: t, url: u, conn: conn, suffix: hex.EncodeToString(b)}
	f.schema = "pgsrc_" + f.suffix
	f.exec(`CREATE SCHEMA {s}`)
	t.Cleanup(func() {
		f.conn.Exec(context.Background(), `DROP SCHEMA `+f.schema+` CASCADE`)
		f.conn.Close(context.Background())
	})
	return f
}

// exec runs statements, with {s} standing for the test's schema.
func (f *fixture) exec(stmts ...string) {
	f.t.Helper()
	for _, q := range stmts {
		q = strings.ReplaceAll(q, "{s}", f.schema)
		if _, err := f.conn.Exec(context.Background(), q); err != nil {
			f.t.Fatalf("%s: %v", q, err)
		}
	}
}

// cfg is the configuration for the test's schema, with more key-value
// pairs.
func (f *fixture) cfg(kv ...string) contract.Config {
	c := contract.Config{"url": f.url, "schemas": f.schema}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

// dest is a table's name in the warehouse: schema_table, as the test schema
// is not public.
func (f *fixture) dest(table string) string { return f.schema + "_" + table }

var conn = postgres.Connector()

func sync(t *testing.T, w *srctest.Warehouse, cfg contract.Config) {
	t.Helper()
	w.MustSync(context.Background(), conn, cfg)
}
