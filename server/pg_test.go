package server

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// pgURL is the test PostgreSQL server (SLUICE_POSTGRES_URL, as .ci/run
// sets it); tests that need it skip without it.
func pgURL(t *testing.T) string {
	u := os.Getenv("SLUICE_POSTGRES_URL")
	if u == "" {
		t.Skip("SLUICE_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): PostgreSQL tests skipped")
	}
	return u
}

// pgSchema makes a schema for one test's store and returns the store URL
// (search_path set to it) and a way to run SQL. The schema and the
// destination schemas named are dropped at the end.
func pgSchema(t testing.TB, base string, dropAlso ...*string) string {
	t.Helper()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("sluice_srv_test_%d", rand.Uint32())
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		for _, s := range dropAlso {
			db.Exec(`DROP SCHEMA IF EXISTS "` + *s + `" CASCADE`)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresWorkers: the store in PostgreSQL, a PostgreSQL destination,
// and two server processes' worth of workers sharing the work: every
// connection runs, and no two runs of one connection overlap.
func TestPostgresWorkers(t *testing.T) {
	t.Parallel()
	base := pgURL(t)
	names := make([]string, 3)
	ptrs := make([]*string, len(names))
	suffix := rand.Uint32()
	for i := range names {
		names[i] = fmt.Sprintf("pgconn_%d_%d", suffix, i)
		ptrs[i] = &names[i]
	}
	store := pgSchema(t, base, ptrs...)
	cfgA := testConfig(t.TempDir())
	cfgA.DB = store
	cfgB := cfgA
	cfgB.DataDir = t.TempDir() // another machine: its own binary cache
	a := startServer(t, cfgA)
	b := &harness{t: t, cfg: cfgB, key: a.key}
	b.start()
	t.Cleanup(b.stop)

	a.must("POST", "/api/destinations", map[string]string{"name": "pg", "url": base}, 201, nil)
	lock := filepath.Join(t.TempDir(), "lock")
	for _, n := range names {
		// One lock file per connection: runs of different connections
		// may overlap, runs of one may not.
		a.deploy(n, "pg", map[string]string{"rows": "3", "lock_file": lock + n, "sleep_ms": "300"}, "manual")
	}
	for range 3 {
		for _, n := range names {
			a.must("POST", "/api/connections/"+n+"/sync", nil, 202, nil)
			b.must("POST", "/api/connections/"+n+"/sync", nil, 202, nil)
		}
	}
	workers := map[string]bool{}
	for _, n := range names {
		runs := a.waitRuns(n, "the runs of "+n, func(r []Run) bool {
			return len(r) >= 1 && finished(r, RunRunning) == 0 && a.idle(n)
		})
		noOverlap(t, runs, lock+n)
		for _, r := range runs {
			workers[r.Worker] = true
		}
	}
	// Which worker takes which job is River's choice: both may, or one
	// may take them all.
	t.Logf("runs were worked by %d servers", len(workers))

	// The data is in the PostgreSQL destination, and the state too.
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM "` + names[0] + `".items WHERE NOT _sluice_deleted`).Scan(&rows); err != nil || rows != 3 {
		t.Errorf("items in the PostgreSQL destination: %d %v", rows, err)
	}
	var sv StateView
	a.must("GET", "/api/connections/"+names[0]+"/state", nil, 200, &sv)
	if sv.Source != "destination" || !strings.Contains(compact(sv.State), `"items":{"rows":3}`) {
		t.Errorf("state: %+v %s", sv, sv.State)
	}
}

// TestCrashedWorkerPostgres: a worker process killed in the middle of a
// sync; River's rescuer, on another process, retries the sync.
func TestCrashedWorkerPostgres(t *testing.T) {
	t.Parallel()
	base := pgURL(t)
	conn := fmt.Sprintf("pgcrash_%d", rand.Uint32())
	store := pgSchema(t, base, &conn)
	cfg := testConfig(t.TempDir())
	cfg.DB = store
	cfg.RescueAfter = 2e9
	// This process serves the API only, so that the worker process takes
	// the job; it starts its workers once that one is dead.
	h := &harness{t: t, cfg: cfg, noStart: true}
	h.start()
	t.Cleanup(h.stop)
	h.must("POST", "/api/destinations", map[string]string{"name": "pg", "url": base}, 201, nil)
	crashWorkerScenario(t, h, conn, "pg", func() {
		if err := h.srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPGLockerStoresApart: two stores in one database, each with a
// connection of id 1. A run of one must not hold up the other's, and
// within a store the lock still excludes.
func TestPGLockerStoresApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := pgURL(t)
	lockers := make([]*pgLocker, 2)
	for i := range lockers {
		db, err := sql.Open("pgx", pgSchema(t, base))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if lockers[i], err = newPGLocker(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	unlockA, _, ok, err := lockers[0].tryLock(ctx, lockClassConnection, 1)
	if err != nil || !ok {
		t.Fatalf("store A, connection 1: ok %v, %v", ok, err)
	}
	unlockB, _, ok, err := lockers[1].tryLock(ctx, lockClassConnection, 1)
	if err != nil || !ok {
		t.Fatalf("store B, connection 1, while store A's connection 1 runs: ok %v, %v", ok, err)
	}
	defer unlockB()
	if _, _, ok, err := lockers[0].tryLock(ctx, lockClassConnection, 1); err != nil || ok {
		t.Fatalf("store A, connection 1, taken twice: ok %v, %v", ok, err)
	}
	unlockA()
	unlockA2, _, ok, err := lockers[0].tryLock(ctx, lockClassConnection, 1)
	if err != nil || !ok {
		t.Fatalf("store A, connection 1, after its unlock: ok %v, %v", ok, err)
	}
	unlockA2()
}
