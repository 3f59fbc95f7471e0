package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// Scheduling, retries and the sharing of work between processes are
// River's (github.com/riverqueue/river, chosen over a hand-made scheduler:
// see doc.go): a sync is a River job; River's unique jobs keep one job per
// connection queued or running, its retry policy backs off failed syncs,
// its leader election runs the periodic jobs on one process. sluice adds
// the scheduler's one question, "which connections are due?", asked by a
// periodic River job, and the rescue of a dead worker's sync (reapWorker):
// River's own rescuer goes by a job timeout, and a sync has none.

const (
	queueSync     = "sluice_sync"
	queueSchedule = "sluice_schedule"
)

// syncArgs is a sync job: run one connection. River's uniqueness is by
// connection and slot: one job of the connection may wait in the "next"
// slot while the main one runs (see trigger); a third is a duplicate.
type syncArgs struct {
	ConnectionID int64  `json:"connection_id" river:"unique"`
	Next         bool   `json:"next,omitempty" river:"unique"`
	Trigger      string `json:"trigger"`
}

func (syncArgs) Kind() string { return "sluice_sync" }

// tickArgs is the scheduler's periodic job.
type tickArgs struct{}

func (tickArgs) Kind() string { return "sluice_schedule" }

// reapArgs is the periodic job that retries the syncs of dead workers.
type reapArgs struct{}

func (reapArgs) Kind() string { return "sluice_reap" }

// jobClient is what the server uses of River's client, whose type depends
// on the driver (pgx.Tx or *sql.Tx).
type jobClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

func newJobClient(ctx context.Context, s *Server) (jobClient, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &syncWorker{s: s})
	river.AddWorker(workers, &tickWorker{s: s})
	river.AddWorker(workers, &reapWorker{s: s})
	cfg := &river.Config{
		Queues: map[string]river.QueueConfig{
			queueSync:     {MaxWorkers: s.cfg.Concurrency},
			queueSchedule: {MaxWorkers: 1},
		},
		Workers: workers,
		// A sync takes as long as it takes; it ends when the connector
		// does, or when the server stops.
		JobTimeout:                  -1,
		MaxAttempts:                 s.cfg.MaxAttempts,
		CompletedJobRetentionPeriod: time.Hour,
		// River reports every maintenance pass at INFO: its warnings
		// and errors are what an operator needs.
		Logger: slog.New(minLevel{slog.LevelWarn, s.log.Handler()}).With("component", "river"),
	}
	if s.cfg.TickInterval > 0 {
		cfg.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(s.cfg.TickInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return tickArgs{}, &river.InsertOpts{Queue: queueSchedule, MaxAttempts: 1}
			},
			&river.PeriodicJobOpts{RunOnStart: true},
		)}
	}
	if s.st.postgres {
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(
			river.PeriodicInterval(max(time.Second, s.cfg.RescueAfter/4)),
			func() (river.JobArgs, *river.InsertOpts) {
				return reapArgs{}, &river.InsertOpts{Queue: queueSchedule, MaxAttempts: 1}
			},
			&river.PeriodicJobOpts{RunOnStart: true},
		))
		driver := riverpgxv5.New(s.st.pool)
		if err := migrateRiverPG(ctx, s.st, driver); err != nil {
			return nil, err
		}
		return river.NewClient(driver, cfg)
	}
	driver := riversqlite.New(s.st.db)
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return nil, err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("job queue schema: %w", err)
	}
	return river.NewClient(driver, cfg)
}

