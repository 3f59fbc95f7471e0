package main

// The connector is exercised twice: through the Go API (sdk.OpenDataset),
// as a connector's own unit tests would, and as a built program, as a user
// runs it.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/examples/internal/progtest"
	"github.com/sluicedata/sluice/sdk"
)

var program string // the built connector

func TestMain(m *testing.M) { progtest.Main(m, "dataset-readings", &program) }

func collect(rows *[]sdk.Row) func(sdk.Row) error {
	return func(r sdk.Row) error { *rows = append(*rows, r); return nil }
}

func TestReadingsGoAPI(t *testing.T) {
	ctx := context.Background()
	h, err := sdk.OpenDataset(readings{}, sdk.Config{"days": "2", "stations": "PAR,ROM"})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := h.Partitions(ctx)
	var ids []string
	for _, p := range parts {
		ids = append(ids, p.ID)
	}
	if want := []string{"2024-03-01|PAR", "2024-03-01|ROM", "2024-03-02|PAR", "2024-03-02|ROM"}; err != nil || !reflect.DeepEqual(ids, want) {
		t.Errorf("Partitions = %q, %v; want %q", ids, err, want)
	}
	if n, err := h.Count(ctx, ""); n != 96 || err != nil {
		t.Errorf("Count = %d, %v; want 96", n, err)
	}
	if n, err := h.Count(ctx, "2024-03-02|ROM"); n != 24 || err != nil {
		t.Errorf("Count of a partition = %d, %v; want 24", n, err)
	}

	// Rome's name and base temperature come from the embedded resource:
	// 13 °C, +2 on day 62 of the year, -7.5 at midnight.
	var rows []sdk.Row
	res, err := h.Read(ctx, sdk.ReadOptions{Partition: "2024-03-02|ROM", Limit: 3}, collect(&rows))
	want := []sdk.Row{
		{"time": time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC), "station": "ROM", "station_name": "Rome", "temperature": 7.5},
		{"time": time.Date(2024, 3, 2, 1, 0, 0, 0, time.UTC), "station": "ROM", "station_name": "Rome", "temperature": 8.0},
		{"time": time.Date(2024, 3, 2, 2, 0, 0, 0, time.UTC), "station": "ROM", "station_name": "Rome", "temperature": 8.5},
	}
	if err != nil || res.Rows != 3 || !reflect.DeepEqual(rows, want) {
		t.Errorf("Read = %v, %+v, %v\nwant %v", rows, res, err, want)
	}
	rows = nil
	if _, err := h.Read(ctx, sdk.ReadOptions{}, collect(&rows)); err != nil || len(rows) != 96 || rows[95]["station"] != "ROM" {
		t.Errorf("Read all: %d rows, %v", len(rows), err)
	}

	for id, want := range map[string]bool{"2024-03-02|ROM": true, "2024-03-03|ROM": false, "2024-02-29|PAR": false, "2024-03-01|BER": false} {
		if ok, err := h.PartitionExists(ctx, id); ok != want || err != nil {
			t.Errorf("PartitionExists(%s) = %v, %v; want %v", id, ok, err, want)
		}
	}
	if _, err := h.Read(ctx, sdk.ReadOptions{Partition: "2024-03-02"}, collect(&rows)); !errors.Is(err, sdk.ErrBadPartitionID) {
		t.Errorf("malformed id: %v", err)
	}
	if _, err := h.Read(ctx, sdk.ReadOptions{Partition: "2024-03-09|ROM"}, collect(&rows)); err == nil || !strings.Contains(err.Error(), "no partition 2024-03-09|ROM") {
		t.Errorf("missing partition: %v", err)
	}
	if _, err := h.Write(ctx, sdk.WriteOptions{Partition: "2024-03-02|ROM"}, nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Write on a read-only dataset: %v", err)
	}

	h, err = sdk.OpenDataset(readings{}, sdk.Config{"unit": "fahrenheit", "stations": "PAR"})
	if err != nil {
		t.Fatal(err)
	}
	rows = nil
	if _, err := h.Read(ctx, sdk.ReadOptions{Partition: "2024-03-01|PAR"}, collect(&rows)); err != nil || rows[15]["temperature"] != 50.0 {
		t.Errorf("fahrenheit at 15:00 = %v, %v; want 50 (10 °C)", rows[15]["temperature"], err)
	}

	for cfg, want := range map[string]string{
		"days":     `parameter "days" (Number of days): "many" is not an integer`,
		"unit":     `parameter "unit" (Unit): "kelvin" is not one of the choices: celsius, fahrenheit`,
		"stations": `parameter "stations" (Stations): "OSL" is not one of the choices: BER, PAR, ROM`,
	} {
		bad := sdk.Config{"days": "many", "unit": "kelvin", "stations": "BER,OSL"}
		_, err := sdk.OpenDataset(readings{}, sdk.Config{cfg: bad[cfg]})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad %s: %v", cfg, err)
		}
	}
}

