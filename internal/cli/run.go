package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/destination"
	_ "github.com/sluicedata/sluice/destination/postgres" // postgres:// and postgresql:// destinations
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
	"github.com/sluicedata/sluice/internal/project"
)

// DestinationEnv names the environment variable `run` reads the destination
// URL from when --destination is not given.
const DestinationEnv = "SLUICE_DESTINATION"

const runUsage = `usage: run [flags]

Syncs the connector once into a production destination, for schedulers and
containers: the state comes from the destination (committed with the data),
logs are JSON lines on stderr, the exit status is 0 on success and 1 on
failure.

flags:
`

// runRun is `run`: one sync for production. Unlike debug it has no default
// destination (a silent local DuckDB file would lose a production sync's
// data), keeps no state file (the destination's state is the truth), and
// speaks JSON lines.
func runRun(c contract.Connector, args []string, stderr io.Writer) int {
	return runRunWith(c, nil, args, stderr)
}

// runRunWith is runRun for a connector that knows more of its secrets than
// their key names tell (a database URL in a form other than a URL).
func runRunWith(c contract.Connector, secrets func(contract.Config) []string, args []string, stderr io.Writer) int {
	tuneGC()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	destURL := fs.String("destination", "", "destination URL, such as postgres://user:password@host:5432/db (default: $"+DestinationEnv+", else sluice.json's \"destination\")")
	configuration := fs.String("configuration", "", "configuration JSON file (default: configuration.json if present)")
	schemaFlag := fs.String("schema", "", "destination schema (default: the connector's name, or its folder's)")
	verbose := fs.Bool("verbose", false, "log FINE records too")
	batchRows := fs.Int("batch-rows", 0, "rows per table held in memory before they are written (default 16384)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "run: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &prodRun{c: c, secrets: secrets, stderr: stderr, start: time.Now(), verbose: *verbose, batchRows: *batchRows}
	r.out = newJSONLog(stderr, *verbose, &r.redact)
	url, _, err := chooseDestination(*destURL)
	if err == nil {
		err = r.run(ctx, url, *configuration, *schemaFlag)
	}
	if err != nil {
		msg := r.redact.apply(err.Error())
		if ctx.Err() != nil {
			msg = "sync cancelled: " + msg
		}
		r.out.sluice(slog.LevelError, "sync failed", slog.String("error", msg),
			slog.Bool("committed", r.committed), slog.String("resume", "the next run resumes from the last checkpoint committed in the destination"))
		return 1
	}
	return 0
}

// prodRun is one `run`.
type prodRun struct {
	c         contract.Connector
	secrets   func(contract.Config) []string
	stderr    io.Writer
	start     time.Time
	verbose   bool
	batchRows int
	redact    redactor
	out       *jsonLog
	committed bool
}

func (r *prodRun) run(ctx context.Context, url, configPath, schemaName string) error {
	if r.c.Update == nil {
		return errors.New("the connector has no Update function: set sdk.Connector{Update: ...}")
	}
	if url == "" {
		return fmt.Errorf("no destination: pass --destination URL, set %s (for example postgres://user:password@host:5432/db?sslmode=disable) or save one as \"destination\" in %s; run has no default, so that a production sync never lands in a local file by mistake", DestinationEnv, project.FileName)
	}
	cfg, err := loadConfiguration(configPath)
	if err != nil {
		return err
	}
	r.redact = newRedactor(cfg)
	if r.secrets != nil {
		r.redact.add(r.secrets(cfg)...)
	}
	r.redact.add(destinationSecret(url))
	if schemaName == "" {
		schemaName = r.c.Name
	}
	if schemaName == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return err
		}
		schemaName = filepath.Base(cwd)
	}
	schema, err := engine.Normalize(schemaName)
	if err != nil {
		return fmt.Errorf("schema name: %w (set --schema)", err)
	}
	dest, err := destination.Open(ctx, url, destination.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		return err
	}
	var start []byte
	if rec != nil {
		start = rec.State
	}
	state := contract.State{}
	if start != nil {
		dec := json.NewDecoder(bytes.NewReader(start))
		dec.UseNumber() // exact 64-bit cursors; see contract.State.Int64
		if err := dec.Decode(&state); err != nil {
			return fmt.Errorf("state in the destination: %w", err)
		}
	}
	r.out.sluice(slog.LevelInfo, "sync started", slog.String("schema", schema), slog.String("destination", redactURL(url)),
		slog.String("state", r.redact.apply(stateText(start))))

	r.out.dest = dest
	restore := r.out.install()
	defer func() {
		restore()
		r.out.flush(context.WithoutCancel(ctx))
	}()
	eng := engine.New(dest, engine.Options{
		BatchRows: r.batchRows,
		OnSchemaChange: func(c destination.SchemaChange) {
			r.out.sluice(slog.LevelInfo, "schema change", slog.String("change", c.String()))
		},
		OnCommit: func([]byte) (string, error) {
			r.committed = true
			r.out.flush(ctx)
			return "", nil
		},
	})
	var declared []contract.Table
	if r.c.Schema != nil {
		err := protect("Schema", func() error {
			var err error
			declared, err = r.c.Schema(ctx, cloneConfig(cfg))
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := eng.Start(ctx, declared, start); err != nil {
		return err
	}
	err = runUpdate(ctx, r.c, cfg, state, eng, nil)
	r.summary(eng, outcome(err))
	return err
}

func stateText(b []byte) string {
	if b == nil {
		return "none (first sync)"
	}
	return string(b)
}

// chooseDestination picks the destination URL: --destination, else
// $SLUICE_DESTINATION, else the "destination" of the project file in the
// current folder (its password from the variable it names). from says
// which, for messages; an empty url means none of them names one. The
// project file is read only when needed, so that a flag or the variable
// works whatever the file holds.
func chooseDestination(flagURL string) (url, from string, err error) {
	if flagURL != "" {
		return flagURL, "--destination", nil
	}
	if v := os.Getenv(DestinationEnv); v != "" {
		return v, DestinationEnv, nil
	}
	f, err := project.Load(".")
	if err != nil {
		return "", "", err
	}
	v, ok, err := f.DestinationURL()
	if err != nil || !ok {
		return "", "", err
	}
	return v, project.FileName, nil
}

// destinationSecret is the password of a destination URL, masked wherever
// it might be repeated (a driver's error quoting the URL).
func destinationSecret(destURL string) string {
	u, err := neturl.Parse(destURL)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// tableSummary is one table's line in the final summary.
type tableSummary struct {
	Table     string `json:"table"`
	Upserts   int64  `json:"upserts"`
	Updates   int64  `json:"updates"`
	Deletes   int64  `json:"deletes"`
	Truncates int64  `json:"truncates"`
}

// summary writes the run's final line.
func (r *prodRun) summary(eng *engine.Engine, outcome string) {
	var tables []tableSummary
	for _, c := range eng.TableCounts() {
		tables = append(tables, tableSummary{Table: c.Table, Upserts: c.Upserts, Updates: c.Updates, Deletes: c.Deletes, Truncates: c.Truncates})
	}
	el := time.Since(r.start)
	level := slog.LevelInfo
	if outcome != "success" {
		level = slog.LevelError
	}
	r.out.sluice(level, "sync summary", slog.String("outcome", outcome), slog.Float64("seconds", el.Seconds()),
		slog.Int64("operations", eng.Ops()), slog.Int64("checkpoints", eng.Checkpoints()), slog.Any("tables", tables))
}

// jsonLog writes sluice's and the connector's logs as JSON lines, with
// level names FINE, INFO, WARNING and SEVERE and secrets masked, and keeps
// the connector's records for the destination's _sluice_log. Connector
// records are rate limited as debug's are.
type jsonLog struct {
	redact  *redactor
	verbose bool
	mu      sync.Mutex
	w       *slog.Logger // the JSON handler; serialises writes itself
	dest    destination.Destination
	buf     []destination.LogRecord
	tokens  float64
	last    time.Time
	dropped int64
}

func newJSONLog(w io.Writer, verbose bool, redact *redactor) *jsonLog {
	l := &jsonLog{redact: redact, verbose: verbose, tokens: logBurst, last: time.Now()}
	l.w = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch {
			case len(groups) == 0 && a.Key == slog.LevelKey:
				if lv, ok := a.Value.Any().(slog.Level); ok {
					return slog.String(slog.LevelKey, contract.LevelName(lv))
				}
			case a.Value.Kind() == slog.KindString:
				return slog.String(a.Key, l.redact.apply(a.Value.String()))
			case a.Value.Kind() == slog.KindAny:
				if err, ok := a.Value.Any().(error); ok {
					return slog.String(a.Key, l.redact.apply(err.Error()))
				}
			}
			return a
		},
	}))
	return l
}

