package server

// State and re-sync
//
// A connection's state is the connector's own JSON object, committed by
// the connector in the destination with the data it covers
// (destination.StateTable). The server reads and writes it there, holding
// the connection's lock, so it never changes under a running sync. After
// each run the server also keeps a sealed copy, shown while a run holds
// the lock.
//
// Re-sync (what Fivetran calls a historical re-sync):
//   - all tables: the state is cleared ({}), so the next run starts from
//     scratch and delivers everything again; rows already in the
//     destination stay, and are upserted again. With "truncate", every
//     table's rows are soft-deleted first, so rows gone from the source end
//     deleted and the ones delivered again revive.
//   - chosen tables: their rows are soft-deleted (truncate: the rows stay,
//     with _sluice_deleted = true, and revive when delivered again), and
//     their part of the state is cleared. sluice's state is connector-
//     defined JSON, so the server can only clear a table's part when the
//     state is an object with one top-level key per table, named as the
//     tables are (the usual shape: {"orders": {"cursor": ...}}); otherwise
//     it clears the whole state, and the other tables are delivered again
//     too (rows upserted again, nothing lost).
// Either way the truncates and the new state are one destination
// transaction, applied at the start of the next run, under its lock.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sluicedata/sluice/destination"
	_ "github.com/sluicedata/sluice/destination/duckdb"   // destinations the server reads and writes state in
	_ "github.com/sluicedata/sluice/destination/postgres" // (the connector program links its own)
)

