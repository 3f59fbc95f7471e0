// Command dataset-csv is a read-write dataset connector backed by a folder
// of CSV files, one per day: the partition 2024-03-01 is the file
// 2024-03-01.csv. Every file shares one header, which is the dataset's
// schema (all STRING: CSV has no types); an empty folder takes the columns
// of the first file written. An empty field reads as NULL.
//
//	echo '{"folder": "data"}' > configuration.json
//	go run . write --partition 2024-03-01 sales.csv
//	go run . write --partition 2024-03-01 --append more.csv
//	go run . read --format csv
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

type folder struct{}

var partitioning = sdk.Partitioning{{Name: "day", Period: sdk.Day}}

func (folder) Info() sdk.DatasetInfo {
	return sdk.DatasetInfo{
		Name: "csv_folder",
		Params: sdk.Params{
			{Name: "folder", Label: "Folder of CSV files", Mandatory: true},
			{Name: "delimiter", Label: "Field delimiter", Type: sdk.ParamSelect, Choices: []string{"comma", "semicolon", "tab"}, Default: "comma"},
		},
		Partitioning: partitioning,
		Append:       true,
	}
}

var delimiters = map[string]rune{"comma": ',', "semicolon": ';', "tab": '\t'}

func file(cfg sdk.Config, p sdk.Partition) string {
	return filepath.Join(cfg["folder"], p.ID+".csv")
}

// days lists the partitions: the files named after a day, in order. Other
// files, such as a writer's temporary ones, are not part of the dataset.
func days(cfg sdk.Config) ([]sdk.Partition, error) {
	names, err := filepath.Glob(filepath.Join(cfg["folder"], "*.csv"))
	if err != nil {
		return nil, err
	}
	var out []sdk.Partition
	for _, n := range names {
		if p, err := partitioning.Parse(strings.TrimSuffix(filepath.Base(n), ".csv")); err == nil && !p.All() {
			out = append(out, p)
		}
	}
	return out, nil // Glob sorts, and day ids sort as days do
}

func open(cfg sdk.Config, p sdk.Partition) (*os.File, *csv.Reader, []string, error) {
	f, err := os.Open(file(cfg, p))
	if err != nil {
		return nil, nil, nil, err
	}
	r := csv.NewReader(f)
	r.Comma = delimiters[cfg["delimiter"]]
	header, err := r.Read()
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("%s: header: %w", f.Name(), err)
	}
	return f, r, header, nil
}

func (folder) ReadSchema(ctx context.Context, cfg sdk.Config) ([]sdk.Column, error) {
	ps, err := days(cfg)
	if err != nil || len(ps) == 0 {
		return nil, err // no file yet: no schema
	}
	f, _, header, err := open(cfg, ps[0])
	if err != nil {
		return nil, err
	}
	f.Close()
	cols := make([]sdk.Column, len(header))
	for i, h := range header {
		cols[i] = sdk.Column{Name: h, Type: sdk.String}
	}
	return cols, nil
}

// each calls fn for every record of the partition, or of every partition.
func each(cfg sdk.Config, p sdk.Partition, fn func(header, rec []string) error) error {
	ps := []sdk.Partition{p}
	if p.All() {
		var err error
		if ps, err = days(cfg); err != nil {
			return err
		}
	}
	for _, p := range ps {
		f, r, header, err := open(cfg, p)
		if err != nil {
			return err
		}
		for err == nil {
			var rec []string
			if rec, err = r.Read(); err == nil {
				err = fn(header, rec)
			}
		}
		f.Close()
		if err != io.EOF {
			return err
		}
	}
	return nil
}

func (folder) ReadRows(ctx context.Context, req sdk.ReadRequest, emit func(sdk.Row) error) error {
	return each(req.Config, req.Partition, func(header, rec []string) error {
		row := make(sdk.Row, len(rec))
		for i, v := range rec {
			if v == "" {
				row[header[i]] = nil
			} else {
				row[header[i]] = v
			}
		}
		return emit(row)
	})
}

func (folder) CountRecords(ctx context.Context, cfg sdk.Config, p sdk.Partition) (int64, error) {
	var n int64
	err := each(cfg, p, func(_, _ []string) error { n++; return nil })
	if p.All() || !errors.Is(err, os.ErrNotExist) {
		return n, err
	}
	return 0, nil // a day without a file has no records
}

func (folder) ListPartitions(ctx context.Context, cfg sdk.Config) ([]string, error) {
	ps, err := days(cfg)
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids, err
}

func (folder) PartitionExists(ctx context.Context, cfg sdk.Config, p sdk.Partition) (bool, error) {
	_, err := os.Stat(file(cfg, p))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// writer stages the new file next to the old one and renames it over the
// old one in Close: until then readers see the previous rows, and a failed
// write leaves them in place.
type writer struct {
	tmp     *os.File
	csv     *csv.Writer
	target  string
	columns []string
	rec     []string
}

func (folder) OpenWriter(ctx context.Context, req sdk.WriteRequest) (sdk.Writer, error) {
	if err := os.MkdirAll(req.Config["folder"], 0o755); err != nil {
		return nil, err
	}
	w := &writer{target: file(req.Config, req.Partition)}
	for _, c := range req.Schema {
		w.columns = append(w.columns, c.Name)
	}
	w.rec = make([]string, len(w.columns))
	var err error
	if w.tmp, err = os.CreateTemp(req.Config["folder"], "."+req.Partition.ID+".csv.tmp-*"); err != nil {
		return nil, err
	}
	// CreateTemp makes the file private; the data files are not.
	if err := w.tmp.Chmod(0o644); err != nil {
		w.Abort(ctx)
		return nil, err
	}
	w.csv = csv.NewWriter(w.tmp)
	w.csv.Comma = delimiters[req.Config["delimiter"]]
	if req.Mode == sdk.Append {
		err = w.copy(req)
	} else {
		err = w.csv.Write(w.columns)
	}
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	return w, nil
}

// copy starts an appending write with the partition's current rows.
func (w *writer) copy(req sdk.WriteRequest) error {
	old, r, header, err := open(req.Config, req.Partition)
	if errors.Is(err, os.ErrNotExist) {
		return w.csv.Write(w.columns)
	}
	if err != nil {
		return err
	}
	defer old.Close()
	if !slices.Equal(header, w.columns) {
		return fmt.Errorf("%s has the columns %s, not %s", w.target, strings.Join(header, ","), strings.Join(w.columns, ","))
	}
	if err := w.csv.Write(header); err != nil {
		return err
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.csv.Write(rec); err != nil {
			return err
		}
	}
}

func (w *writer) Write(ctx context.Context, row sdk.WriteRow) error {
	for k := range row.Extra {
		// One header for every file: a new column would make this file
		// unlike the others, and dropping it would lose data.
		return fmt.Errorf("column %q is not one of the folder's columns (%s)", k, strings.Join(w.columns, ", "))
	}
	for i, c := range w.columns {
		w.rec[i] = text(row.Values[c])
	}
	return w.csv.Write(w.rec)
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case json.Number, bool, int, int64, float64, sdk.Decimal:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (w *writer) Close(ctx context.Context) error {
	w.csv.Flush()
	err := w.csv.Error()
	if err == nil {
		err = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.target)
	}
	if err != nil {
		os.Remove(w.tmp.Name())
	}
	return err
}

func (w *writer) Abort(ctx context.Context) error {
	w.tmp.Close()
	return os.Remove(w.tmp.Name())
}

func main() { sdk.MainDataset(folder{}) }
