package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedata/sluice/destination"
	_ "github.com/sluicedata/sluice/destination/duckdb" // the default destination
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// Paths of a local run, relative to the connector folder.
const (
	FilesDir          = "files"
	WarehouseFile     = "warehouse.db"
	StateFile         = "state.json"
	ConfigurationFile = "configuration.json"
)

type debugFlags struct {
	configuration string
	state         string
	destination   string
	schema        string
	verbose       bool
	batchRows     int
}

func (f *debugFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.configuration, "configuration", "", "configuration JSON file (default: configuration.json if present)")
	fs.StringVar(&f.state, "state", "", "state JSON file to start from (default: files/state.json)")
	fs.StringVar(&f.destination, "destination", "", "destination URL (default: $SLUICE_DESTINATION, else sluice.json's \"destination\", else duckdb:files/warehouse.db)")
	fs.StringVar(&f.schema, "schema", "", "warehouse schema (default: the connector's name, or its folder's)")
	fs.BoolVar(&f.verbose, "verbose", false, "show FINE logs")
	fs.IntVar(&f.batchRows, "batch-rows", 0, "rows per table held in memory before they are written (default 16384)")
}

// runDebug syncs connector c once and prints what happened. It returns the
// process exit status.
func runDebug(c contract.Connector, args []string, stdout, stderr io.Writer) int {
	return runDebugWith(c, nil, args, stdout, stderr)
}

// runDebugWith is runDebug for a connector that knows more of its secrets
// than their key names tell (a dataset's secret parameters).
func runDebugWith(c contract.Connector, secrets func(contract.Config) []string, args []string, stdout, stderr io.Writer) int {
	tuneGC()
	fs := flag.NewFlagSet("debug", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f debugFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &run{c: c, secrets: secrets, flags: f, stdout: stdout, stderr: stderr, start: time.Now()}
	err := r.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "\nsync failed: %s\n", r.redact.apply(err.Error()))
		if r.committed {
			fmt.Fprintf(stderr, "The warehouse and %s keep everything up to the last checkpoint; the next run resumes from it.\n", r.statePath)
		}
		return 1
	}
	return 0
}

type run struct {
	c         contract.Connector
	secrets   func(contract.Config) []string
	flags     debugFlags
	stdout    io.Writer
	stderr    io.Writer
	start     time.Time
	redact    redactor
	statePath string
	committed bool
}