func openDest(ctx context.Context, destURL, schema string) (destination.Destination, error) {
	d, err := destination.Open(ctx, destURL, destination.Options{Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("open the destination: %s", redact(err.Error(), secretValues(nil, destURL)))
	}
	return d, nil
}

// applyResync soft-deletes the chosen tables and writes the new state in
// one transaction.
func (s *Server) applyResync(ctx context.Context, c *connRow, destURL string, rs *Resync, logs *runLog) error {
	dest, err := openDest(ctx, destURL, c.name)
	if err != nil {
		return err
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		return err
	}
	tables, err := dest.Describe(ctx)
	if err != nil {
		return err
	}
	var truncate []destination.Table
	for _, t := range tables {
		if rs.All && rs.Truncate || slices.Contains(rs.Tables, t.Name) {
			truncate = append(truncate, t)
		}
	}
	for _, name := range rs.Tables {
		if !slices.ContainsFunc(tables, func(t destination.Table) bool { return t.Name == name }) {
			logs.info(fmt.Sprintf("re-sync: table %q is not in the destination yet; nothing to soft-delete", name))
		}
	}
	var old []byte
	if rec != nil {
		old = rec.State
	}
	state, partial := resyncState(old, rs)
	tx, err := dest.Begin(ctx, time.Now())
	if err != nil {
		return err
	}
	for _, t := range truncate {
		b := &destination.Batch{Table: t.Name, Columns: t.Columns, Truncate: true}
		for _, k := range t.PrimaryKey {
			b.Key = append(b.Key, slices.IndexFunc(t.Columns, func(c destination.Column) bool { return c.Name == k }))
		}
		if err := tx.Write(ctx, b); err != nil {
			tx.Rollback()
			return fmt.Errorf("soft-delete table %q: %w", t.Name, err)
		}
	}
	if err := tx.Commit(ctx, destination.StateRecord{State: state}); err != nil {
		tx.Rollback()
		return err
	}
	names := make([]string, len(truncate))
	for i, t := range truncate {
		names[i] = t.Name
	}
	switch {
	case rs.All:
		logs.info(fmt.Sprintf("re-sync of all tables: state cleared; rows soft-deleted in %d tables %v", len(names), names))
	case partial:
		logs.info(fmt.Sprintf("re-sync of tables %v: rows soft-deleted, their state keys cleared", rs.Tables))
	default:
		logs.info(fmt.Sprintf("re-sync of tables %v: rows soft-deleted; the state is not one key per table, so all of it was cleared", rs.Tables))
	}
	return nil
}

// resyncState is the state after a re-sync; partial reports that only the
// chosen tables' keys were removed.
func resyncState(old []byte, rs *Resync) (state []byte, partial bool) {
	if rs.All || len(old) == 0 {
		return []byte("{}"), false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(old, &obj) != nil {
		return []byte("{}"), false
	}
	for _, t := range rs.Tables {
		if _, ok := obj[t]; !ok {
			return []byte("{}"), false
		}
	}
	for _, t := range rs.Tables {
		delete(obj, t)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return []byte("{}"), false
	}
	return b, true
}

// StateView is a connection's state as the API shows it.
type StateView struct {
	State json.RawMessage `json:"state"` // null before the first checkpoint
	// Source is "destination" (read now) or "snapshot" (the copy taken
	// after the last run, shown while a run holds the connection).
	Source string     `json:"source"`
	AsOf   *time.Time `json:"as_of,omitempty"`
}

// readState reads c's state from its destination, or its snapshot when a
// run holds the connection.
func (s *Server) readState(ctx context.Context, c *connRow, d *destRow) (StateView, error) {
	unlock, _, ok, err := lockSet(ctx, s.locks, lockKeys(c, d)...)
	if err != nil {
		return StateView{}, err
	}
	if !ok {
		v := StateView{State: json.RawMessage("null"), Source: "snapshot", AsOf: nullTime(c.stateAt)}
		if c.stateSealed.Valid {
			b, err := s.seal.open(purposeState, c.stateSealed.String)
			if err != nil {
				return StateView{}, err
			}
			v.State = b
		}
		return v, nil
	}
	defer unlock()
	destURL, err := s.seal.open(purposeDestURL, d.urlSealed)
	if err != nil {
		return StateView{}, err
	}
	dest, err := openDest(ctx, string(destURL), c.name)
	if err != nil {
		return StateView{}, err
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil {
		return StateView{}, fmt.Errorf("read the state: %s", redact(err.Error(), secretValues(nil, string(destURL))))
	}
	now := time.Now().UTC()
	v := StateView{State: json.RawMessage("null"), Source: "destination", AsOf: &now}
	if rec != nil {
		v.State = rec.State
	}
	return v, nil
}

// setState commits a new state in c's destination. It fails with a
// conflict while a run holds the connection.
func (s *Server) setState(ctx context.Context, c *connRow, d *destRow, state []byte) error {
	unlock, _, ok, err := lockSet(ctx, s.locks, lockKeys(c, d)...)
	if err != nil {
		return err
	}
	if !ok {
		return &conflictError{fmt.Sprintf("connection %q is running a sync: set its state when the run ends (pause it first so that no new run starts)", c.name)}
	}
	defer unlock()
	destURL, err := s.seal.open(purposeDestURL, d.urlSealed)
	if err != nil {
		return err
	}
	dest, err := openDest(ctx, string(destURL), c.name)
	if err != nil {
		return err
	}
	defer dest.Close()
	tx, err := dest.Begin(ctx, time.Now())
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx, destination.StateRecord{State: state}); err != nil {
		tx.Rollback()
		return fmt.Errorf("write the state: %s", redact(err.Error(), secretValues(nil, string(destURL))))
	}
	return s.storeSnapshot(ctx, c.id, state)
}

// snapshotState keeps a copy of the state after a run; a failure only
// leaves the copy older.
func (s *Server) snapshotState(ctx context.Context, c *connRow, destURL string) {
	dest, err := openDest(ctx, destURL, c.name)
	if err != nil {
		s.log.Warn("state snapshot", "connection", c.name, "error", err)
		return
	}
	defer dest.Close()
	rec, err := dest.ReadState(ctx)
	if err != nil || rec == nil {
		return
	}
	if err := s.storeSnapshot(ctx, c.id, rec.State); err != nil {
		s.log.Warn("state snapshot", "connection", c.name, "error", err)
	}
}

func (s *Server) storeSnapshot(ctx context.Context, connID int64, state []byte) error {
	_, err := s.st.exec(ctx, `UPDATE sluice_connections SET state_sealed = ?, state_at = ? WHERE id = ?`,
		s.seal.seal(purposeState, state), formatTime(time.Now()), connID)
	return err
}
