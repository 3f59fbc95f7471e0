package server

// How a connector runs on the server
//
// A connector is the program its author built against the SDK; the server
// runs its production command (internal/cli/run.go) as a subprocess:
//
//	BINARY run --schema CONNECTION --configuration FILE
//
// with SLUICE_DESTINATION=URL in its environment (not on the command line,
// where `ps` would show the password), in a temporary folder that holds
// the configuration file (mode 0600) and is removed afterwards. The
// connector reads its state from the destination and commits each
// checkpoint there with its data; it logs JSON lines (log/slog: time,
// level FINE/INFO/WARNING/SEVERE, msg, attributes) on stderr, ends with a
// "sync summary" record whose "tables" attribute lists each table's
// upserts, updates, deletes and truncates, logs "sync failed" with an
// "error" attribute when it fails, and exits 0 or 1. The server keeps the
// log lines (secrets masked again) and the counts.
//
// Why a subprocess, not a plugin or a build the server links: any program
// built against the SDK runs, whatever its dependencies, with no plugin ABI
// to match (Go plugins need the exact same toolchain and dependency
// versions as the host); a connector that crashes, leaks memory or calls
// os.Exit takes down its run, never the server; a stuck run is stopped by
// signalling its process group; and a new build replaces the old one by
// uploading a file, without restarting the server.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// Purposes of sealed values (authenticated with each).
const (
	purposeDestURL = "destination url"
	purposeConfig  = "connection configuration"
	purposeState   = "connection state"
)

// runSync runs one sync of c as run records it: a pending re-sync first,
// then the connector. The run row ends succeeded or failed whatever
// happens, even when the server is stopping.
func (s *Server) runSync(ctx context.Context, job *river.Job[syncArgs], c *connRow, d *destRow, trigger string) error {
	bg := context.WithoutCancel(ctx)
	runID, err := s.st.startRun(ctx, newRun{connID: c.id, jobID: job.ID, attempt: job.Attempt, trigger: trigger, sha: c.binarySHA.String, worker: s.worker})
	if err != nil {
		return fmt.Errorf("record the run: %w", err)
	}
	logs := newRunLog(s, runID)
	s.log.Info("sync started", "connection", c.name, "run", runID, "trigger", trigger, "attempt", job.Attempt)
	finish := func(err error, tables []TableCounts) error {
		logs.close()
		status, msg := RunSucceeded, ""
		if err != nil {
			status, msg = RunFailed, logs.redact(err.Error())
			s.log.Warn("sync failed", "connection", c.name, "run", runID, "error", msg)
		} else {
			s.log.Info("sync succeeded", "connection", c.name, "run", runID)
		}
		if ferr := s.st.finishRun(bg, runID, status, msg, tables, logs.kept(), logs.droppedCount()); ferr != nil {
			s.log.Error("record the run's end", "run", runID, "error", ferr)
		}
		return err
	}

	cfgJSON, err := s.seal.open(purposeConfig, c.configSealed)
	if err != nil {
		return finish(fmt.Errorf("configuration: %w", err), nil)
	}
	urlb, err := s.seal.open(purposeDestURL, d.urlSealed)
	if err != nil {
		return finish(fmt.Errorf("destination URL: %w", err), nil)
	}
	destURL := string(urlb)
	var cfg map[string]string
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return finish(fmt.Errorf("configuration: %w", err), nil)
	}
	logs.setSecrets(secretValues(cfg, destURL))

	if rs := c.pendingResync(); rs != nil {
		if err := s.applyResync(ctx, c, destURL, rs, logs); err != nil {
			return finish(fmt.Errorf("re-sync: %w", err), nil)
		}
		if _, err := s.st.exec(ctx, `UPDATE sluice_connections SET resync = NULL WHERE id = ?`, c.id); err != nil {
			return finish(err, nil)
		}
	}

	bin, err := s.binaryPath(ctx, c)
	if err != nil {
		return finish(err, nil)
	}
	tables, err := s.execConnector(ctx, runID, bin, cfgJSON, destURL, c.name, logs)
	// Before the run is marked finished: whoever waits for that may open
	// the destination next (a DuckDB file takes one process at a time).
	s.snapshotState(bg, c, destURL)
	return finish(err, tables)
}

