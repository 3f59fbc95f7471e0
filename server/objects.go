package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Destination is a warehouse connections write to, as the API shows it.
type Destination struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"` // its password masked
	Scheme    string    `json:"scheme"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Binary is an uploaded connector build.
type Binary struct {
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// Resync is a re-sync waiting for the connection's next run.
type Resync struct {
	All bool `json:"all,omitempty"`
	// Truncate (with All) soft-deletes every table's rows first.
	Truncate bool     `json:"truncate,omitempty"`
	Tables   []string `json:"tables,omitempty"`
}

// Connection is a connector build, a destination, a configuration and a
// schedule; its state lives in the destination.
type Connection struct {
	Name          string            `json:"name"`
	Destination   string            `json:"destination"`
	Schedule      string            `json:"schedule"`
	Paused        bool              `json:"paused"`
	Configuration map[string]string `json:"configuration"` // secret values masked
	Binary        *Binary           `json:"binary,omitempty"`
	DeployedAt    *time.Time        `json:"deployed_at,omitempty"`
	// Status is one of: not_deployed, paused, queued, running, retrying,
	// succeeded, failed, never_run.
	Status        string     `json:"status"`
	NextRunAt     *time.Time `json:"next_run_at,omitempty"`
	LastRun       *Run       `json:"last_run,omitempty"`
	ResyncPending *Resync    `json:"resync_pending,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// TableCounts are one table's operations in a run.
type TableCounts struct {
	Table     string `json:"table"`
	Upserts   int64  `json:"upserts"`
	Updates   int64  `json:"updates"`
	Deletes   int64  `json:"deletes"`
	Truncates int64  `json:"truncates"`
}

// Run is one attempt at a sync.
type Run struct {
	ID         int64      `json:"id"`
	Connection string     `json:"connection"`
	Attempt    int        `json:"attempt"`
	Trigger    string     `json:"trigger"` // schedule, manual, retry, deploy
	Status     string     `json:"status"`  // running, succeeded, failed
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// DurationSeconds is the run's length, so far for a running one.
	DurationSeconds float64       `json:"duration_seconds"`
	Error           string        `json:"error,omitempty"`
	Tables          []TableCounts `json:"tables"`
	// Rows is the sum of upserts, updates and deletes over the tables.
	Rows       int64  `json:"rows"`
	Binary     string `json:"binary_sha256"`
	Worker     string `json:"worker"`
	LogLines   int    `json:"log_lines"`
	LogDropped int    `json:"log_dropped"`
}

// LogLine is one line a run logged.
type LogLine struct {
	Seq     int       `json:"seq"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

var errNotFound = errors.New("not found")

// conflictError is a 409: the request is valid but the object's state
// forbids it now.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// isUnique reports whether err is a unique-constraint violation, in either
// database.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}

// Destinations.

type destRow struct {
	id        int64
	name      string
	urlSealed string
	scheme    string
	created   string
	updated   string
}

const destCols = `id, name, url_sealed, scheme, created_at, updated_at`

func scanDest(sc interface{ Scan(...any) error }) (destRow, error) {
	var d destRow
	err := sc.Scan(&d.id, &d.name, &d.urlSealed, &d.scheme, &d.created, &d.updated)
	return d, err
}

func (st *store) destByName(ctx context.Context, name string) (destRow, error) {
	d, err := scanDest(st.queryRow(ctx, `SELECT `+destCols+` FROM sluice_destinations WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return d, errNotFound
	}
	return d, err
}

