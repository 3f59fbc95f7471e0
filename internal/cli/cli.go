// Package cli is sluice's command line, shared by the sluice program and by
// every connector program (through sdk.Main).
package cli

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination/duckdb"
	"github.com/sluicedata/sluice/internal/contract"
)

const connectorUsage = `usage: go run . COMMAND [flags]

commands:
  debug    sync into the local DuckDB warehouse (files/warehouse.db)
  run      sync into a production destination (--destination URL or $SLUICE_DESTINATION),
           state kept there, JSON logs on stderr
  reset    delete the local warehouse and state (asks first; --force skips)
  tables   list the warehouse's tables, columns and row counts
  sql      run a SQL query on the warehouse: sql "SELECT ..."
  help     show this

Run "go run . debug -h" for the debug flags.
`

// RunConnector is a connector program's command line.
func RunConnector(c contract.Connector, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, connectorUsage)
		return 2
	}
	switch args[0] {
	case "debug":
		return runDebug(c, args[1:], os.Stdout, os.Stderr)
	case "run":
		return runRun(c, args[1:], os.Stderr)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, connectorUsage)
		return 0
	case "read", "write", "partitions", "count", "describe":
		return notDataset(args[0], os.Stderr)
	}
	if code, ok := runLocal(args, os.Stdin, os.Stdout, os.Stderr); ok {
		return code
	}
	fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", args[0], connectorUsage)
	return 2
}

const sluiceUsage = `usage: sluice COMMAND [flags]

commands:
  init NAME [--template T]   create a connector project from an example
  debug [flags]              run the connector in the current folder (go run . debug)
  debug --connector NAME     run a built-in connector: files, postgres, mysql
                             (--help-connector prints its configuration)
  run --destination URL      sync the connector in the current folder into a production
                             destination, state kept there (go run . run)
  read, write, partitions, count, describe
                             run a dataset connector's command in the current folder (go run . read ...)
  reset [--force]            delete the local warehouse and state
  tables                     list the warehouse's tables, columns and row counts
  sql "SELECT ..."           run a SQL query on the warehouse
  files ls|head|schema|upload|rm|store
                             file tables in a folder or S3 bucket (sluice files help)
  serve [--addr A] [--data DIR] [--db URL] [--worker]
                             run the server: scheduled syncs, REST API, web page (sluice serve -h)
  serve keys create|list|revoke
                             manage the server's API keys
  deploy --server URL --api-key KEY --connection NAME --destination NAME [--configuration FILE]
                             build the connector here and upload it to a server (sluice deploy -h)
  help                       show this
`

// Main is the sluice program's command line.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, sluiceUsage)
		return 2
	}
	if code, ok := mainBuiltin(args); ok {
		return code
	}
	switch args[0] {
	case "debug", "run", "read", "write", "partitions", "count", "describe":
		return goRun(args)
	case "init":
		return runInit(args[1:], os.Stdout, os.Stderr)
	case "files":
		return runFiles(args[1:], os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, sluiceUsage)
		return 0
	}
	if code, ok := runLocal(args, os.Stdin, os.Stdout, os.Stderr); ok {
		return code
	}
	fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", args[0], sluiceUsage)
	return 2
}

// BuildTags are the build tags sluice builds connectors with (`sluice
// debug`, `run`, `deploy`): duckdb_arrow gives duckdb-go's Arrow scan,
// through which a fresh CSV file loads (destination/duckdb/csvarrow.go). A
// connector built without it works the same, its CSV loads slower.
const BuildTags = "duckdb_arrow"

// goRun runs the connector in the current folder with the same arguments:
// the sluice program cannot link a user's connector, so it has Go build it.
func goRun(args []string) int {
	if _, err := os.Stat("go.mod"); err != nil {
		if _, err := os.Stat("main.go"); err != nil {
			fmt.Fprintf(os.Stderr, "sluice %s: no connector here (no main.go): run it in a connector folder, or create one with `sluice init NAME`\n", args[0])
			return 2
		}
	}
	cmd := exec.Command("go", append([]string{"run", "-tags", BuildTags, "."}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "sluice %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// runLocal runs the commands that work on the local files without the
// connector. ok is false for an unknown command.
func runLocal(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	switch args[0] {
	case "reset":
		return runReset(args[1:], stdin, stdout, stderr), true
	case "sql":
		return runSQL(args[1:], stdout, stderr), true
	case "tables":
		return runTables(args[1:], stdout, stderr), true
	}
	return 0, false
}

func warehousePath(fs *flag.FlagSet) *string {
	return fs.String("warehouse", filepath.Join(FilesDir, WarehouseFile), "the DuckDB warehouse file")
}

func runReset(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "do not ask for confirmation")
	wh := warehousePath(fs)
	state := fs.String("state", filepath.Join(FilesDir, StateFile), "the state file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := []string{*wh, *wh + ".wal", *state}
	var present []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			present = append(present, f)
		}
	}
	if len(present) == 0 {
		fmt.Fprintln(stdout, "nothing to reset: no warehouse or state file")
		return 0
	}
	if !*force {
		if !isTerminal(stdin) {
			fmt.Fprintln(stderr, "reset: this deletes "+strings.Join(present, ", ")+"; pass --force to confirm without a terminal")
			return 2
		}
		fmt.Fprintf(stdout, "This deletes %s. Continue? [y/N] ", strings.Join(present, ", "))
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "reset cancelled")
			return 1
		}
	}
	for _, f := range present {
		if err := os.Remove(f); err != nil {
			fmt.Fprintf(stderr, "reset: %v\n", err)
			return 1
		}
	}
	fmt.Fprintln(stdout, "reset: deleted "+strings.Join(present, ", "))
	return 0
}