// sluice logs one of sluice's own records.
func (l *jsonLog) sluice(level slog.Level, msg string, attrs ...slog.Attr) {
	l.w.LogAttrs(context.Background(), level, msg, append([]slog.Attr{slog.String("component", "sluice")}, attrs...)...)
}

// install makes the connector's slog calls go through l, and returns the
// undo.
func (l *jsonLog) install() func() {
	prev := slog.Default()
	slog.SetDefault(slog.New(&connectorLog{l: l}))
	return func() { slog.SetDefault(prev) }
}

// flush stores the buffered connector records in the destination. A
// failure is logged, not fatal: the sync's data matters more.
func (l *jsonLog) flush(ctx context.Context) {
	l.mu.Lock()
	if l.dropped > 0 {
		l.dropNote(time.Now())
	}
	recs := l.buf
	l.buf = nil
	l.mu.Unlock()
	if len(recs) == 0 || l.dest == nil {
		return
	}
	if err := l.dest.Log(ctx, recs); err != nil {
		l.sluice(slog.LevelWarn, "could not store log records in the destination", slog.Int("records", len(recs)), slog.String("error", err.Error()))
	}
}

// dropNote reports the records the rate limit dropped; l.mu is held.
func (l *jsonLog) dropNote(now time.Time) {
	msg := fmt.Sprintf("%d log records dropped by the rate limit (%d/s, bursts of %d)", l.dropped, int(logPerSecond), logBurst)
	l.dropped = 0
	l.sluice(slog.LevelWarn, msg)
	l.buf = append(l.buf, destination.LogRecord{Time: now, Level: "WARNING", Message: msg})
}

