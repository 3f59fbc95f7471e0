// Package servecmd is the command line of the server: `sluice serve` and
// `sluice deploy`. It lives apart from internal/cli, which every connector
// program links, so that connectors do not carry the server (River, SQLite,
// the web page: about 12 MB).
package servecmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluicedata/sluice/server"
)

const serveUsage = `usage:
  sluice serve [--addr 127.0.0.1:8080] [--data DIR] [--db postgres://...] [--worker]
  sluice serve keys create [--name NAME]    create an API key (printed once)
  sluice serve keys list                    list the keys
  sluice serve keys revoke ID               revoke a key

The server keeps its metadata in DIR (SQLite) unless --db names a PostgreSQL
database; several "sluice serve --worker" processes can then share the work.
Secrets are sealed with SLUICE_SERVER_KEY, or a key file made in DIR.
`

type serveFlags struct {
	data string
	db   string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", envOr("SLUICE_DATA", defaultDataDir()), "data folder: embedded store, key file, binary cache (env SLUICE_DATA)")
	fs.StringVar(&f.db, "db", os.Getenv("SLUICE_DB"), "PostgreSQL URL of the metadata store, instead of the embedded one (env SLUICE_DB)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sluice")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "sluice")
	}
	return "sluice-data"
}

// Serve is `sluice serve`; SIGINT or SIGTERM stops it.
func Serve(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return runKeys(args[1:], stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stdout, stderr)
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage); fs.PrintDefaults() }
	var f serveFlags
	f.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the API and the web page")
	workerOnly := fs.Bool("worker", false, "run syncs only, without the API (needs --db: the API runs in another process)")
	concurrency := fs.Int("concurrency", 4, "syncs this process runs at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n\n%s", fs.Arg(0), serveUsage)
		return 2
	}
	if *workerOnly && f.db == "" {
		fmt.Fprintln(stderr, "serve --worker: a worker shares the work through PostgreSQL: give --db postgres://... (the same as the API server's)")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.Open(ctx, server.Config{DataDir: f.data, DB: f.db, Concurrency: *concurrency, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	defer srv.Close(context.Background())
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	if *workerOnly {
		fmt.Fprintf(stdout, "sluice serve --worker: running syncs (concurrency %d); Ctrl-C stops\n", *concurrency)
		<-ctx.Done()
		fmt.Fprintln(stdout, "stopping: running syncs get a grace period, then are stopped and retried later")
		return 0
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "serve: listen on %s: %v (another program uses it? pick another --addr)\n", *addr, err)
		return 1
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "sluice serve: http://%s (data %s)\n", ln.Addr(), f.data)
	if keys, err := srv.ListAPIKeys(ctx); err == nil && len(keys) == 0 {
		fmt.Fprintln(stdout, "no API key yet: create one with `sluice serve keys create --name NAME` (same --data/--db)")
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "stopping: running syncs get a grace period, then are stopped and retried later")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return 0
}

func runKeys(args []string, stdout, stderr io.Writer) int {
	usage := "usage: sluice serve keys create [--name NAME] | list | revoke ID   [--data DIR] [--db URL]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs)
	name := fs.String("name", "", "a name for the key, to tell keys apart (create)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	ctx := context.Background()
	open := func() (*server.Server, bool) {
		// Opening without Start: no worker, no data folder lock, so
		// this works beside a running server.
		srv, err := server.Open(ctx, server.Config{DataDir: f.data, DB: f.db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			fmt.Fprintf(stderr, "keys: %v\n", err)
			return nil, false
		}
		return srv, true
	}
	switch args[0] {
	case "create":
		if len(pos) > 0 {
			fmt.Fprintln(stderr, usage)
			return 2
		}
		srv, ok := open()
		if !ok {
			return 1
		}
		defer srv.Close(ctx)
		k, key, err := srv.CreateAPIKey(ctx, *name)
		if err != nil {
			fmt.Fprintf(stderr, "keys create: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, key)
		fmt.Fprintf(stderr, "API key %s created: it is shown only this once; send it as \"Authorization: Bearer KEY\"\n", k.ID)
		return 0
	case "list":
		srv, ok := open()
		if !ok {
			return 1
		}
		defer srv.Close(ctx)
		keys, err := srv.ListAPIKeys(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "keys list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST USED\tREVOKED")
		when := func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.UTC().Format(time.DateTime)
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.CreatedAt.UTC().Format(time.DateTime), when(k.LastUsedAt), when(k.RevokedAt))
		}
		tw.Flush()
		return 0
	case "revoke":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "usage: sluice serve keys revoke ID (`sluice serve keys list` shows the ids)")
			return 2
		}
		srv, ok := open()
		if !ok {
			return 1
		}
		defer srv.Close(ctx)
		if err := srv.RevokeAPIKey(ctx, pos[0]); err != nil {
			fmt.Fprintf(stderr, "keys revoke: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "API key %s revoked\n", pos[0])
		return 0
	}
	fmt.Fprintf(stderr, "keys: unknown command %q\n%s\n", args[0], usage)
	return 2
}

// parseInterspersed parses flags wherever they are among the arguments
// ("keys revoke ID --data DIR" as well as "keys revoke --data DIR ID") and
// returns the others.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