// migrateRiverPG brings River's tables up to date under a session advisory
// lock (several workers may start at once). River applies each version in
// its own transaction: one of them adds an enum value a later one uses.
func migrateRiverPG(ctx context.Context, st *store, driver *riverpgxv5.Driver) error {
	m, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	conn, err := st.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("job queue schema: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 1)`, lockClassMigrate); err != nil {
		return fmt.Errorf("job queue schema: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, 1)`, lockClassMigrate)
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("job queue schema: %w", err)
	}
	return nil
}

// recoverEmbedded runs at the start of a server that owns the embedded
// store: runs left "running" by a process that died are marked failed, and
// their jobs made available again now rather than after RescueAfter.
func (s *Server) recoverEmbedded(ctx context.Context) error {
	if err := s.st.failOrphans(ctx, 0); err != nil {
		return fmt.Errorf("recover runs: %w", err)
	}
	// River's rescuer would do this after RescueAfter; no worker but this
	// process can hold these jobs, so waiting would only delay the retry.
	// This touches River's table directly, as its rescuer does: state and
	// scheduled_at are the columns River's own fetch reads.
	_, err := s.st.exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = ? WHERE state = 'running' AND kind = ?`,
		time.Now().UTC().Format("2006-01-02 15:04:05.000"), syncArgs{}.Kind())
	if err != nil {
		return fmt.Errorf("recover jobs: %w", err)
	}
	return nil
}

// minLevel drops records below a level.
type minLevel struct {
	min slog.Level
	slog.Handler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.min, h.Handler.WithAttrs(as)}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.min, h.Handler.WithGroup(g)} }

// uniqueStates are the job states in which a second sync of the same
// connection is a duplicate: River requires the first four.
var uniqueStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateScheduled, rivertype.JobStateRetryable,
}

// enqueueSync inserts a sync job in the main slot, or with next in the
// slot for a run after the running one; queued is false when the slot was
// taken.
func (s *Server) enqueueSync(ctx context.Context, connID int64, trigger string, next bool) (queued bool, err error) {
	res, err := s.jobs.Insert(ctx, syncArgs{ConnectionID: connID, Next: next, Trigger: trigger}, &river.InsertOpts{
		Queue:       queueSync,
		MaxAttempts: s.cfg.MaxAttempts,
		Tags:        []string{"connection_" + strconv.FormatInt(connID, 10)},
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: uniqueStates},
	})
	if err != nil {
		return false, fmt.Errorf("queue a sync: %w", err)
	}
	if _, err := s.st.exec(ctx, `UPDATE sluice_connections SET last_scheduled_at = ? WHERE id = ?`, formatTime(time.Now()), connID); err != nil {
		return false, err
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// syncJobs lists the sync jobs queued or running, with the connection
// each is for (0 where its tags name none).
func (s *Server) syncJobs(ctx context.Context) ([]*rivertype.JobRow, []int64, error) {
	params := river.NewJobListParams().Kinds(syncArgs{}.Kind()).States(uniqueStates...).First(10000)
	res, err := s.jobs.JobList(ctx, params)
	if err != nil {
		return nil, nil, fmt.Errorf("list jobs: %w", err)
	}
	conns := make([]int64, len(res.Jobs))
	for i, j := range res.Jobs {
		for _, t := range j.Tags {
			if n, ok := cutPrefix(t, "connection_"); ok {
				conns[i], _ = strconv.ParseInt(n, 10, 64)
			}
		}
	}
	return res.Jobs, conns, nil
}

// pendingJobs maps connection ids to the state of their queued or running
// sync job.
func (s *Server) pendingJobs(ctx context.Context) (map[int64]*rivertype.JobRow, error) {
	jobs, conns, err := s.syncJobs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[int64]*rivertype.JobRow{}
	for i, j := range jobs {
		// A running job says more than the one waiting behind it.
		if id := conns[i]; id > 0 && (out[id] == nil || j.State == rivertype.JobStateRunning) {
			out[id] = j
		}
	}
	return out, nil
}

// waitingJob reports whether a sync job of connection connID is queued and
// not running.
func (s *Server) waitingJob(ctx context.Context, connID int64) (bool, error) {
	jobs, conns, err := s.syncJobs(ctx)
	if err != nil {
		return false, err
	}
	for i, j := range jobs {
		if conns[i] == connID && j.State != rivertype.JobStateRunning {
			return true, nil
		}
	}
	return false, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// tickWorker is the scheduler: it queues a sync for each connection that
// is due. It runs on River's leader only, and a duplicate is harmless
// anyway (unique jobs).
type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	s *Server
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[tickArgs]) error {
	conns, err := w.s.st.listConns(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, c := range conns {
		next, ok := nextRun(&c)
		if !ok || next.After(now) {
			continue
		}
		if _, err := w.s.enqueueSync(ctx, c.id, "schedule", false); err != nil {
			return err
		}
	}
	return nil
}

// reapWorker finds sync jobs that River holds as running but whose
// connection's lock nobody holds: a worker takes the lock as soon as it
// starts a job and keeps it to the end, and PostgreSQL releases it when
// the worker's connection goes, so such a job's worker is dead. Its run is
// marked failed and the job made available again, as River's rescuer does
// for jobs that time out. Jobs younger than RescueAfter are left alone:
// their worker may be between fetching the job and taking the lock.
type reapWorker struct {
	river.WorkerDefaults[reapArgs]
	s *Server
}

func (w *reapWorker) Work(ctx context.Context, _ *river.Job[reapArgs]) error {
	s := w.s
	res, err := s.jobs.JobList(ctx, river.NewJobListParams().Kinds(syncArgs{}.Kind()).States(rivertype.JobStateRunning).First(1000))
	if err != nil {
		return err
	}
	for _, j := range res.Jobs {
		if j.AttemptedAt == nil || time.Since(*j.AttemptedAt) < s.cfg.RescueAfter {
			continue
		}
		var args syncArgs
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
			continue
		}
		unlock, _, ok, err := s.locks.tryLock(ctx, lockClassConnection, args.ConnectionID)
		if err != nil {
			return err
		}
		if !ok {
			continue // a live worker holds it
		}
		err = s.reap(ctx, j.ID, args.ConnectionID)
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// reap fails the orphaned run of a job and makes the job available again,
// holding the connection's lock.
func (s *Server) reap(ctx context.Context, jobID, connID int64) error {
	if err := s.st.failOrphans(ctx, connID); err != nil {
		return err
	}
	_, err := s.st.exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE id = ? AND state = 'running'`, jobID)
	if err != nil {
		return fmt.Errorf("retry the sync job of a dead worker: %w", err)
	}
	s.log.Warn("a worker died during a sync: its run is retried", "job", jobID, "connection_id", connID)
	return nil
}

