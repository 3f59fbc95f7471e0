package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/sluicedata/sluice/fileformat"
	"github.com/sluicedata/sluice/filestore"
	_ "github.com/sluicedata/sluice/filestore/s3" // s3:// roots
	"github.com/sluicedata/sluice/filetable"
	"github.com/sluicedata/sluice/internal/contract"
	"github.com/sluicedata/sluice/internal/project"
)

const filesUsage = `usage: sluice files COMMAND [flags]

commands:
  ls ROOT                              list the tables of a store
  head ROOT TABLE [-n 10] [--format table|csv|jsonl]
                                       show a table's first rows
  schema ROOT TABLE                    show a table's files, columns and row count
  upload ROOT NAME PATH [--no-auto-partition] [--partition-size-mb 250]
                                       upload a CSV, Parquet or JSON Lines file (also
                                       .csv.gz, .jsonl.gz) as table NAME
  rm ROOT NAME                         delete table NAME (every part)
  store add NAME ROOT [--endpoint URL] [--region R] [--path-style]
            [--access-key-env VAR] [--secret-key-env VAR]
                                       save a store in sluice.json under NAME
  store ls                             list the saved stores
  store rm NAME                        forget a saved store

ROOT is a folder, file:///path, s3://bucket/prefix, or a saved store: @NAME,
or NAME alone when no file or folder here has that name (then write @NAME
for the store, ./NAME for the folder). S3 settings come from --endpoint,
--region and --path-style, from the root's query (?endpoint=...&region=...
&path_style=true), or from AWS_ENDPOINT_URL and AWS_REGION; credentials from
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or for a saved store from the
environment variables it names. Secrets are never saved or printed.
`

// runFiles is `sluice files`.
func runFiles(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, filesUsage)
		return 2
	}
	c := &filesCmd{stdout: stdout, stderr: stderr}
	switch args[0] {
	case "ls":
		return c.ls(args[1:])
	case "head":
		return c.head(args[1:])
	case "schema":
		return c.schema(args[1:])
	case "upload":
		return c.upload(args[1:])
	case "rm":
		return c.rm(args[1:])
	case "store":
		return c.store(args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, filesUsage)
		return 0
	}
	fmt.Fprintf(stderr, "files: unknown command %q\n\n%s", args[0], filesUsage)
	return 2
}

type filesCmd struct {
	stdout, stderr io.Writer
	name           string
	fs             *flag.FlagSet
	opts           filestore.Options
	secrets        []string
}

// flags starts a command's flag set; withRoot adds the S3 settings.
func (c *filesCmd) flags(name string, withRoot bool) *flag.FlagSet {
	c.name = name
	c.fs = flag.NewFlagSet("files "+name, flag.ContinueOnError)
	c.fs.SetOutput(c.stderr)
	if withRoot {
		c.fs.StringVar(&c.opts.Endpoint, "endpoint", "", "S3 endpoint URL (e.g. http://127.0.0.1:7070)")
		c.fs.StringVar(&c.opts.Region, "region", "", "S3 region")
		c.fs.BoolVar(&c.opts.PathStyle, "path-style", false, "address S3 buckets as ENDPOINT/BUCKET")
	}
	return c.fs
}

// parse parses flags wherever they stand among the arguments, and checks
// the number of positional ones.
func (c *filesCmd) parse(args []string, want int, usage string) ([]string, bool) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, false
		}
		if args = c.fs.Args(); len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != want {
		fmt.Fprintf(c.stderr, "usage: sluice files %s\n", usage)
		return nil, false
	}
	return pos, true
}

func (c *filesCmd) fail(err error) int {
	msg := err.Error()
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	fmt.Fprintf(c.stderr, "files %s: %s\n", c.name, msg)
	return 1
}

// open opens the store a root argument names, saved or not.
func (c *filesCmd) open(ctx context.Context, arg string) (filestore.Store, error) {
	r, err := project.ResolveRoot(".", arg, c.opts)
	if err != nil {
		return nil, err
	}
	c.secrets = append(c.secrets, r.Options.Secrets()...)
	return filestore.Open(ctx, r.Root, r.Options)
}

func filesContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func (c *filesCmd) ls(args []string) int {
	c.flags("ls", true)
	pos, ok := c.parse(args, 1, "ls ROOT [--endpoint URL] [--region R] [--path-style]")
	if !ok {
		return 2
	}
	return c.withStore(pos[0], func(ctx context.Context, st filestore.Store) error {
		return c.list(ctx, st)
	})
}

func (c *filesCmd) list(ctx context.Context, st filestore.Store) error {
	l, err := filetable.New(st).List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tFORMAT\tFILES\tSIZE\tMODIFIED\tPARTITIONS")
	var problems []filetable.Summary
	for _, s := range l.Tables {
		format := string(s.Format)
		if s.Problem != nil {
			format = "(see below)"
			problems = append(problems, s)
		}
		if s.Folder {
			format += " folder"
		}
		mod := ""
		if !s.Modified.IsZero() {
			mod = s.Modified.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, format, s.Files, filesSize(s.Bytes), mod, strings.Join(s.PartitionKeys, ", "))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "(%s at %s", filesPlural(len(l.Tables), "table"), st)
	if l.Unknown > 0 {
		fmt.Fprintf(c.stdout, "; %s ignored for their extension, such as %s", filesPlural(l.Unknown, "file"), strings.Join(l.UnknownSample, ", "))
	}
	fmt.Fprintln(c.stdout, ")")
	for _, s := range problems {
		fmt.Fprintf(c.stdout, "%s: %v\n", s.Name, s.Problem)
	}
	return nil
}

// withStore runs fn with the store a root argument names, under a context
// that an interrupt cancels, and closes the store after it. It returns the
// command's exit status: 1, with the error, if the store does not open or
// fn fails.
func (c *filesCmd) withStore(rootArg string, fn func(ctx context.Context, st filestore.Store) error) int {
	ctx, stop := filesContext()
	defer stop()
	st, err := c.open(ctx, rootArg)
	if err != nil {
		return c.fail(err)
	}
	defer st.Close()
	if err := fn(ctx, st); err != nil {
		return c.fail(err)
	}
	return 0
}

// withTable is withStore for one table of the store.
func (c *filesCmd) withTable(rootArg, name string, fn func(ctx context.Context, t *filetable.Table) error) int {
	return c.withStore(rootArg, func(ctx context.Context, st filestore.Store) error {
		t, err := filetable.New(st).Table(ctx, name)
		if err != nil {
			return err
		}
		return fn(ctx, t)
	})
}

func (c *filesCmd) head(args []string) int {
	fs := c.flags("head", true)
	n := fs.Int("n", 10, "number of rows")
	format := fs.String("format", "table", "table, csv or jsonl")
	pos, ok := c.parse(args, 2, "head ROOT TABLE [-n 10] [--format table|csv|jsonl]")
	if !ok {
		return 2
	}
	switch *format {
	case "table", "csv", "jsonl":
	default:
		fmt.Fprintf(c.stderr, "files head: unknown format %q: use table, csv or jsonl\n", *format)
		return 2
	}
	if *n < 0 {
		fmt.Fprintf(c.stderr, "files head: -n %d: give a number of rows, 0 or more\n", *n)
		return 2
	}
	return c.withTable(pos[0], pos[1], func(ctx context.Context, t *filetable.Table) error {
		cols, rows, err := t.Head(ctx, *n)
		if err != nil {
			return err
		}
		return writeFileRows(c.stdout, *format, cols, rows)
	})
}

