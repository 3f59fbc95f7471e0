package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sluicedata/sluice/internal/contract"
)

// Columns a dataset's warehouse table gets besides the dataset's own: the
// partition id and the row's position in its partition, which together are
// the table's key.
const (
	partitionColumn = "_partition"
	rowColumn       = "_row"
)

// DatasetConnector turns a dataset into a sync connector, written against
// the same Ops as any other: each partition is read, its rows upserted by
// (partition, position), the rows its last sync had beyond the new count
// deleted, and a checkpoint taken at a partition boundary, so each
// partition is replaced atomically. The state keeps each partition's row count:
// {"partitions": {"2024-03-01|BER": 24}}. only limits the sync to one
// partition; incremental skips the partitions the state has seen.
func DatasetConnector(d contract.Dataset, only string, incremental bool) contract.Connector {
	name := d.Info().Name
	return contract.Connector{
		Name: name,
		Schema: func(ctx context.Context, cfg contract.Config) ([]contract.Table, error) {
			h, err := contract.OpenDataset(d, cfg)
			if err != nil {
				return nil, err
			}
			cols := []contract.Column{{Name: partitionColumn, Type: contract.String}, {Name: rowColumn, Type: contract.Long}}
			if _, ok := d.(contract.SchemaReader); ok {
				declared, inferred, err := h.Schema(ctx)
				if err != nil {
					return nil, err
				}
				if !inferred {
					cols = append(cols, declared...)
					cols = withDimensions(cols, d.Info().Partitioning)
				}
			}
			return []contract.Table{{Name: name, PrimaryKey: []string{partitionColumn, rowColumn}, Columns: cols}}, nil
		},
		Update: func(ctx context.Context, cfg contract.Config, state contract.State, ops contract.Ops) error {
			h, err := contract.OpenDataset(d, cfg)
			if err != nil {
				return err
			}
			parts, err := datasetPartitions(ctx, h, only)
			if err != nil {
				return err
			}
			counts, err := partitionCounts(state)
			if err != nil {
				return err
			}
			dims := h.Info().Partitioning
			// One map, sized once and refilled per row: the engine reads a
			// row before Upsert returns, and adding keys to the
			// connector's own map would grow it on every row.
			out := make(map[string]any, 16)
			pending, dirty := 0, false // rows since the last checkpoint
			for _, p := range parts {
				if _, seen := counts[p.ID]; incremental && seen {
					continue
				}
				var n int64
				_, err := h.Read(ctx, contract.ReadOptions{Partition: p.ID}, func(row contract.Row) error {
					clear(out)
					for k, v := range row {
						out[k] = v
					}
					out[partitionColumn], out[rowColumn] = p.ID, n
					for i, dim := range dims {
						if _, ok := row[dim.Name]; !ok && !p.All() {
							out[dim.Name] = p.Values[i]
						}
					}
					n++
					return ops.Upsert(name, out)
				})
				if err != nil {
					return fmt.Errorf("partition %q: %w", p.ID, err)
				}
				for i := n; i < counts[p.ID]; i++ {
					if err := ops.Delete(name, map[string]any{partitionColumn: p.ID, rowColumn: i}); err != nil {
						return err
					}
				}
				counts[p.ID], dirty = n, true
				// A checkpoint only ever falls between partitions, so each
				// is replaced atomically; small partitions share one, as a
				// commit costs DuckDB about as much as 50,000 rows.
				if pending += int(n); pending >= checkpointRows {
					if err := ops.Checkpoint(map[string]any{"partitions": counts}); err != nil {
						return err
					}
					pending, dirty = 0, false
				}
			}
			if dirty {
				return ops.Checkpoint(map[string]any{"partitions": counts})
			}
			return nil
		},
	}
}

// withDimensions adds a column for each partition dimension that a
// declared schema lacks: rows get the partition's value there, a time at
// the start of its period or the discrete value. Without a declared schema
// the type is inferred from those values.
func withDimensions(cols []contract.Column, dims contract.Partitioning) []contract.Column {
	for _, dim := range dims {
		if slices.ContainsFunc(cols, func(c contract.Column) bool { return c.Name == dim.Name }) {
			continue
		}
		t := contract.UTCDateTime
		if dim.Period == contract.Discrete {
			t = contract.String
		}
		cols = append(cols, contract.Column{Name: dim.Name, Type: t})
	}
	return cols
}

// checkpointRows is how many rows a dataset sync reads, at least, between
// two checkpoints.
const checkpointRows = 500_000

// datasetPartitions lists what a sync reads: the one partition asked for,
// the whole dataset when it is not partitioned, else every partition.
func datasetPartitions(ctx context.Context, h *contract.DatasetHandle, only string) ([]contract.Partition, error) {
	dims := h.Info().Partitioning
	if only != "" || len(dims) == 0 {
		p, err := dims.Parse(only)
		if err != nil {
			return nil, err
		}
		return []contract.Partition{p}, nil
	}
	parts, err := h.Partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (or sync one partition with --partition ID)", err)
	}
	slices.SortFunc(parts, func(a, b contract.Partition) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return parts, nil
}

// runDatasetDebug is debug for a dataset connector: the flags of debug, plus
// --partition ID and --incremental, which may come anywhere.
func runDatasetDebug(d contract.Dataset, args []string, stdout, stderr io.Writer) int {
	var only string
	var incremental bool
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--partition" || a == "-partition":
			if i+1 == len(args) {
				fmt.Fprintln(stderr, "debug: --partition needs a partition id")
				return 2
			}
			i++
			only = args[i]
		case strings.HasPrefix(a, "--partition="):
			only = strings.TrimPrefix(a, "--partition=")
		case a == "--incremental" || a == "-incremental":
			incremental = true
		default:
			rest = append(rest, a)
		}
	}
	return runDebugWith(DatasetConnector(d, only, incremental), d.Info().Params.Secrets, rest, stdout, stderr)
}

// partitionCounts reads the row count of each partition synced before.
func partitionCounts(state contract.State) (map[string]int64, error) {
	counts := map[string]int64{}
	raw, ok := state["partitions"]
	if !ok {
		return counts, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`state: "partitions" must be an object of row counts, got %T: run sluice reset`, raw)
	}
	for id := range m {
		n, ok := contract.State(m).Int64(id)
		if !ok {
			return nil, fmt.Errorf(`state: partition %q has row count %v, not a whole number: run sluice reset`, id, m[id])
		}
		counts[id] = n
	}
	return counts, nil
}
