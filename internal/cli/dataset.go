package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluicedata/sluice/internal/contract"
)

const datasetUsage = `usage: go run . COMMAND [flags]

commands:
  read [--partition ID] [--limit N] [--format table|csv|jsonl|parquet] [-o FILE]
                           print or export rows (the whole dataset without --partition)
  write --partition ID [--append] FILE
                           write a CSV, JSONL or Parquet file into a partition (replacing it unless --append)
  partitions               list the partition ids
  count [--partition ID]   count the records of the dataset or of one partition
  describe                 capabilities, parameters, schema and partitioning
  debug [--partition ID] [--incremental] [debug flags]
                           sync into the local warehouse: one table, each partition
                           replaced atomically; --incremental skips partitions synced before
  reset, tables, sql       as for any connector (see sluice help)
  help                     show this

Every command takes --configuration FILE (default: configuration.json if
present) and --verbose.
`

// RunDataset is a dataset connector program's command line.
func RunDataset(d contract.Dataset, args []string) int {
	return runDataset(d, args, os.Stdin, os.Stdout, os.Stderr)
}

func runDataset(d contract.Dataset, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, datasetUsage)
		return 2
	}
	cmds := map[string]func(*dsCmd, []string) int{
		"read":       (*dsCmd).read,
		"write":      (*dsCmd).write,
		"partitions": (*dsCmd).partitions,
		"count":      (*dsCmd).count,
		"describe":   (*dsCmd).describe,
	}
	if run, ok := cmds[args[0]]; ok {
		c := &dsCmd{d: d, name: args[0], stdin: stdin, stdout: stdout, stderr: stderr}
		return run(c, args[1:])
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, datasetUsage)
		return 0
	case "debug":
		return runDatasetDebug(d, args[1:], stdout, stderr)
	}
	if code, ok := runLocal(args, stdin, stdout, stderr); ok {
		return code
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], datasetUsage)
	return 2
}

// datasetCapability names what each dataset command needs, for the message
// a change-stream connector gives when asked for one.
var datasetCapability = map[string]string{
	"read": "read rows", "write": "write rows", "partitions": "list partitions",
	"count": "records count", "describe": "describe",
}

// notDataset answers a dataset command run on a connector that syncs changes.
func notDataset(cmd string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "%s: this connector has no %q capability: it syncs changes through Update (sdk.Main); dataset commands need a dataset connector started with sdk.MainDataset\n", cmd, datasetCapability[cmd])
	return 1
}

// dsCmd is one dataset command: its flags, output and the redactor that
// keeps secrets out of everything it prints.
type dsCmd struct {
	d              contract.Dataset
	name           string
	stdin          io.Reader
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	configuration  string
	verbose        bool
	redact         redactor
}

func (c *dsCmd) flags() *flag.FlagSet {
	c.fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.fs.SetOutput(c.stderr)
	c.fs.StringVar(&c.configuration, "configuration", "", "configuration JSON file (default: configuration.json if present)")
	c.fs.BoolVar(&c.verbose, "verbose", false, "show FINE logs")
	return c.fs
}

