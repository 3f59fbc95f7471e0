package sqlsource

import (
	"encoding/json"
	"fmt"

	"github.com/sluicedata/sluice/internal/contract"
)

// State is what the database sources checkpoint. Values of cursors and keys
// are kept as text, which the connector casts back to the column's type: a
// JSON number could not hold a 64-bit integer, a numeric or a timestamp
// exactly.
type State struct {
	// Tables holds each incremental table's position.
	Tables map[string]*TableState `json:"tables,omitempty"`
	// Refresh exists while a pass of full refreshes (or the snapshot of
	// replicated tables) is under way: the tables done and the one in
	// progress. A sync that finds it resumes the pass.
	Refresh map[string]*RefreshState `json:"refresh,omitempty"`
	// Replication is PostgreSQL logical replication's position.
	Replication *ReplicationState `json:"replication,omitempty"`
}

// TableState is an incremental table's position: the cursor value and key
// of the last row read.
type TableState struct {
	CursorColumn string   `json:"cursor_column"`
	Cursor       *string  `json:"cursor"` // nil: the cursor was NULL (NULLs come first)
	Key          []string `json:"key,omitempty"`
	// Complete says the read reached the end of the table: the next sync
	// reads from the cursor value on (>=), so that rows written later with
	// the same value are not missed. Otherwise the read stopped at a
	// checkpoint and resumes strictly after (cursor, key).
	Complete bool `json:"complete"`
}

// RefreshState is one table's progress in a refresh pass.
type RefreshState struct {
	// After is the key of the last row committed; nil: the table restarts
	// (it has no key, or no row was committed yet).
	After []string `json:"after,omitempty"`
	Done  bool     `json:"done,omitempty"`
}

// ReplicationState is where a PostgreSQL replication slot's stream stands.
type ReplicationState struct {
	Slot        string `json:"slot"`
	Publication string `json:"publication"`
	// LSN is the position committed with the warehouse data: the stream
	// resumes there, and the slot is acknowledged up to it only once a
	// later sync has read it back from the warehouse.
	LSN string `json:"lsn"`
	// SnapshotDone says the initial snapshot of every table in Tables is
	// committed.
	SnapshotDone bool `json:"snapshot_done"`
	// Tables are the replicated tables (schema.name) the snapshot covered.
	Tables []string `json:"tables,omitempty"`
}

// ReadState decodes the state a previous sync checkpointed.
func ReadState(s contract.State) (*State, error) {
	out := &State{}
	if len(s) > 0 {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("the state is not one this connector wrote (%v): run `sluice reset` to start over", err)
		}
	}
	if out.Tables == nil {
		out.Tables = map[string]*TableState{}
	}
	return out, nil
}