type result = progtest.Result

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return progtest.Run(t, program, dir, args...)
}

func ok(t *testing.T, r result, args string) {
	t.Helper()
	if r.Code != 0 {
		t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.Code, r.Stdout, r.Stderr)
	}
}

func TestReadingsCommandLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(`{"days": "2", "stations": "PAR"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "read", "--partition", "2024-03-01|PAR", "--limit", "3", "--format", "csv")
	ok(t, r, "read")
	want := "time,station,station_name,temperature\n" +
		"2024-03-01T00:00:00Z,PAR,Paris,2.5\n" +
		"2024-03-01T01:00:00Z,PAR,Paris,3\n" +
		"2024-03-01T02:00:00Z,PAR,Paris,3.5\n"
	if r.Stdout != want {
		t.Errorf("read:\n%s\nwant:\n%s", r.Stdout, want)
	}
	if r := run(t, dir, "partitions"); r.Stdout != "2024-03-01|PAR\n2024-03-02|PAR\n" {
		t.Errorf("partitions: exit %d, stdout:\n%s", r.Code, r.Stdout)
	}
	if r := run(t, dir, "count"); r.Stdout != "48\n" {
		t.Errorf("count: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if r := run(t, dir, "count", "--partition", "2024-03-02|PAR"); r.Stdout != "24\n" {
		t.Errorf("count --partition: exit %d, stdout %q", r.Code, r.Stdout)
	}

	r = run(t, dir, "read", "-o", "all.jsonl")
	ok(t, r, "read -o")
	b, err := os.ReadFile(filepath.Join(dir, "all.jsonl"))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if err != nil || len(lines) != 48 || lines[47] != `{"station":"PAR","station_name":"Paris","temperature":7,"time":"2024-03-02T23:00:00Z"}` {
		t.Errorf("read -o all.jsonl: %d lines, last %q, %v", len(lines), lines[len(lines)-1], err)
	}
	if !strings.Contains(r.Stderr, "read 48 rows into all.jsonl") {
		t.Errorf("read -o: stderr %q", r.Stderr)
	}

	r = run(t, dir, "describe")
	ok(t, r, "describe")
	for _, want := range []string{
		"capabilities: read rows, read schema, list partitions, partition exists, records count\n",
		"partitioning: day (DAY) | station (discrete); ids like 2024-03-01|<station>\n",
		"  stations  Stations                multi-select (BER, PAR, ROM)  no         BER,PAR,ROM  PAR\n",
		"resources:\n  resources/stations.csv (60 bytes)\n",
		"  temperature   DOUBLE\n",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, r.Stdout)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"read", "--partition", "2024-3-1|PAR"}, `read: malformed partition id "2024-3-1|PAR": dimension "day" (DAY) wants YYYY-MM-DD, got "2024-3-1"; for example "2024-03-01|<station>"`},
		{[]string{"read", "--partition", "PAR|2024-03-01"}, `dimension "day" (DAY) wants YYYY-MM-DD, got "PAR"`},
		{[]string{"write", "--partition", "2024-03-01|PAR", "in.csv"}, `write: dataset "readings" has no "write rows" capability: the connector does not implement sdk.RowWriter`},
		{[]string{"read", "--configuration", "nope.json"}, "configuration: open nope.json"},
	} {
		r := run(t, dir, tc.args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant %q", tc.args, r.Code, r.Stderr, tc.want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(`{"unit": "kelvin"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, "read"); r.Code != 1 || !strings.Contains(r.Stderr, `parameter "unit" (Unit): "kelvin" is not one of the choices`) {
		t.Errorf("bad configuration: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
}

// debug syncs the dataset into the warehouse, one checkpoint for its two
// small partitions, and --incremental then finds nothing new.
func TestReadingsDebug(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "configuration.json"), []byte(`{"days": "2", "stations": "PAR"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "debug")
	ok(t, r, "debug")
	if !strings.Contains(r.Stdout, "readings                               48") {
		t.Errorf("debug summary:\n%s", r.Stdout)
	}
	r = run(t, dir, "sql", `SELECT _partition || ' ' || count(*) || ' ' || min(station) || ' ' || strftime(min("day"), '%Y-%m-%d') FROM readings.readings GROUP BY _partition ORDER BY 1`)
	ok(t, r, "sql")
	for _, want := range []string{"2024-03-01|PAR 24 PAR 2024-03-01", "2024-03-02|PAR 24 PAR 2024-03-02"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("warehouse rows: missing %q in\n%s", want, r.Stdout)
		}
	}
	state, err := os.ReadFile(filepath.Join(dir, "files", "state.json"))
	if err != nil || !strings.Contains(string(state), `"2024-03-02|PAR":24`) {
		t.Errorf("state %s (%v)", state, err)
	}
	r = run(t, dir, "debug", "--incremental")
	ok(t, r, "debug --incremental")
	if !strings.Contains(r.Stdout, "checkpoints: 0") {
		t.Errorf("--incremental synced again:\n%s", r.Stdout)
	}
}