// nextRun is when a connection's schedule next queues a sync: at once for
// a connection that was never run, then an interval (or the next cron
// time) after the last sync was queued. ok is false when nothing is
// scheduled: paused, no code, or a manual schedule.
func nextRun(c *connRow) (time.Time, bool) {
	if c.paused || !c.binaryID.Valid {
		return time.Time{}, false
	}
	sch, err := parseSchedule(c.schedule)
	if err != nil || sch.manual() {
		return time.Time{}, false
	}
	if !c.lastScheduled.Valid {
		return parseTime(c.created), true // due since it was made
	}
	return sch.next(parseTime(c.lastScheduled.String))
}

// syncWorker runs a connection's sync.
type syncWorker struct {
	river.WorkerDefaults[syncArgs]
	s *Server
}

// NextRetry backs off exponentially, with jitter so that syncs failing
// together (a destination down) do not retry together.
func (w *syncWorker) NextRetry(job *river.Job[syncArgs]) time.Time {
	return time.Now().Add(backoff(w.s.cfg.RetryBase, w.s.cfg.RetryMax, job.Attempt))
}

func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	// Up to +25%: never sooner than the base says.
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

func (w *syncWorker) Timeout(*river.Job[syncArgs]) time.Duration { return -1 }

func (w *syncWorker) Work(ctx context.Context, job *river.Job[syncArgs]) error {
	s := w.s
	c, err := s.st.connByID(ctx, job.Args.ConnectionID)
	if errors.Is(err, errNotFound) {
		return nil // deleted since it was queued
	}
	if err != nil {
		return err
	}
	if c.paused {
		return nil // paused since it was queued: nothing to do
	}
	if !c.binaryID.Valid {
		return river.JobCancel(fmt.Errorf("connection %q has no code: deploy it with `sluice deploy`", c.name))
	}
	d, err := s.st.destByID(ctx, c.destID)
	if err != nil {
		return err
	}
	unlock, lost, ok, err := lockSet(ctx, s.locks, lockKeys(&c, &d)...)
	if err != nil {
		return err
	}
	if !ok {
		// Another run of this connection, or another writer of its
		// DuckDB file, holds the lock: wait, without using an attempt.
		return river.JobSnooze(s.cfg.LockWait)
	}
	defer unlock()
	// A lost lock (the database connection holding it broke) may let
	// another worker start this connection: stop the connector first.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	go func() {
		select {
		case <-lost:
			cancelRun(errLockLost)
		case <-ctx.Done():
		}
	}()
	// Holding the lock, any run of this connection still marked running
	// was left by a worker that died.
	if err := s.st.failOrphans(ctx, c.id); err != nil {
		return err
	}
	trigger, err := s.runTrigger(ctx, job)
	if err != nil {
		return err
	}
	runErr := s.runSync(ctx, job, &c, &d, trigger)
	if perr := s.st.pruneRuns(context.WithoutCancel(ctx), c.id, s.cfg.KeepRuns); perr != nil {
		s.log.Warn("prune old runs", "connection", c.name, "error", perr)
	}
	if runErr != nil && errors.Is(context.Cause(ctx), errLockLost) {
		return runErr // retried, by whichever worker takes the lock
	}
	if runErr != nil && ctx.Err() != nil {
		// The server is stopping: retry on the next start without
		// spending an attempt.
		return river.JobSnooze(0)
	}
	return runErr
}

// runTrigger names why a run happens: a retry after a failed attempt, or
// the job's own trigger.
func (s *Server) runTrigger(ctx context.Context, job *river.Job[syncArgs]) (string, error) {
	if job.Attempt > 1 {
		return "retry", nil
	}
	return job.Args.Trigger, nil
}

var errLockLost = errors.New("lost the connection's lock: the database connection that held it broke")

// lockKeys are the locks a run of c holds: its own, and its DuckDB file's,
// which one process at a time may open.
func lockKeys(c *connRow, d *destRow) [][2]int64 {
	keys := [][2]int64{{lockClassConnection, c.id}}
	if d.scheme == "duckdb" {
		keys = append(keys, [2]int64{lockClassDest, d.id})
	}
	return keys
}