// parse parses flags wherever they stand among the arguments, so that both
// `write --append FILE` and `write FILE --append` work.
func (c *dsCmd) parse(args []string) ([]string, bool) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, false
		}
		if args = c.fs.Args(); len(args) == 0 {
			return pos, true
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// open loads and validates the configuration, and installs the run's
// logger. The returned function undoes what open set up.
func (c *dsCmd) open() (context.Context, *contract.DatasetHandle, func(), error) {
	cfg, err := loadConfiguration(c.configuration)
	if err != nil {
		return nil, nil, nil, err
	}
	c.redact = newRedactor(cfg)
	// Before validation, so that its errors are masked too.
	c.redact.add(c.d.Info().Params.Secrets(cfg)...)
	h, err := contract.OpenDataset(c.d, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	c.redact.add(h.Secrets()...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	prev := slog.Default()
	slog.SetDefault(slog.New(&consoleHandler{w: c.stderr, verbose: c.verbose, redact: &c.redact, mu: &sync.Mutex{}}))
	return ctx, h, func() { slog.SetDefault(prev); stop() }, nil
}

func (c *dsCmd) fail(err error) int {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, c.redact.apply(err.Error()))
	return 1
}

// guard runs connector code, turning a panic into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the connector panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}

func (c *dsCmd) read(args []string) int {
	fs := c.flags()
	partition := fs.String("partition", "", "partition id (default: the whole dataset)")
	limit := fs.Int64("limit", 0, "read at most N rows (0 or -1: all)")
	format := fs.String("format", "", "table, csv, jsonl or parquet (default: from -o's extension, else table)")
	output := fs.String("o", "", "write to FILE instead of the standard output")
	pos, ok := c.parse(args)
	if !ok || len(pos) > 0 {
		fmt.Fprintln(c.stderr, "usage: read [--partition ID] [--limit N] [--format table|csv|jsonl|parquet] [-o FILE]")
		return 2
	}
	if *format == "" {
		*format = formatOf(*output, "table")
	}
	switch *format {
	case "table", "csv", "jsonl", "parquet":
	default:
		fmt.Fprintf(c.stderr, "read: unknown format %q: use table, csv, jsonl or parquet\n", *format)
		return 2
	}
	ctx, h, done, err := c.open()
	if err != nil {
		return c.fail(err)
	}
	defer done()

	var res contract.ReadResult
	if *format == "parquet" {
		err = guard(func() error {
			var err error
			res, err = exportParquet(ctx, h, contract.ReadOptions{Partition: *partition, Limit: *limit}, *output, c.stdout)
			return err
		})
	} else {
		err = writeOutput(*output, c.stdout, func(w io.Writer) error {
			return guard(func() error {
				var err error
				if *format == "jsonl" {
					enc := json.NewEncoder(w)
					enc.SetEscapeHTML(false)
					res, err = h.Read(ctx, contract.ReadOptions{Partition: *partition, Limit: *limit}, func(r contract.Row) error { return enc.Encode(r) })
					return err
				}
				res, err = readTabular(ctx, h, contract.ReadOptions{Partition: *partition, Limit: *limit}, w, *format)
				return err
			})
		})
	}
	if err != nil {
		return c.fail(err)
	}
	for _, col := range sortedKeys(res.Dropped) {
		fmt.Fprintf(c.stderr, "strict schema: dropped %d values of column %q, which is not in the schema\n", res.Dropped[col], col)
	}
	if *output != "" {
		fmt.Fprintf(c.stderr, "read %s into %s\n", plural(res.Rows, "row"), *output)
	}
	return 0
}

// readTabular writes rows as a table or CSV. Their columns are known only
// at the end (a column may first appear in the last row, and is kept), so
// rows are spooled to a temporary file first, which keeps memory flat.
func readTabular(ctx context.Context, h *contract.DatasetHandle, opts contract.ReadOptions, w io.Writer, format string) (contract.ReadResult, error) {
	spool, err := os.CreateTemp("", "sluice-read-*.jsonl")
	if err != nil {
		return contract.ReadResult{}, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	buf := bufio.NewWriter(spool)
	enc := json.NewEncoder(buf)
	res, err := h.Read(ctx, opts, func(r contract.Row) error {
		cells := make(map[string]*string, len(r))
		for k, v := range r {
			if s, ok := cellText(v); ok {
				cells[k] = &s
			} else {
				cells[k] = nil
			}
		}
		return enc.Encode(cells)
	})
	if err != nil {
		return res, err
	}
	if err := buf.Flush(); err != nil {
		return res, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	names := make([]string, len(res.Schema))
	for i, col := range res.Schema {
		names[i] = col.Name
	}
	var put func([]string) error
	var flush func() error
	if format == "csv" {
		cw := csv.NewWriter(w)
		put, flush = cw.Write, func() error { cw.Flush(); return cw.Error() }
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		put = func(cells []string) error { _, err := fmt.Fprintln(tw, strings.Join(cells, "\t")); return err }
		flush = func() error {
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err := fmt.Fprintf(w, "(%d rows)\n", res.Rows)
			return err
		}
	}
	if err := put(names); err != nil {
		return res, err
	}
	dec := json.NewDecoder(bufio.NewReader(spool))
	line := make([]string, len(names))
	for dec.More() {
		var cells map[string]*string
		if err := dec.Decode(&cells); err != nil {
			return res, fmt.Errorf("read back the spooled rows: %w", err)
		}
		for i, n := range names {
			switch s := cells[n]; {
			case s != nil && format == "table":
				line[i] = strings.ReplaceAll(*s, "\n", `\n`)
			case s != nil:
				line[i] = *s
			case format == "table":
				line[i] = "NULL"
			default:
				line[i] = ""
			}
		}
		if err := put(line); err != nil {
			return res, err
		}
	}
	return res, flush()
}

// cellText renders a value as text; false for NULL.
func cellText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case contract.DecimalText:
		return string(x), true
	case json.Number:
		return x.String(), true
	case []byte:
		return fmt.Sprintf("\\x%x", x), true
	case time.Time:
		return x.Format(time.RFC3339Nano), true
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprint(x), true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// writeOutput runs fn on stdout, or on a temporary file renamed to path
// once fn succeeds, so that a failed export never leaves half a file.
func writeOutput(path string, stdout io.Writer, fn func(io.Writer) error) error {
	if path == "" {
		return fn(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	buf := bufio.NewWriter(tmp)
	if err := fn(buf); err != nil {
		tmp.Close()
		return err
	}
	if err := buf.Flush(); err != nil {
		tmp.Close()
		return err
	}
	// CreateTemp makes the file private; an export is not.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// formatOf guesses a file format from a file name.
func formatOf(path, def string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson":
		return "jsonl"
	case ".parquet":
		return "parquet"
	}
	return def
}

func (c *dsCmd) write(args []string) int {
	fs := c.flags()
	partition := fs.String("partition", "", "partition id to write (required for a partitioned dataset)")
	appendMode := fs.Bool("append", false, "add to the partition instead of replacing it")
	format := fs.String("format", "", "csv, jsonl or parquet (default: from FILE's extension)")
	pos, ok := c.parse(args)
	if !ok || len(pos) != 1 {
		fmt.Fprintln(c.stderr, "usage: write --partition ID [--append] [--format csv|jsonl|parquet] FILE (- for the standard input)")
		return 2
	}
	file := pos[0]
	if *format == "" {
		*format = formatOf(file, "")
	}
	switch *format {
	case "csv", "jsonl", "parquet":
	case "":
		fmt.Fprintf(c.stderr, "write: cannot tell the format of %s: use --format csv, jsonl or parquet\n", file)
		return 2
	default:
		fmt.Fprintf(c.stderr, "write: unknown format %q: use csv, jsonl or parquet\n", *format)
		return 2
	}
	ctx, h, done, err := c.open()
	if err != nil {
		return c.fail(err)
	}
	defer done()
	if err := h.Require("write rows"); err != nil {
		return c.fail(err)
	}
	in := c.stdin
	if file == "-" && *format == "parquet" {
		// Parquet is read from its end (the footer) first: spool the
		// standard input to a file.
		tmp, err := spool(c.stdin)
		if err != nil {
			return c.fail(fmt.Errorf("read Parquet from the standard input: %w", err))
		}
		defer os.Remove(tmp)
		file = tmp
	}
	if file != "-" && *format != "parquet" {
		f, err := os.Open(file)
		if err != nil {
			return c.fail(err)
		}
		defer f.Close()
		in = f
	}
	opts := contract.WriteOptions{Partition: *partition}
	if *appendMode {
		opts.Mode = contract.Append
	}
	rows := jsonlRows(in)
	switch *format {
	case "csv":
		if opts.Columns, rows, err = csvRows(in); err != nil {
			return c.fail(err)
		}
	case "parquet":
		var closeParquet func()
		if opts.Columns, rows, closeParquet, err = parquetRows(ctx, file); err != nil {
			return c.fail(err)
		}
		defer closeParquet()
	}
	var res contract.WriteResult
	err = guard(func() error {
		var err error
		res, err = h.Write(ctx, opts, rows)
		return err
	})
	if err != nil {
		return c.fail(err)
	}
	where := "the dataset"
	if *partition != "" {
		where = "partition " + *partition
	}
	fmt.Fprintf(c.stdout, "wrote %s to %s (%s)\n", plural(res.Rows, "row"), where, opts.Mode)
	for _, col := range sortedKeys(res.Extra) {
		fmt.Fprintf(c.stdout, "column %q is not in the schema: %d values handed to the writer apart\n", col, res.Extra[col])
	}
	return 0
}

// spool copies r into a temporary file and returns its path.
func spool(r io.Reader) (string, error) {
	f, err := os.CreateTemp("", "sluice-stdin-*.parquet")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// csvRows reads a CSV file's header, and returns it with the rows that
// follow. An empty field is NULL: CSV has no other way to say it.
func csvRows(r io.Reader) ([]string, iter.Seq2[contract.Row, error], error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, func(func(contract.Row, error) bool) {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("CSV header: %w", err)
	}
	seen := map[string]bool{}
	for _, h := range header {
		if h == "" || seen[h] {
			return nil, nil, fmt.Errorf("CSV header: column name %q is empty or repeated", h)
		}
		seen[h] = true
	}
	return header, func(yield func(contract.Row, error) bool) {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, fmt.Errorf("CSV: %w", err))
				return
			}
			row := make(contract.Row, len(rec))
			for i, v := range rec {
				if v != "" {
					row[header[i]] = v
				} else {
					row[header[i]] = nil
				}
			}
			if !yield(row, nil) {
				return
			}
		}
	}, nil
}

// jsonlRows reads one JSON object a line; numbers stay exact (json.Number).
func jsonlRows(r io.Reader) iter.Seq2[contract.Row, error] {
	return func(yield func(contract.Row, error) bool) {
		br := bufio.NewReader(r)
		for n := 1; ; n++ {
			line, err := br.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				dec := json.NewDecoder(bytes.NewReader(line))
				dec.UseNumber()
				var row contract.Row
				if derr := dec.Decode(&row); derr != nil || row == nil || dec.More() {
					yield(nil, fmt.Errorf("JSONL line %d: not a JSON object", n))
					return
				}
				if !yield(row, nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

func (c *dsCmd) partitions(args []string) int {
	c.flags()
	if pos, ok := c.parse(args); !ok || len(pos) > 0 {
		fmt.Fprintln(c.stderr, "usage: partitions")
		return 2
	}
	ctx, h, done, err := c.open()
	if err != nil {
		return c.fail(err)
	}
	defer done()
	var ps []contract.Partition
	if err := guard(func() error { ps, err = h.Partitions(ctx); return err }); err != nil {
		return c.fail(err)
	}
	for _, p := range ps {
		fmt.Fprintln(c.stdout, p.ID)
	}
	if len(ps) == 0 {
		fmt.Fprintln(c.stderr, "no partitions")
	}
	return 0
}

func (c *dsCmd) count(args []string) int {
	fs := c.flags()
	partition := fs.String("partition", "", "partition id (default: the whole dataset)")
	if pos, ok := c.parse(args); !ok || len(pos) > 0 {
		fmt.Fprintln(c.stderr, "usage: count [--partition ID]")
		return 2
	}
	ctx, h, done, err := c.open()
	if err != nil {
		return c.fail(err)
	}
	defer done()
	var n int64
	if err := guard(func() error { n, err = h.Count(ctx, *partition); return err }); err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.stdout, n)
	return 0
}

// describe shows what the dataset declares. It shows the parameters even
// when the configuration does not satisfy them: that is when one needs to
// see them.
func (c *dsCmd) describe(args []string) (code int) {
	c.flags()
	if pos, ok := c.parse(args); !ok || len(pos) > 0 {
		fmt.Fprintln(c.stderr, "usage: describe")
		return 2
	}
	info := c.d.Info()
	var out bytes.Buffer
	var failure error
	// Everything goes through the redactor before it is printed, and a
	// failure is told after what could be shown; tabwriter pads empty last
	// cells, which leaves trailing spaces.
	defer func() {
		lines := strings.Split(c.redact.apply(out.String()), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(l, " ")
		}
		io.WriteString(c.stdout, strings.Join(lines, "\n"))
		if failure != nil {
			code = c.fail(failure)
		}
	}()

	fmt.Fprintf(&out, "dataset: %s\n", info.Name)
	caps := contract.Capabilities(c.d)
	fmt.Fprintf(&out, "capabilities: %s\n", orNone(strings.Join(caps, ", ")))
	if _, ok := c.d.(contract.RowWriter); ok {
		modes := "OVERWRITE"
		if info.Append {
			modes += ", APPEND"
		}
		fmt.Fprintf(&out, "write modes: %s\n", modes)
	}
	fmt.Fprintf(&out, "partitioning: %s", info.Partitioning)
	if len(info.Partitioning) > 0 {
		fmt.Fprintf(&out, "; ids like %s", info.Partitioning.Example())
	}
	fmt.Fprintf(&out, "\nstrict schema: %v\n", info.StrictSchema)

	cfg, err := loadConfiguration(c.configuration)
	if err != nil {
		failure = err
		return
	}
	c.redact = newRedactor(cfg)
	c.redact.add(info.Params.Secrets(cfg)...)
	if valid, err := info.Params.Validate(cfg); err == nil {
		cfg = valid
	}
	if len(info.Params) > 0 {
		fmt.Fprintln(&out, "parameters:")
		tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  name\tlabel\ttype\tmandatory\tdefault\tvalue")
		for _, p := range info.Params {
			typ := p.Type.String()
			if len(p.Choices) > 0 {
				typ += " (" + strings.Join(p.Choices, ", ") + ")"
			}
			v := cfg[p.Name]
			if p.Type == contract.ParamSecret && v != "" {
				v = "***"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Label, typ, yesNo(p.Mandatory), p.Default, v)
		}
		tw.Flush()
	}
	if info.Resources != nil {
		fmt.Fprintln(&out, "resources:")
		err := fs.WalkDir(info.Resources, ".", func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(&out, "  %s (%d bytes)\n", p, fi.Size())
			return nil
		})
		if err != nil {
			failure = fmt.Errorf("resources: %w", err)
			return
		}
	}

	ctx, h, done, err := c.open()
	if err != nil {
		failure = err
		return
	}
	defer done()
	var cols []contract.Column
	var inferred bool
	err = guard(func() error { cols, inferred, err = h.Schema(ctx); return err })
	var ce *contract.CapabilityError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintln(&out, "schema: unknown (the connector neither declares nor reads rows)")
		return 0
	case err != nil:
		failure = err
		return
	case inferred:
		n := info.SchemaSample
		if n <= 0 {
			n = contract.DefaultSchemaSample
		}
		fmt.Fprintf(&out, "schema (inferred from the first %d rows):\n", n)
	default:
		fmt.Fprintln(&out, "schema:")
	}
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	for _, col := range cols {
		fmt.Fprintf(tw, "  %s\t%s\n", col.Name, typeText(col))
	}
	tw.Flush()
	return 0
}

func typeText(c contract.Column) string {
	switch c.Type {
	case contract.Decimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", c.Precision, c.Scale)
	case contract.Unspecified:
		return "unknown (only NULLs seen)"
	}
	return c.Type.String()
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// add masks more values: those of secret-typed parameters, whatever their
// key is called.
func (r *redactor) add(vals ...string) {
	for _, v := range vals {
		if v != "" {
			r.secrets = append(r.secrets, v)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// consoleHandler prints connector logs on the console in debug's format.
// Dataset commands have no warehouse to keep them in.
type consoleHandler struct {
	w       io.Writer
	verbose bool
	redact  *redactor
	mu      *sync.Mutex
	attrs   []slog.Attr
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.verbose || l >= contract.LevelInfo
}

func (h *consoleHandler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	write := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	for _, a := range h.attrs {
		write(a)
	}
	rec.Attrs(write)
	t := rec.Time
	if t.IsZero() {
		t = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.w, "%s %-7s %s\n", t.Format("15:04:05.000"), contract.LevelName(rec.Level), h.redact.apply(b.String()))
	return err
}

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *consoleHandler) WithGroup(string) slog.Handler { return h }