// binaryPath returns the connector build of c as an executable file in the
// data folder's cache, extracting it from the store (chunk by chunk, its
// SHA-256 checked) the first time.
func (s *Server) binaryPath(ctx context.Context, c *connRow) (string, error) {
	if c.binaryOS.String != runtime.GOOS || c.binaryArch.String != runtime.GOARCH {
		return "", fmt.Errorf("the deployed build is for %s/%s but this worker runs %s/%s: deploy a build for %s/%s",
			c.binaryOS.String, c.binaryArch.String, runtime.GOOS, runtime.GOARCH, runtime.GOOS, runtime.GOARCH)
	}
	sha := c.binarySHA.String
	dir := filepath.Join(s.cfg.DataDir, "bin")
	path := filepath.Join(dir, sha)
	s.binMu.Lock()
	defer s.binMu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("binary cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".extract-*")
	if err != nil {
		return "", fmt.Errorf("binary cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	src := &chunkReader{ctx: ctx, st: s.st, id: c.binaryID.Int64}
	if c.binaryEncoding.String == "zstd" {
		err = decompress(w, src)
	} else {
		_, err = io.Copy(w, src)
	}
	if err != nil {
		tmp.Close()
		return "", fmt.Errorf("extract the connector build: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("binary cache: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return "", fmt.Errorf("the stored connector build is damaged (SHA-256 %s, expected %s): deploy it again", got, sha)
	}
	if err := os.Chmod(tmp.Name(), 0o700); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("binary cache: %w", err)
	}
	return path, nil
}

// stopWait is how long a stopped connector has, after SIGTERM, to roll back
// and exit before it is killed.
const stopWait = 20 * time.Second

// execConnector runs the connector program and returns its counts.
func (s *Server) execConnector(ctx context.Context, runID int64, bin string, cfgJSON []byte, destURL, schema string, logs *runLog) ([]TableCounts, error) {
	runs := filepath.Join(s.cfg.DataDir, "runs")
	if err := os.MkdirAll(runs, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(runs, fmt.Sprintf("run-%d-", runID))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "configuration.json")
	if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
		return nil, err
	}
	// Only what a connector needs: the server's own environment holds
	// its key and database URL.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "SLUICE_DESTINATION=" + destURL}
	for _, k := range []string{"TZ", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// Writers rather than pipes: exec copies the output in its own
	// goroutines, and WaitDelay bounds how long Wait waits for a pipe
	// that something the connector started still holds open.
	outw := &lineWriter{fn: func(l []byte) { logs.line("stdout", l) }}
	errw := &lineWriter{fn: func(l []byte) { logs.line("stderr", l) }}
	newCmd := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "run", "--schema", schema, "--configuration", cfgPath)
		cmd.Dir = dir
		cmd.Env = env
		prepareCommand(cmd)
		cmd.WaitDelay = stopWait
		cmd.Stdout, cmd.Stderr = outw, errw
		return cmd
	}

	var cmd *exec.Cmd
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		// The kernel's parent-death signal follows the thread that
		// forked: keep that thread alive until the connector exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c, err := startCommand(ctx, newCmd)
		if err != nil {
			started <- err
			return
		}
		cmd = c
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start the connector: %w", err)
	}
	err = <-waited
	outw.flush()
	errw.flush()
	killGroup(cmd) // whatever the connector started and left behind

	tables := logs.tables()
	if err == nil {
		return tables, nil
	}
	var ee *exec.ExitError
	detail := logs.lastError()
	switch {
	case errors.Is(context.Cause(ctx), errLockLost):
		err = fmt.Errorf("stopped: %w (%v)", errLockLost, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("stopped: the server is shutting down (%v)", err)
	case errors.As(err, &ee) && ee.Exited():
		err = fmt.Errorf("the connector exited with status %d", ee.ExitCode())
	case errors.As(err, &ee):
		err = fmt.Errorf("the connector was killed (%v)", ee)
	default:
		err = fmt.Errorf("the connector: %w", err)
	}
	if detail != "" {
		err = fmt.Errorf("%w: %s", err, detail)
	}
	return tables, err
}

// Starting a build just extracted into the cache (binaryPath) can fail with
// "text file busy": a child that another goroutine forked while the
// extract's file was still open for writing holds that descriptor until it
// execs, which takes it milliseconds (golang.org/issue/22315). Any fork in
// the process can do this, so no lock of ours prevents it; the start is
// tried again, with a new command each time, for up to about textBusyWait.
const textBusyWait = 5 * time.Second

// startCommand starts the command newCmd builds, trying again while the
// program is busy as above.
func startCommand(ctx context.Context, newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	var waited time.Duration
	delay := 5 * time.Millisecond
	for {
		cmd := newCmd()
		err := cmd.Start()
		if err == nil || !textBusy(err) || waited >= textBusyWait {
			return cmd, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		case <-time.After(delay):
		}
		waited += delay
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// maxLine bounds one log line; the rest of a longer line is dropped.
const maxLine = 16 << 10

// lineWriter calls fn with each line written to it, without its newline,
// each cut at maxLine bytes: memory stays at one line whatever the
// connector prints.
type lineWriter struct {
	fn   func([]byte)
	buf  []byte
	over bool // the current line passed maxLine: drop until its end
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.over {
			room := maxLine - len(w.buf)
			if len(chunk) > room {
				chunk, w.over = chunk[:room], true
			}
			w.buf = append(w.buf, chunk...)
		}
		if i < 0 {
			break
		}
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

// flush emits the line in progress, if any.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.fn(bytes.TrimRight(w.buf, "\r"))
	}
	w.buf, w.over = w.buf[:0], false
}

// runLog receives a run's output: it keeps up to MaxLogLines lines in the
// store, written in batches (so the page shows a running sync's progress),
// and picks out the summary's counts and the last error.
type runLog struct {
	s     *Server
	runID int64

	mu       sync.Mutex
	secrets  []string
	buf      []LogLine
	seq      int
	dropped  int
	counts   []TableCounts
	lastErr  string
	lastText string
	closed   bool

	flushNow chan struct{}
	done     chan struct{}
}

const logBatch = 200

func newRunLog(s *Server, runID int64) *runLog {
	l := &runLog{s: s, runID: runID, flushNow: make(chan struct{}, 1), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *runLog) setSecrets(secrets []string) {
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	l.mu.Lock()
	l.secrets = secrets
	l.mu.Unlock()
}

func (l *runLog) redact(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return redact(s, l.secrets)
}

// loop writes the buffer every half second, or at once when it fills.
func (l *runLog) loop() {
	defer close(l.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.flushNow:
		}
		l.mu.Lock()
		batch := l.buf
		l.buf = nil
		closed := l.closed
		l.mu.Unlock()
		if len(batch) > 0 {
			if err := l.s.st.appendLogs(context.Background(), l.runID, batch); err != nil {
				l.s.log.Error("store run logs", "run", l.runID, "error", err)
			}
		}
		if closed {
			return
		}
	}
}

// info adds a line of the server's own about the run.
func (l *runLog) info(msg string) {
	l.add(LogLine{Time: time.Now(), Level: "INFO", Message: "sluice server: " + msg})
}

func (l *runLog) add(line LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	line.Message = redact(line.Message, l.secrets)
	if l.seq >= l.s.cfg.MaxLogLines {
		l.dropped++
		return
	}
	l.seq++
	line.Seq = l.seq
	l.buf = append(l.buf, line)
	if len(l.buf) >= logBatch {
		select {
		case l.flushNow <- struct{}{}:
		default:
		}
	}
}

// line takes one line of the connector's output: a JSON log record (its
// summary included) or plain text (a panic's trace, a Go runtime error).
func (l *runLog) line(stream string, b []byte) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	ll := LogLine{Time: time.Now(), Level: "OUTPUT", Message: string(b)}
	var rec map[string]any
	errText := ""
	if b[0] == '{' && json.Unmarshal(b, &rec) == nil {
		ll = parseRecord(rec, ll.Time)
		errText, _ = rec["error"].(string)
		if counts, ok := parseSummary(rec); ok {
			l.mu.Lock()
			l.counts = counts
			l.mu.Unlock()
		}
	} else if stream == "stderr" {
		ll.Level = "STDERR"
	}
	l.mu.Lock()
	switch {
	case isErrorLevel(ll.Level) && errText != "":
		l.lastErr = errText // "sync failed" carries the cause in "error"
	case isErrorLevel(ll.Level) && l.lastErr == "":
		l.lastErr = ll.Message
	case ll.Level == "STDERR" && !strings.HasPrefix(ll.Message, "\t") && !strings.HasPrefix(ll.Message, "goroutine "):
		l.lastText = ll.Message
	}
	l.mu.Unlock()
	l.add(ll)
}

func isErrorLevel(level string) bool {
	switch strings.ToUpper(level) {
	case "ERROR", "SEVERE":
		return true
	}
	return false
}

// parseRecord turns a slog JSON record into a log line: its message, then
// its other attributes as key=value.
func parseRecord(rec map[string]any, now time.Time) LogLine {
	ll := LogLine{Time: now, Level: "INFO"}
	if t, ok := rec["time"].(string); ok {
		if pt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			ll.Time = pt
		}
	}
	if lv, ok := rec["level"].(string); ok {
		ll.Level = lv
	}
	msg, _ := rec["msg"].(string)
	keys := make([]string, 0, len(rec))
	for k := range rec {
		switch k {
		// component says whose record it is (sluice's or the
		// connector's), which the message tells anyway.
		case "time", "level", "msg", "tables", "component":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(msg)
	for _, k := range keys {
		v := rec[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
			if strings.ContainsAny(s, " \t\"=") {
				s = fmt.Sprintf("%q", s)
			}
		default:
			j, _ := json.Marshal(x)
			s = string(j)
		}
		fmt.Fprintf(&b, " %s=%s", k, s)
	}
	ll.Message = b.String()
	return ll
}

// parseSummary reads per-table counts from a record with a "tables"
// attribute: a list of {"table": ..., "upserts": ...} or an object of
// table name to counts.
func parseSummary(rec map[string]any) ([]TableCounts, bool) {
	raw, ok := rec["tables"]
	if !ok {
		return nil, false
	}
	num := func(m map[string]any, k string) int64 {
		if f, ok := m[k].(float64); ok {
			return int64(f)
		}
		return 0
	}
	var out []TableCounts
	one := func(name string, m map[string]any) {
		out = append(out, TableCounts{Table: name, Upserts: num(m, "upserts"), Updates: num(m, "updates"), Deletes: num(m, "deletes"), Truncates: num(m, "truncates")})
	}
	switch x := raw.(type) {
	case []any:
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			name, _ := m["table"].(string)
			if name == "" {
				name, _ = m["name"].(string)
			}
			one(name, m)
		}
	case map[string]any:
		for name, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			one(name, m)
		}
	default:
		return nil, false
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, true
}

func (l *runLog) tables() []TableCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts
}

// lastError is the best one-line reason of a failure: the last error-level
// log record, else the last plain stderr line.
func (l *runLog) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr != "" {
		return l.lastErr
	}
	return l.lastText
}

func (l *runLog) kept() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

func (l *runLog) droppedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// close writes what is buffered and stops the writer.
func (l *runLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if l.dropped > 0 {
		l.seq++
		l.buf = append(l.buf, LogLine{Seq: l.seq, Time: time.Now(), Level: "WARNING",
			Message: fmt.Sprintf("sluice server: %d more log lines were not kept (a run keeps %d)", l.dropped, l.s.cfg.MaxLogLines)})
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.flushNow <- struct{}{}:
	default:
	}
	<-l.done
}
