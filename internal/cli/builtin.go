package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	filesconn "github.com/sluicedata/sluice/connectors/files"
	"github.com/sluicedata/sluice/connectors/mysql"
	"github.com/sluicedata/sluice/connectors/postgres"
	"github.com/sluicedata/sluice/internal/contract"
)

// builtin is a connector shipped with sluice, run in the sluice program
// itself: `sluice debug --connector files`.
type builtin struct {
	connector func() contract.Connector
	// secrets finds the secrets of a configuration that its key names do
	// not tell, such as the password in a MySQL DSN.
	secrets func(contract.Config) []string
	doc     string
}

var builtins = map[string]builtin{
	"files":    {filesconn.Connector, filesconn.Secrets, filesconn.Doc},
	"postgres": {postgres.Connector, postgres.Secrets, "Syncs tables of a PostgreSQL database (see the connectors/postgres package documentation)."},
	"mysql":    {mysql.Connector, mysql.Secrets, "Syncs tables of a MariaDB or MySQL database (see the connectors/mysql package documentation)."},
}

func builtinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// connectorFlag removes --connector NAME (or --connector=NAME) from args.
// ok is false when args do not name one.
func connectorFlag(args []string) (name string, rest []string, ok bool) {
	for i, a := range args {
		for _, f := range []string{"--connector", "-connector"} {
			if a == f && i+1 < len(args) {
				return args[i+1], append(slices.Clone(args[:i]), args[i+2:]...), true
			}
			if v, found := strings.CutPrefix(a, f+"="); found {
				return v, append(slices.Clone(args[:i]), args[i+1:]...), true
			}
		}
	}
	return "", args, false
}

// runBuiltin runs debug or run with a built-in connector.
func runBuiltin(cmd, name string, args []string, stdout, stderr io.Writer) int {
	b, ok := builtins[name]
	if !ok {
		fmt.Fprintf(stderr, "sluice %s: no built-in connector %q (built in: %s)\n", cmd, name, strings.Join(builtinNames(), ", "))
		return 2
	}
	if slices.Contains(args, "--help-connector") {
		fmt.Fprintln(stdout, b.doc)
		return 0
	}
	c := b.connector()
	if cmd == "run" {
		return runRunWith(c, b.secrets, args, stderr)
	}
	return runDebugWith(c, b.secrets, args, stdout, stderr)
}

// mainBuiltin handles `sluice debug|run --connector NAME ...`; ok is false
// when the arguments name no connector (the connector in the current folder
// runs then).
func mainBuiltin(args []string) (code int, ok bool) {
	if args[0] != "debug" && args[0] != "run" {
		return 0, false
	}
	name, rest, found := connectorFlag(args[1:])
	if !found {
		return 0, false
	}
	return runBuiltin(args[0], name, rest, os.Stdout, os.Stderr), true
}