// writeFileRows writes rows as an aligned table, CSV or JSON Lines.
func writeFileRows(w io.Writer, format string, cols []filetable.Column, rows [][]any) error {
	switch format {
	case "jsonl":
		var b bytes.Buffer
		for _, r := range rows {
			b.Reset()
			b.WriteByte('{')
			for i, col := range cols {
				if i > 0 {
					b.WriteByte(',')
				}
				k, _ := json.Marshal(col.Name)
				b.Write(k)
				b.WriteByte(':')
				v, err := filesJSON(valueAt(r, i), col.Type)
				if err != nil {
					return fmt.Errorf("column %s: %w", col.Name, err)
				}
				b.Write(v)
			}
			b.WriteString("}\n")
			if _, err := w.Write(b.Bytes()); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		names := make([]string, len(cols))
		for i, col := range cols {
			names[i] = col.Name
		}
		cw.Write(names)
		line := make([]string, len(cols))
		for _, r := range rows {
			for i, col := range cols {
				line[i], _ = filesText(valueAt(r, i), col.Type)
			}
			cw.Write(line)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, col := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, col.Name)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, col := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			s, ok := filesText(valueAt(r, i), col.Type)
			if !ok {
				s = "NULL"
			}
			// A tab or line end would break the alignment.
			fmt.Fprint(tw, strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "(%s)\n", filesPlural(len(rows), "row"))
	return err
}

// valueAt is a row's value for column i: a row read before a later file
// added columns is shorter.
func valueAt(r []any, i int) any {
	if i < len(r) {
		return r[i]
	}
	return nil
}

// filesText writes a value as text by its column type; false for NULL.
func filesText(v any, t contract.Type) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case contract.DecimalText:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case time.Time:
		switch t {
		case contract.NaiveDate:
			return x.Format(time.DateOnly), true
		case contract.NaiveDateTime:
			return x.Format("2006-01-02 15:04:05.999999"), true
		}
		return x.UTC().Format("2006-01-02 15:04:05.999999Z07:00"), true
	case json.RawMessage:
		return string(x), true
	case []byte:
		if utf8.Valid(x) {
			return string(x), true
		}
		return fmt.Sprintf(`\x%x`, x), true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// filesJSON writes a value as JSON: decimals as exact numbers, dates as
// their text, JSON as itself.
func filesJSON(v any, t contract.Type) ([]byte, error) {
	switch x := v.(type) {
	case contract.DecimalText:
		return []byte(x), nil
	case json.RawMessage:
		if json.Valid(x) {
			return x, nil
		}
	case time.Time:
		s, _ := filesText(x, t)
		return json.Marshal(s)
	case float64:
		if x != x || x > 1e308 || x < -1e308 { // NaN and infinities have no JSON spelling
			return json.Marshal(strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	return json.Marshal(v)
}

func (c *filesCmd) schema(args []string) int {
	c.flags("schema", true)
	pos, ok := c.parse(args, 2, "schema ROOT TABLE")
	if !ok {
		return 2
	}
	return c.withTable(pos[0], pos[1], c.printSchema)
}

func (c *filesCmd) printSchema(ctx context.Context, t *filetable.Table) error {
	cols, err := t.Columns(ctx)
	if err != nil {
		return err
	}
	rows, known, err := t.Count(ctx)
	if err != nil {
		return err
	}
	shape := "file " + t.Files[0].Key
	if t.Folder {
		shape = fmt.Sprintf("folder %s/ of %s", t.Name, filesPlural(len(t.Files), "file"))
	}
	fmt.Fprintf(c.stdout, "table %s: %s, %s, %s\n", t.Name, t.Format, shape, filesSize(t.Bytes()))
	if known {
		fmt.Fprintf(c.stdout, "rows: %d\n", rows)
	} else {
		fmt.Fprintln(c.stdout, "rows: unknown (counting a CSV or JSON Lines table reads all of it)")
	}
	if t.Unknown > 0 {
		fmt.Fprintf(c.stdout, "ignored: %s with other extensions\n", filesPlural(t.Unknown, "file"))
	}
	from := "the first file"
	if t.Format != fileformat.Parquet {
		from += "'s first rows"
	}
	fmt.Fprintf(c.stdout, "columns (from %s):\n", from)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	nfile := len(cols) - len(t.PartitionKeys)
	for i, col := range cols {
		note := ""
		if i >= nfile {
			note = "\tpartition"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", col.Name, filesType(col), note)
	}
	tw.Flush()
	return nil
}

func filesType(c filetable.Column) string {
	switch c.Type {
	case contract.Decimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", c.Precision, c.Scale)
	case contract.Unspecified:
		return "unknown (only NULLs seen)"
	}
	return c.Type.String()
}

func (c *filesCmd) upload(args []string) int {
	fs := c.flags("upload", true)
	noAuto := fs.Bool("no-auto-partition", false, "refuse files of 1 GiB or more instead of splitting them")
	sizeMB := fs.Int("partition-size-mb", filetable.DefaultPartitionSizeMB, "size of the parts a large file is split into, 100 to 1000 (MiB)")
	pos, ok := c.parse(args, 3, "upload ROOT NAME PATH [--no-auto-partition] [--partition-size-mb 250]")
	if !ok {
		return 2
	}
	opts := filetable.UploadOptions{NoAutoPartition: *noAuto, PartitionSizeMB: *sizeMB}
	return c.withStore(pos[0], func(ctx context.Context, st filestore.Store) error {
		return c.uploadTo(ctx, st, pos[1], pos[2], opts)
	})
}

func (c *filesCmd) uploadTo(ctx context.Context, st filestore.Store, name, path string, opts filetable.UploadOptions) error {
	bar := newFilesBar(c.stderr, isTerminal(c.stderr), "uploading "+path)
	start := time.Now()
	opts.Progress = bar.update
	res, err := filetable.Upload(ctx, st, name, path, opts)
	bar.finish()
	if len(res.Renamed) > 0 {
		fmt.Fprintln(c.stdout, "renamed columns:")
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		for _, r := range res.Renamed {
			from, _ := json.Marshal(r.From)
			fmt.Fprintf(tw, "  %s\t-> %s\n", from, r.To)
		}
		tw.Flush()
	}
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	what := res.Keys[0]
	if res.Split {
		what = fmt.Sprintf("%s under %s/", filesPlural(len(res.Keys), "part"), res.Table)
	}
	fmt.Fprintf(c.stdout, "uploaded %s (%s) as table %s at %s: %s, in %.1fs (%s/s)\n",
		path, filesSize(res.Bytes), res.Table, st, what, secs, filesSize(int64(float64(res.Bytes)/max(secs, 1e-3))))
	if len(res.Removed) > 0 {
		fmt.Fprintf(c.stdout, "replaced the previous table (%s removed)\n", filesPlural(len(res.Removed), "object"))
	}
	return nil
}

func (c *filesCmd) rm(args []string) int {
	c.flags("rm", true)
	pos, ok := c.parse(args, 2, "rm ROOT NAME")
	if !ok {
		return 2
	}
	return c.withStore(pos[0], func(ctx context.Context, st filestore.Store) error {
		n, err := filetable.Remove(ctx, st, pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "removed table %s from %s (%s)\n", pos[1], st, filesPlural(n, "object"))
		return nil
	})
}

func (c *filesCmd) store(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, "usage: sluice files store add|ls|rm ...\n")
		return 2
	}
	switch args[0] {
	case "add":
		return c.storeAdd(args[1:])
	case "ls":
		c.flags("store ls", false)
		if _, ok := c.parse(args[1:], 0, "store ls"); !ok {
			return 2
		}
		f, err := project.Load(".")
		if err != nil {
			return c.fail(err)
		}
		if len(f.Stores) == 0 {
			fmt.Fprintf(c.stdout, "no saved stores (sluice files store add NAME ROOT saves one in %s)\n", project.FileName)
			return 0
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROOT\tENDPOINT\tREGION\tPATH STYLE\tCREDENTIALS")
		for _, name := range f.StoreNames() {
			s := f.Stores[name]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Root, s.Endpoint, s.Region, filesYes(s.PathStyle), filesCreds(s))
		}
		tw.Flush()
		return 0
	case "rm":
		c.flags("store rm", false)
		pos, ok := c.parse(args[1:], 1, "store rm NAME")
		if !ok {
			return 2
		}
		f, err := project.Load(".")
		if err == nil {
			err = f.RemoveStore(pos[0])
		}
		if err == nil {
			err = f.Save()
		}
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.stdout, "forgot store %s (the files in it are untouched)\n", pos[0])
		return 0
	}
	fmt.Fprintf(c.stderr, "files store: unknown command %q: use add, ls or rm\n", args[0])
	return 2
}

func (c *filesCmd) storeAdd(args []string) int {
	fs := c.flags("store add", true)
	accessEnv := fs.String("access-key-env", "", "the environment variable that holds the access key ID")
	secretEnv := fs.String("secret-key-env", "", "the environment variable that holds the secret access key")
	pos, ok := c.parse(args, 2, "store add NAME ROOT [--endpoint URL] [--region R] [--path-style] [--access-key-env VAR] [--secret-key-env VAR]")
	if !ok {
		return 2
	}
	s := project.Store{
		Root: pos[1], Endpoint: c.opts.Endpoint, Region: c.opts.Region, PathStyle: c.opts.PathStyle,
		AccessKeyEnv: *accessEnv, SecretKeyEnv: *secretEnv,
	}
	f, err := project.Load(".")
	if err == nil {
		err = f.AddStore(pos[0], s)
	}
	if err == nil {
		err = f.Save()
	}
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "saved store %s (%s) in %s; use it as @%s\n", pos[0], s.Root, project.FileName, pos[0])
	for _, e := range []string{s.AccessKeyEnv, s.SecretKeyEnv} {
		if e != "" && os.Getenv(e) == "" {
			fmt.Fprintf(c.stdout, "note: %s is not set in this shell; set it before using the store\n", e)
		}
	}
	return 0
}

// filesCreds tells where a saved store's credentials come from, by
// variable name only.
func filesCreds(s project.Store) string {
	if s.AccessKeyEnv == "" && s.SecretKeyEnv == "" {
		return "AWS environment"
	}
	var parts []string
	for _, e := range []string{s.AccessKeyEnv, s.SecretKeyEnv} {
		if e == "" {
			continue
		}
		state := "set"
		if os.Getenv(e) == "" {
			state = "not set"
		}
		parts = append(parts, fmt.Sprintf("$%s (%s)", e, state))
	}
	return strings.Join(parts, ", ")
}

func filesYes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func filesPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// filesSize writes a byte count for people: 1.5 GiB, 250 MiB, 12 bytes.
func filesSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

// filesBar draws an upload's progress on a terminal: bytes, rate and time
// left, redrawn at most five times a second.
type filesBar struct {
	w       io.Writer
	tty     bool
	label   string
	start   time.Time
	last    time.Time
	drawn   bool
	maxLine int
}

func newFilesBar(w io.Writer, tty bool, label string) *filesBar {
	return &filesBar{w: w, tty: tty, label: label, start: time.Now()}
}

func (b *filesBar) update(done, total int64) {
	if !b.tty {
		return
	}
	now := time.Now()
	if done < total && now.Sub(b.last) < 200*time.Millisecond {
		return
	}
	b.last = now
	b.draw(done, total, now)
}

func (b *filesBar) draw(done, total int64, now time.Time) {
	const width = 24
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * width)
	elapsed := now.Sub(b.start).Seconds()
	rate, eta := 0.0, "?"
	if elapsed > 0 && done > 0 {
		rate = float64(done) / elapsed
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s [%s%s] %3.0f%% %s / %s, %s/s, %s left",
		b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100,
		filesSize(done), filesSize(total), filesSize(int64(rate)), eta)
	pad := max(0, b.maxLine-len(line))
	b.maxLine = max(b.maxLine, len(line))
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
	b.drawn = true
}

// finish ends the bar's line; publishing, which follows the transfer, is
// told by the summary.
func (b *filesBar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
