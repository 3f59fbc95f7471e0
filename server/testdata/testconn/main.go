// Command testconn is the server tests' connector: a real SDK program whose
// behaviour its configuration chooses.
//
//	rows        rows upserted into "items" (ids 1..rows), default 3
//	sleep_ms    pause before the checkpoint, to make a run last
//	lock_file   created exclusively at start, removed at the end: a second
//	            run of the same connection at the same time finds it, and
//	            writes lock_file.overlap
//	fail_file   if this file does not exist, create it and fail as
//	            fail_mode says: exit (status 3), panic, error, or hang
//	            (write the process id to fail_file.pid, then wait to be
//	            killed); the next run then succeeds
//	api_token   a secret; the connector logs it, and the server must mask it
//	log_lines   extra log lines
//
// Each run also upserts one row into "events" keyed by the run number it
// keeps in its state: {"items": {"rows": N}, "events": {"run": n}}.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	if lf := cfg["lock_file"]; lf != "" {
		f, err := os.OpenFile(lf, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			os.WriteFile(lf+".overlap", []byte("two runs at once\n"), 0o600)
			return fmt.Errorf("another run holds %s", lf)
		}
		f.Close()
		defer os.Remove(lf)
	}
	if ff := cfg["fail_file"]; ff != "" {
		if _, err := os.Stat(ff); errors.Is(err, os.ErrNotExist) {
			os.WriteFile(ff, []byte("failed once\n"), 0o600)
			switch cfg["fail_mode"] {
			case "exit":
				sdk.Severe("testconn: exiting with status 3", nil)
				os.Exit(3)
			case "panic":
				panic("testconn: deliberate panic")
			case "hang":
				os.WriteFile(ff+".pid", []byte(strconv.Itoa(os.Getpid())), 0o600)
				select {}
			default:
				return errors.New("testconn: deliberate error")
			}
		}
	}
	if tok := cfg["api_token"]; tok != "" {
		sdk.Info("testconn: using token " + tok)
	}
	n, _ := strconv.Atoi(cfg["log_lines"])
	for i := range n {
		sdk.Info("testconn: line", "i", i)
	}
	rows := 3
	if v := cfg["rows"]; v != "" {
		rows, _ = strconv.Atoi(v)
	}
	run := 1
	if ev, ok := state["events"].(map[string]any); ok {
		if r, ok := ev["run"].(interface{ Int64() (int64, error) }); ok {
			x, _ := r.Int64()
			run = int(x) + 1
		} else if f, ok := ev["run"].(float64); ok {
			run = int(f) + 1
		}
	}
	for i := 1; i <= rows; i++ {
		if err := ops.Upsert("items", map[string]any{"id": i, "value": fmt.Sprintf("v%d", i)}); err != nil {
			return err
		}
	}
	if err := ops.Upsert("events", map[string]any{"run": run, "at": time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return err
	}
	if ms, _ := strconv.Atoi(cfg["sleep_ms"]); ms > 0 {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ops.Checkpoint(map[string]any{"items": map[string]any{"rows": rows}, "events": map[string]any{"run": run}})
}

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	return []sdk.Table{
		{Name: "items", PrimaryKey: []string{"id"}},
		{Name: "events", PrimaryKey: []string{"run"}},
	}, nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "testconn", Update: update, Schema: schema})
}