func (st *store) destByID(ctx context.Context, id int64) (destRow, error) {
	d, err := scanDest(st.queryRow(ctx, `SELECT `+destCols+` FROM sluice_destinations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, errNotFound
	}
	return d, err
}

func (st *store) listDests(ctx context.Context) ([]destRow, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+destCols+` FROM sluice_destinations ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []destRow
	for rows.Next() {
		d, err := scanDest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Connections.

type connRow struct {
	id             int64
	name           string
	destID         int64
	binaryID       sql.NullInt64
	schedule       string
	paused         bool
	configSealed   string
	created        string
	updated        string
	deployed       sql.NullString
	lastScheduled  sql.NullString
	resync         sql.NullString
	stateSealed    sql.NullString
	stateAt        sql.NullString
	destName       string
	binarySHA      sql.NullString
	binarySize     sql.NullInt64
	binaryOS       sql.NullString
	binaryArch     sql.NullString
	binaryUploaded sql.NullString
	binaryEncoding sql.NullString
}

const connSelect = `SELECT c.id, c.name, c.destination_id, c.binary_id, c.schedule, c.paused, c.config_sealed,
	c.created_at, c.updated_at, c.deployed_at, c.last_scheduled_at, c.resync, c.state_sealed, c.state_at,
	d.name, b.sha256, b.size, b.goos, b.goarch, b.uploaded_at, b.encoding
	FROM sluice_connections c JOIN sluice_destinations d ON d.id = c.destination_id
	LEFT JOIN sluice_binaries b ON b.id = c.binary_id`

func scanConn(sc interface{ Scan(...any) error }) (connRow, error) {
	var c connRow
	var paused int
	err := sc.Scan(&c.id, &c.name, &c.destID, &c.binaryID, &c.schedule, &paused, &c.configSealed,
		&c.created, &c.updated, &c.deployed, &c.lastScheduled, &c.resync, &c.stateSealed, &c.stateAt,
		&c.destName, &c.binarySHA, &c.binarySize, &c.binaryOS, &c.binaryArch, &c.binaryUploaded, &c.binaryEncoding)
	c.paused = paused != 0
	return c, err
}

func (st *store) connByName(ctx context.Context, name string) (connRow, error) {
	c, err := scanConn(st.queryRow(ctx, connSelect+` WHERE c.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotFound
	}
	return c, err
}

func (st *store) connByID(ctx context.Context, id int64) (connRow, error) {
	c, err := scanConn(st.queryRow(ctx, connSelect+` WHERE c.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, errNotFound
	}
	return c, err
}

func (st *store) listConns(ctx context.Context) ([]connRow, error) {
	rows, err := st.db.QueryContext(ctx, connSelect+` ORDER BY c.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []connRow
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (c *connRow) binary() *Binary {
	if !c.binarySHA.Valid {
		return nil
	}
	return &Binary{SHA256: c.binarySHA.String, Size: c.binarySize.Int64, GOOS: c.binaryOS.String, GOARCH: c.binaryArch.String, UploadedAt: parseTime(c.binaryUploaded.String)}
}

func (c *connRow) pendingResync() *Resync {
	if !c.resync.Valid || c.resync.String == "" {
		return nil
	}
	var r Resync
	if json.Unmarshal([]byte(c.resync.String), &r) != nil {
		return nil
	}
	return &r
}

// Binaries: an upload is written chunk by chunk, each in its own statement
// (a long transaction would hold SQLite's one writer for the whole
// upload), and counts only once marked complete.

const chunkSize = 1 << 20

func (st *store) beginBinary(ctx context.Context, goos, goarch, encoding string) (int64, error) {
	return st.insertID(ctx, `INSERT INTO sluice_binaries (goos, goarch, encoding, uploaded_at) VALUES (?, ?, ?, ?)`, goos, goarch, encoding, formatTime(time.Now()))
}

func (st *store) addChunk(ctx context.Context, id int64, seq int, data []byte) error {
	_, err := st.exec(ctx, `INSERT INTO sluice_binary_chunks (binary_id, seq, data) VALUES (?, ?, ?)`, id, seq, data)
	return err
}

// finishBinary marks an upload complete. If the same build was uploaded
// before, that one is kept and the new copy dropped; the id to use is
// returned.
func (st *store) finishBinary(ctx context.Context, id int64, sha string, size, stored int64) (int64, error) {
	var old int64
	err := st.queryRow(ctx, `SELECT id FROM sluice_binaries WHERE sha256 = ? AND complete = 1 AND id <> ?`, sha, id).Scan(&old)
	if err == nil {
		st.dropBinary(ctx, id)
		return old, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	_, err = st.exec(ctx, `UPDATE sluice_binaries SET sha256 = ?, size = ?, stored_size = ?, complete = 1 WHERE id = ?`, sha, size, stored, id)
	return id, err
}

func (st *store) dropBinary(ctx context.Context, id int64) error {
	if _, err := st.exec(ctx, `DELETE FROM sluice_binary_chunks WHERE binary_id = ?`, id); err != nil {
		return err
	}
	_, err := st.exec(ctx, `DELETE FROM sluice_binaries WHERE id = ?`, id)
	return err
}

// dropUnusedBinaries deletes the builds no connection uses any more, and
// uploads left incomplete more than an hour ago (an interrupted deploy).
func (st *store) dropUnusedBinaries(ctx context.Context) error {
	rows, err := st.db.QueryContext(ctx, st.q(`SELECT id FROM sluice_binaries b WHERE NOT EXISTS (SELECT 1 FROM sluice_connections c WHERE c.binary_id = b.id)
		AND (complete = 1 OR uploaded_at < ?)`), formatTime(time.Now().Add(-time.Hour)))
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := st.dropBinary(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// chunk reads one chunk of a binary; nil at the end.
func (st *store) chunk(ctx context.Context, binaryID int64, seq int) ([]byte, error) {
	var b []byte
	err := st.queryRow(ctx, `SELECT data FROM sluice_binary_chunks WHERE binary_id = ? AND seq = ?`, binaryID, seq).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return b, err
}

// chunkReader reads a stored binary's chunks in order, one in memory at a
// time.
type chunkReader struct {
	ctx context.Context
	st  *store
	id  int64
	seq int
	buf []byte
	eof bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		b, err := r.st.chunk(r.ctx, r.id, r.seq)
		if err != nil {
			return 0, err
		}
		if b == nil {
			r.eof = true
			continue
		}
		r.seq++
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Runs.

const runSelect = `SELECT r.id, c.name, r.attempt, r.reason, r.status, r.started_at, r.finished_at, r.error, r.tables,
	r.binary_sha256, r.worker, r.log_lines, r.log_dropped FROM sluice_runs r JOIN sluice_connections c ON c.id = r.connection_id`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var started string
	var finished, errMsg, tables sql.NullString
	if err := sc.Scan(&r.ID, &r.Connection, &r.Attempt, &r.Trigger, &r.Status, &started, &finished, &errMsg, &tables,
		&r.Binary, &r.Worker, &r.LogLines, &r.LogDropped); err != nil {
		return r, err
	}
	r.StartedAt = parseTime(started)
	r.FinishedAt = nullTime(finished)
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	r.DurationSeconds = end.Sub(r.StartedAt).Seconds()
	r.Error = errMsg.String
	r.Tables = []TableCounts{}
	if tables.Valid && tables.String != "" {
		json.Unmarshal([]byte(tables.String), &r.Tables)
	}
	for _, t := range r.Tables {
		r.Rows += t.Upserts + t.Updates + t.Deletes
	}
	return r, nil
}

func (st *store) runByID(ctx context.Context, id int64) (Run, error) {
	r, err := scanRun(st.queryRow(ctx, runSelect+` WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errNotFound
	}
	return r, err
}

// listRuns lists a connection's runs, newest first, before the run id
// before (0: from the newest).
func (st *store) listRuns(ctx context.Context, connID int64, before int64, limit int) ([]Run, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := st.db.QueryContext(ctx, st.q(runSelect+` WHERE r.connection_id = ? AND r.id < ? ORDER BY r.id DESC LIMIT ?`), connID, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (st *store) lastRun(ctx context.Context, connID int64) (*Run, error) {
	runs, err := st.listRuns(ctx, connID, 0, 1)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	return &runs[0], nil
}

type newRun struct {
	connID  int64
	jobID   int64
	attempt int
	trigger string
	sha     string
	worker  string
}

func (st *store) startRun(ctx context.Context, r newRun) (int64, error) {
	return st.insertID(ctx, `INSERT INTO sluice_runs (connection_id, job_id, attempt, reason, status, started_at, binary_sha256, worker)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.connID, r.jobID, r.attempt, r.trigger, RunRunning, formatTime(time.Now()), r.sha, r.worker)
}

func (st *store) finishRun(ctx context.Context, id int64, status, errMsg string, tables []TableCounts, lines, dropped int) error {
	sort.Slice(tables, func(i, j int) bool { return tables[i].Table < tables[j].Table })
	tj, _ := json.Marshal(tables)
	var e any
	if errMsg != "" {
		e = errMsg
	}
	_, err := st.exec(ctx, `UPDATE sluice_runs SET status = ?, finished_at = ?, error = ?, tables = ?, log_lines = ?, log_dropped = ? WHERE id = ?`,
		status, formatTime(time.Now()), e, string(tj), lines, dropped, id)
	return err
}

// orphanMessage is the error of a run whose worker vanished.
const orphanMessage = "the worker running this sync stopped (crashed, killed or restarted) before the sync finished; it is retried"

// failOrphans marks running runs failed: those of one connection (connID >
// 0), which the caller holds the lock of, or all of them (0), at the start
// of a server that owns the embedded store alone.
func (st *store) failOrphans(ctx context.Context, connID int64) error {
	q := `UPDATE sluice_runs SET status = ?, finished_at = ?, error = ? WHERE status = ?`
	args := []any{RunFailed, formatTime(time.Now()), orphanMessage, RunRunning}
	if connID > 0 {
		q += ` AND connection_id = ?`
		args = append(args, connID)
	}
	_, err := st.exec(ctx, q, args...)
	return err
}

// appendLogs stores a run's log lines in one transaction.
func (st *store) appendLogs(ctx context.Context, runID int64, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, st.q(`INSERT INTO sluice_run_logs (run_id, seq, logged_at, level, message) VALUES (?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, l := range lines {
		if _, err := stmt.ExecContext(ctx, runID, l.Seq, formatTime(l.Time), l.Level, l.Message); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, st.q(`UPDATE sluice_runs SET log_lines = ? WHERE id = ?`), lines[len(lines)-1].Seq, runID); err != nil {
		return err
	}
	return tx.Commit()
}

// readLogs returns up to limit lines of a run after seq after.
func (st *store) readLogs(ctx context.Context, runID int64, after, limit int) ([]LogLine, error) {
	rows, err := st.db.QueryContext(ctx, st.q(`SELECT seq, logged_at, level, message FROM sluice_run_logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`), runID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []LogLine{}
	for rows.Next() {
		var l LogLine
		var t string
		if err := rows.Scan(&l.Seq, &t, &l.Level, &l.Message); err != nil {
			return nil, err
		}
		l.Time = parseTime(t)
		out = append(out, l)
	}
	return out, rows.Err()
}

// pruneRuns keeps a connection's newest keep runs and their logs: history
// and logs must not grow without bound on a busy schedule.
func (st *store) pruneRuns(ctx context.Context, connID int64, keep int) error {
	var cutoff int64
	err := st.queryRow(ctx, `SELECT id FROM sluice_runs WHERE connection_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?`, connID, keep).Scan(&cutoff)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := st.exec(ctx, `DELETE FROM sluice_run_logs WHERE run_id IN (SELECT id FROM sluice_runs WHERE connection_id = ? AND id <= ?)`, connID, cutoff); err != nil {
		return err
	}
	_, err = st.exec(ctx, `DELETE FROM sluice_runs WHERE connection_id = ? AND id <= ?`, connID, cutoff)
	return err
}

// deleteConn deletes a connection with its runs and logs.
func (st *store) deleteConn(ctx context.Context, id int64) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM sluice_run_logs WHERE run_id IN (SELECT id FROM sluice_runs WHERE connection_id = ?)`,
		`DELETE FROM sluice_runs WHERE connection_id = ?`,
		`DELETE FROM sluice_connections WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, st.q(q), id); err != nil {
			return fmt.Errorf("delete connection: %w", err)
		}
	}
	return tx.Commit()
}