func (r *run) run(ctx context.Context) error {
	if r.c.Update == nil {
		return errors.New("the connector has no Update function: set sdk.Connector{Update: ...}")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg, err := loadConfiguration(r.flags.configuration)
	if err != nil {
		return err
	}
	r.redact = newRedactor(cfg)
	if r.secrets != nil {
		r.redact.add(r.secrets(cfg)...)
	}

	schemaName := r.flags.schema
	if schemaName == "" {
		schemaName = r.c.Name
	}
	if schemaName == "" {
		schemaName = filepath.Base(cwd)
	}
	schema, err := engine.Normalize(schemaName)
	if err != nil {
		return fmt.Errorf("schema name: %w (set --schema)", err)
	}

	// --state names where to start from; checkpoints always go to
	// files/state.json, so a state file kept as a fixture is never
	// overwritten.
	r.statePath = filepath.Join(FilesDir, StateFile)
	explicitState := r.flags.state != ""
	readFrom := r.statePath
	if explicitState {
		readFrom = r.flags.state
	}
	fileState, err := readStateFile(readFrom, explicitState)
	if err != nil {
		return err
	}

	destURL, from, err := chooseDestination(r.flags.destination)
	if err != nil {
		return err
	}
	if destURL == "" {
		destURL = "duckdb:" + filepath.Join(FilesDir, WarehouseFile)
	}
	r.redact.add(destinationSecret(destURL))
	dest, err := destination.Open(ctx, destURL, destination.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer dest.Close()

	rec, err := dest.ReadState(ctx)
	if err != nil {
		return err
	}
	startState, note := chooseState(fileState, rec, explicitState)
	if note != "" {
		fmt.Fprintln(r.stderr, note)
	}
	// From here on files/state.json holds the state the run starts from:
	// the next commit's PrevHash refers to it.
	if startState != nil && (explicitState || !bytesEqual(fileState, startState)) {
		if _, err := writeStateFile(r.statePath, startState); err != nil {
			return err
		}
	}
	where := redactURL(destURL)
	if from != "" && from != "--destination" {
		where += " (from " + from + ")"
	}
	fmt.Fprintf(r.stdout, "sluice debug: schema %q in %s\n", schema, where)
	if startState == nil {
		fmt.Fprintln(r.stdout, "previous state: none (first sync)")
	} else {
		fmt.Fprintf(r.stdout, "previous state: %s\n", r.redact.apply(string(startState)))
	}
	var state contract.State
	if startState != nil {
		dec := json.NewDecoder(bytes.NewReader(startState))
		dec.UseNumber() // exact 64-bit cursors; see contract.State.Int64
		if err := dec.Decode(&state); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	if state == nil {
		state = contract.State{}
	}

	logs := newLogHandler(r.stderr, dest, r.flags.verbose, &r.redact)
	restore := logs.install()
	defer func() {
		restore()
		logs.close(context.WithoutCancel(ctx))
	}()

	eng := engine.New(dest, engine.Options{
		BatchRows: r.flags.batchRows,
		PrevHash:  hashOf(startState),
		OnSchemaChange: func(c destination.SchemaChange) {
			fmt.Fprintf(r.stdout, "schema change: %s\n", c)
		},
		OnCommit: func(state []byte) (string, error) {
			r.committed = true
			testCrashAfterCommit()
			logs.flush(ctx)
			return writeStateFile(r.statePath, state)
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
	if err := eng.Start(ctx, declared, startState); err != nil {
		return err
	}

	prog := startProgress(r.stderr, eng)
	err = runUpdate(ctx, r.c, cfg, state, eng, prog.stop)
	r.summary(eng, outcome(err))
	return err
}

// runUpdate runs the connector's Update on the engine, calls done when it
// returns, and ends the sync: Finish if all went well, else Abort, which
// keeps the last checkpoint's data and state.
func runUpdate(ctx context.Context, c contract.Connector, cfg contract.Config, state contract.State, eng *engine.Engine, done func()) error {
	err := protect("Update", func() error {
		return c.Update(ctx, cloneConfig(cfg), state, eng)
	})
	if done != nil {
		done()
	}
	if err == nil {
		err = eng.Err() // an Update that swallowed an Ops error still failed
	}
	if err == nil {
		err = eng.Finish(ctx)
	}
	if err != nil {
		if abortErr := eng.Abort(context.WithoutCancel(ctx)); abortErr != nil {
			err = errors.Join(err, abortErr)
		}
	}
	return err
}

func outcome(err error) string {
	if err != nil {
		return "failed"
	}
	return "success"
}

// protect runs a connector function, turning a panic into an error.
func protect(name string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the connector's %s panicked: %v\n%s", name, p, debug.Stack())
		}
	}()
	if err := fn(); err != nil {
		return fmt.Errorf("the connector's %s returned an error: %w", name, err)
	}
	return nil
}

func (r *run) summary(eng *engine.Engine, outcome string) {
	counts := eng.TableCounts()
	w := r.stdout
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-30s %10s %10s %10s %10s\n", "table", "upserts", "updates", "deletes", "truncates")
	var total engine.Counts
	for _, c := range counts {
		fmt.Fprintf(w, "%-30s %10d %10d %10d %10d\n", c.Table, c.Upserts, c.Updates, c.Deletes, c.Truncates)
		total.Upserts += c.Upserts
		total.Updates += c.Updates
		total.Deletes += c.Deletes
		total.Truncates += c.Truncates
	}
	fmt.Fprintf(w, "%-30s %10d %10d %10d %10d\n", "total", total.Upserts, total.Updates, total.Deletes, total.Truncates)
	el := time.Since(r.start)
	ops := eng.Ops()
	fmt.Fprintf(w, "checkpoints: %d\n", eng.Checkpoints())
	fmt.Fprintf(w, "outcome: %s in %s (%d operations, %.0f ops/s)\n", outcome, el.Round(time.Millisecond), ops, float64(ops)/el.Seconds())
}

// loadConfiguration reads the configuration: a JSON object of strings.
func loadConfiguration(path string) (contract.Config, error) {
	explicit := path != ""
	if !explicit {
		path = ConfigurationFile
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return contract.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return ParseConfiguration(path, b)
}

// ParseConfiguration checks that b is a JSON object of string values.
func ParseConfiguration(path string, b []byte) (contract.Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("configuration %s: must be a JSON object of string values, like {\"api_key\": \"...\"}", path)
	}
	cfg := contract.Config{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var s string
		// null is not a string either, though Unmarshal would accept it.
		if err := json.Unmarshal(raw[k], &s); err != nil || string(bytes.TrimSpace(raw[k])) == "null" {
			// The value itself is not shown: it may be a secret.
			return nil, fmt.Errorf("configuration %s: the value of %q is not a string: write it in quotes (every configuration value is a string)", path, k)
		}
		cfg[k] = s
	}
	return cfg, nil
}

func cloneConfig(c contract.Config) contract.Config {
	out := make(contract.Config, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// readStateFile returns the state file's bytes, nil if it does not exist.
func readStateFile(path string, mustExist bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("state file %s is not a JSON object: fix it, or delete it (or run `sluice reset`) to sync from scratch", path)
	}
	return b, nil
}

// chooseState decides which state a run starts from. The warehouse commits
// state with the data; the file is written just after. So a file equal to the
// state the warehouse committed *before* its last one means a crash in
// between, and the warehouse wins; any other difference is the user's edit,
// and the file wins.
func chooseState(file []byte, rec *destination.StateRecord, explicit bool) ([]byte, string) {
	switch {
	case explicit || rec == nil:
		return file, ""
	case file == nil:
		return rec.State, "state file missing: starting from the state last committed in the warehouse (run `sluice reset` to start over)"
	case bytesEqual(file, rec.State):
		return file, ""
	case hashOf(file) == rec.PrevHash:
		return rec.State, "state file was one checkpoint behind the warehouse (the last run stopped between commit and file write): using the warehouse's state"
	default:
		return file, "state file differs from the state last committed in the warehouse: using the file, as edited"
	}
}

func hashOf(b []byte) string {
	if b == nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// writeStateFile replaces the state file atomically (write, sync, rename) and
// returns the hash of what it wrote.
func writeStateFile(path string, state []byte) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("write state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*.json")
	if err != nil {
		return "", fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(state); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write state: %w", err)
	}
	return hashOf(state), nil
}

// redactURL hides a password in a destination URL.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				return s[:i+3] + rest[:colon] + ":***" + rest[at:]
			}
		}
	}
	return s
}

// testCommits counts commits for testCrashAfterCommit.
var testCommits int

// testCrashAfterCommit is the crash test's hook (see crash_test.go):
// SLUICE_TEST_CRASH_AFTER_COMMIT=n kills the process right after its n-th
// commit, before the state file is written.
func testCrashAfterCommit() {
	n, err := strconv.Atoi(os.Getenv("SLUICE_TEST_CRASH_AFTER_COMMIT"))
	if testCommits++; err == nil && testCommits == n {
		p, _ := os.FindProcess(os.Getpid())
		p.Kill()
		select {} // the signal is on its way
	}
}
