// Package server is `sluice serve`: it runs deployed connectors on a
// schedule into their destinations, keeps the history of their runs and
// logs, and serves a REST API (described in openapi.json, served at
// /api/openapi.json) and a web page.
//
// # Parts
//
//   - The metadata store (store.go, objects.go): destinations, connections,
//     connector builds (cut into 1 MiB chunks, so neither an upload nor a
//     run's extraction holds a build in memory), runs with their per-table
//     counts, run logs, API keys. SQLite in the data folder by default
//     (modernc.org/sqlite, pure Go: `sluice serve` works on a fresh machine
//     with nothing else installed), PostgreSQL with --db for production.
//   - The job queue (jobs.go): River. A sync is a River job; see below.
//   - The runner (runner.go): a sync runs the uploaded program's `run`
//     command as a subprocess. Why a subprocess is explained there.
//   - State and re-sync (state.go): the state lives in the destination,
//     committed by the connector with its data; re-sync semantics there.
//   - The API (api.go) and the page (web/, embedded; plain HTML, CSS and
//     JavaScript, no build step).
//
// # Why River
//
// Scheduling, retries and sharing work between processes are a job
// engine's, and a proven one beats a hand-made one: River
// (github.com/riverqueue/river) has unique jobs, retry policies, snoozing,
// periodic jobs run by an elected leader, and coordination of many workers
// through PostgreSQL (SELECT ... FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY). It
// also has an SQLite driver (riversqlite), so the embedded store and the
// production store run the same code. The module proxy here serves
// riversqlite up to v0.49.0 only (v0.50+ fail to fetch), so every River
// module is pinned at v0.49.0. What the server adds to a sync (the time
// from the API call to the run's start and end, against the same program
// run by hand) is measured by BenchmarkTriggerToRun; the figures are in
// BENCHMARKS.md.
//
// What sluice adds to River, and why:
//   - A periodic "schedule" job (leader only) queues the connections that
//     are due: River's periodic jobs are fixed at start, connections come
//     and go through the API. Schedules are parsed by robfig/cron.
//   - Unique jobs are by connection and slot: one job may wait in the
//     "next" slot while one runs, so a trigger during a run queues exactly
//     one run after it, and more triggers join that one.
//   - A lock per connection (in-process for SQLite, a PostgreSQL session
//     advisory lock otherwise) held for the whole run, and for the API's
//     own writes to the destination (state, re-sync): two runs of a
//     connection never overlap, even if a job runs twice. A DuckDB
//     destination is also locked as a whole (one process may open the
//     file). A run whose advisory lock's connection breaks stops its
//     connector, since another worker may now take the lock.
//   - The rescue of a dead worker's sync: River's rescuer retries only jobs
//     with a timeout, and a sync has none (it takes as long as it takes).
//     With PostgreSQL, a periodic job finds sync jobs River holds as
//     running whose connection lock nobody holds: their worker died and
//     PostgreSQL released its lock with its connection. The run is marked
//     failed, the job made available again (Config.RescueAfter). With
//     SQLite, one process owns the data folder (a file lock), so at start
//     it fails the runs and frees the jobs the previous process left.
//   - Retries back off exponentially from Config.RetryBase with jitter,
//     up to Config.MaxAttempts; then the connection waits for its next
//     schedule. A connector killed by the kernel (Linux parent-death
//     signal) when its worker dies cannot go on writing beside the retry.
//
// # Names, schedules, secrets
//
// Destination and connection names follow NameRule: a connection's name is
// its schema in the destination, as given. A schedule is an interval
// ("15m"), a cron expression in five fields (UTC unless prefixed by
// CRON_TZ=Zone), a descriptor ("@hourly") or "manual"; a connection that
// never ran is due at once. Destination URLs, configurations and state
// snapshots are sealed with AES-256-GCM under the server key
// (SLUICE_SERVER_KEY, or a 0600 key file created in the data folder); a
// check value in the store refuses a wrong key at start. The API masks
// secret configuration values (keys naming a password, token, key,
// secret, ...) and URL passwords, and a masked value sent back keeps the
// stored one. Run logs are masked again with the connection's secrets.
// API keys are "sluice_<id>_<secret>": the 256-bit secret is kept as its
// SHA-256 and compared in constant time; no key, a wrong one or a revoked
// one is the same 401.
//
// # Limits
//
//   - A build runs only on workers of its GOOS/GOARCH; `sluice deploy`
//     builds for the server's platform (cgo: from a machine of that
//     platform).
//   - Workers on several machines need a PostgreSQL store, the same server
//     key, and destinations they can all reach (not a DuckDB file).
//   - A run keeps at most Config.MaxLogLines log lines, a connection its
//     last Config.KeepRuns runs.
package server