// connectorLog is the slog.Handler of the connector's records.
type connectorLog struct {
	l     *jsonLog
	attrs []slog.Attr
}

func (h *connectorLog) Enabled(_ context.Context, lv slog.Level) bool {
	return h.l.verbose || lv >= contract.LevelInfo
}

func (h *connectorLog) Handle(ctx context.Context, rec slog.Record) error {
	l := h.l
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logPerSecond)
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		l.mu.Unlock()
		return nil
	}
	l.tokens--
	if l.dropped > 0 {
		l.dropNote(now)
	}
	// The warehouse keeps one line of text, as debug stores it.
	var text bytes.Buffer
	text.WriteString(rec.Message)
	attrs := append([]slog.Attr{slog.String("component", "connector")}, h.attrs...)
	rec.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		fmt.Fprintf(&text, " %s=%v", a.Key, a.Value)
		return true
	})
	t := rec.Time
	if t.IsZero() {
		t = now
	}
	l.buf = append(l.buf, destination.LogRecord{Time: t, Level: contract.LevelName(rec.Level), Message: l.redact.apply(text.String())})
	full := len(l.buf) >= logFlushAt
	l.mu.Unlock()
	l.w.LogAttrs(ctx, rec.Level, rec.Message, attrs...)
	if full {
		l.flush(ctx)
	}
	return nil
}

func (h *connectorLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &connectorLog{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *connectorLog) WithGroup(string) slog.Handler { return h }
