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
			fill := newDatasetRow(h.Info().Partitioning)
			// An engine takes the added columns beside the connector's
			// row: copying every row into a map of the runtime's own cost
			// a tenth of a dataset sync's CPU.
			with, _ := ops.(contract.ExtraUpserter)
			pending, dirty := 0, false // rows since the last checkpoint
			for _, p := range parts {
				if _, seen := counts[p.ID]; incremental && seen {
					continue
				}
				var n int64
				fill.partition(p)
				_, err := h.Read(ctx, contract.ReadOptions{Partition: p.ID}, func(row contract.Row) error {
					if with != nil {
						extra := fill.extra(row, n)
						n++
						return with.UpsertWith(name, row, extra)
					}
					out := fill.row(row, n)
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
				// is replaced atomically; small partitions share one (see
				// checkpointRows).
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
// two checkpoints. A DuckDB commit costs the writer about as much as
// 70,000 rows (0.15 to 0.2 CPU-seconds in profiles of a 1M-row sync), and
// the writer is the slower side of a dataset sync: every 500,000 rows that
// was 12-15 % of its work. A transaction this size stays within the sync's
// memory_limit, a re-sync's deletes included (BENCHMARKS.md).
const checkpointRows = 1_000_000

// datasetRow builds the rows a dataset sync upserts: the connector's row
// plus the partition id, the row's position in its partition, and the
// partition's value for each dimension the row has no column for.
//
// It fills one map, sized once and reused for every row: the engine reads
// a row before Upsert returns, and the connector's own map is not the
// runtime's to change. Rows of one dataset usually have the same columns,
// so a row overwrites the last one's values instead of clearing the map
// first, which cost more than the copy; a key left from an earlier row
// shows in the map's length, and the map is then cleared and filled again.
type datasetRow struct {
	out   map[string]any
	dims  contract.Partitioning
	part  contract.Partition
	id    any // part.ID, boxed once per partition rather than per row
	added []contract.Field
}

func newDatasetRow(dims contract.Partitioning) *datasetRow {
	return &datasetRow{out: make(map[string]any, 16), dims: dims}
}

// partition sets the partition the next rows belong to.
func (r *datasetRow) partition(p contract.Partition) { r.part, r.id = p, p.ID }

// row returns the map to upsert for the connector's row at position n. It
// is valid until the next call.
func (r *datasetRow) row(row contract.Row, n int64) map[string]any {
	if r.put(row, n) != len(r.out) {
		clear(r.out)
		r.put(row, n)
	}
	return r.out
}

// put writes row's values and the added ones into out, and returns how many
// distinct keys it wrote. (Should a dimension be named _partition or _row,
// the count is one too many, and row clears the map every time: slower,
// still right.)
func (r *datasetRow) put(row contract.Row, n int64) int {
	for k, v := range row {
		r.out[k] = v
	}
	keys := len(row) + 2
	if _, ok := row[partitionColumn]; ok {
		keys--
	}
	if _, ok := row[rowColumn]; ok {
		keys--
	}
	r.out[partitionColumn], r.out[rowColumn] = r.id, n
	if !r.part.All() {
		for i, dim := range r.dims {
			if _, ok := row[dim.Name]; !ok {
				r.out[dim.Name] = r.part.Values[i]
				keys++
			}
		}
	}
	return keys
}

// extra returns the values to add to the connector's row at position n
// (for contract.ExtraUpserter), as put adds them: the partition and the
// position always, a dimension's value where the row has none. It is
// valid until the next call.
func (r *datasetRow) extra(row contract.Row, n int64) []contract.Field {
	r.added = append(r.added[:0], contract.Field{Name: partitionColumn, Value: r.id}, contract.Field{Name: rowColumn, Value: n})
	if !r.part.All() {
		for i, dim := range r.dims {
			if _, ok := row[dim.Name]; !ok {
				r.added = append(r.added, contract.Field{Name: dim.Name, Value: r.part.Values[i]})
			}
		}
	}
	return r.added
}

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
