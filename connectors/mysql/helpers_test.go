package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluicedata/sluice/connectors/internal/srctest"
	"github.com/sluicedata/sluice/connectors/mysql"
	"github.com/sluicedata/sluice/internal/contract"
)

// fixture is a database of the test's own, dropped at the end, so that
// tests run twice and beside other packages' tests.
type fixture struct {
	t   *testing.T
	url string
	db  *sql.DB
	dbn string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	u := os.Getenv("SLUICE_MYSQL_URL")
	if u == "" {
		t.Skip("SLUICE_MYSQL_URL is not set: set it to a MySQL or MariaDB DSN, such as root@tcp(127.0.0.1:3306)/test, to run the MySQL source tests")
	}
	db, err := sql.Open("mysql", u)
	if err != nil {
		t.Fatalf("SLUICE_MYSQL_URL: %v", err)
	}
	db.SetMaxOpenConns(1) // one session: session settings hold for every statement
	b := make([]byte, 4)
	rand.Read(b)
	f := &fixture{t: t, url: u, db: db, dbn: "mysrc_" + hex.EncodeToString(b)}
	f.exec("CREATE DATABASE {s}")
	t.Cleanup(func() {
		f.db.Exec("DROP DATABASE IF EXISTS " + f.dbn)
		f.db.Close()
	})
	return f
}

// exec runs statements, with {s} standing for the test's database.
func (f *fixture) exec(stmts ...string) {
	f.t.Helper()
	for _, q := range stmts {
		q = strings.ReplaceAll(q, "{s}", f.dbn)
		if _, err := f.db.Exec(q); err != nil {
			f.t.Fatalf("%s: %v", q, err)
		}
	}
}

func (f *fixture) cfg(kv ...string) contract.Config {
	c := contract.Config{"url": f.url, "schemas": f.dbn}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

// dest is a table's warehouse name: database_table, as the test's database
// is not the URL's.
func (f *fixture) dest(table string) string { return f.dbn + "_" + table }

var conn = mysql.Connector()

func sync(t *testing.T, w *srctest.Warehouse, cfg contract.Config) {
	t.Helper()
	w.MustSync(context.Background(), conn, cfg)
}