func openWarehouse(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no warehouse at %s: run `sluice debug` first", path)
	}
	return duckdb.OpenDB(ctx, path, duckdb.Settings{})
}

func runSQL(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sql", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wh := warehousePath(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, `usage: sql [--warehouse FILE] "SELECT ..."`)
		return 2
	}
	ctx := context.Background()
	db, err := openWarehouse(ctx, *wh)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer db.Close()
	if err := printQuery(ctx, db, stdout, fs.Arg(0)); err != nil {
		fmt.Fprintf(stderr, "sql: %v\n", err)
		return 1
	}
	return 0
}

// printQuery prints a result as an aligned table.
func printQuery(ctx context.Context, db *sql.DB, w io.Writer, q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = formatCell(v, types[i].DatabaseTypeName())
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "(%d rows)\n", n)
	return nil
}

// formatCell renders a value of the given DuckDB type as the warehouse holds
// it: a DATE without a time, a DECIMAL with all its scale, JSON as JSON.
func formatCell(v any, dbType string) string {
	if v != nil && dbType == "JSON" {
		// The driver decodes JSON into Go values; write them back as JSON.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err == nil {
			return strings.TrimSuffix(b.String(), "\n")
		}
	}
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("\\x%x", x)
	case string:
		return strings.ReplaceAll(x, "\n", `\n`)
	case duckdbdriver.Decimal:
		return formatDecimal(x)
	case time.Time:
		switch dbType {
		case "DATE":
			return x.Format(time.DateOnly)
		case "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS":
			return x.Format("2006-01-02 15:04:05.999999999")
		case "TIME":
			return x.Format("15:04:05.999999")
		}
		return x.UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	}
	return fmt.Sprint(v)
}

// formatDecimal writes d with exactly its scale's digits after the point,
// so that DECIMAL(10,2) 12.50 shows as 12.50, not 12.5.
func formatDecimal(d duckdbdriver.Decimal) string {
	if d.Value == nil {
		return "NULL"
	}
	digits := new(big.Int).Abs(d.Value).String()
	sign := ""
	if d.Value.Sign() < 0 {
		sign = "-"
	}
	scale := int(d.Scale)
	if scale == 0 {
		return sign + digits
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
}

func runTables(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tables", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wh := warehousePath(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	db, err := openWarehouse(ctx, *wh)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer db.Close()
	keys, err := keysQuery(ctx, db)
	if err == nil {
		err = printQuery(ctx, db, stdout, `SELECT t.schema_name AS "schema", t.table_name AS "table", k.primary_key AS "key", t.estimated_size AS "rows",
		(SELECT string_agg(c.column_name || ' ' || c.data_type, ', ' ORDER BY c.column_index) FROM duckdb_columns() c
		 WHERE c.schema_name = t.schema_name AND c.table_name = t.table_name) AS "columns"
		FROM duckdb_tables() t LEFT JOIN (`+keys+`) k ON k.schema_name = t.schema_name AND k.table_name = t.table_name
		WHERE NOT t.temporary ORDER BY 1, 2`)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tables: %v\n", err)
		return 1
	}
	return 0
}

// keysQuery lists every sluice table's key columns. Each connector schema
// keeps them in its own _sluice_tables (tables carry no PRIMARY KEY).
func keysQuery(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT schema_name FROM duckdb_tables() WHERE table_name = '_sluice_tables' ORDER BY 1`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	q := `SELECT NULL::VARCHAR AS schema_name, NULL::VARCHAR AS table_name, NULL::VARCHAR AS primary_key WHERE false`
	for rows.Next() {
		var schema string
		if err := rows.Scan(&schema); err != nil {
			return "", err
		}
		q += ` UNION ALL SELECT '` + strings.ReplaceAll(schema, `'`, `''`) + `', table_name, primary_key FROM "` + strings.ReplaceAll(schema, `"`, `""`) + `"._sluice_tables`
	}
	return q, rows.Err()
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// The null device is a character device too, but no one answers there:
	// it is what a program started without input (cron, CI, exec) reads.
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return true
}
