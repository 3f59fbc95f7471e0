package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluicedata/sluice/connectors/internal/sqlsource"
)

// Logical replication, when configured, works in two steps.
//
// The first sync creates the replication slot with an exported snapshot and
// reads the replicated tables inside that snapshot, so that the tables and
// the slot's starting position agree: every change after the snapshot is in
// the stream, none before. The slot's position is kept in state.
//
// Every sync (the first one too, after its snapshot) then streams the
// changes from the position in state up to where the server's WAL stood
// when the stream began: inserts and updates become upserts, deletes
// become deletes, a TRUNCATE a truncate. A checkpoint is taken at a
// transaction's commit every checkpoint_rows changes, and at the end, with
// the position of that commit.
//
// The slot is acknowledged (its confirmed position moved, which lets the
// server drop old WAL) only up to the position of the state the sync
// started from: that state was read back from the warehouse, so it is
// committed. A sync that fails leaves the slot where the last committed
// checkpoint put it, and the next one replays the rest.
//
// A snapshot cut short by a crash resumes in a new snapshot, table by table
// after the last committed key. Rows then read later than the slot's
// position still converge: the stream replays every change since that
// position, and each change carries the whole row or its key, so the last
// change of each row wins.

type replication struct {
	s     *source
	rconn *pgconn.PgConn
	// exported is the snapshot the slot was created with in this run; ""
	// when the slot already existed.
	exported string
	// ack is the committed position the slot may be acknowledged up to.
	ack    pglogrepl.LSN
	tables map[string]*sqlsource.Planned // the replicated tables, by schema.name
	rels   map[uint32]*relation
}

// relation is a table as the stream describes it.
type relation struct {
	p *sqlsource.Planned // nil: not replicated by this connector
	// cols gives, per column of the stream's tuples, the catalog column it
	// is (-1: a column dropped since, whose values are ignored).
	cols []int
}

func (r *replication) close() {
	if r.rconn != nil {
		r.rconn.Close(context.Background())
	}
}

// startReplication checks the server, the publication and the slot, and
// creates the slot (with an exported snapshot) when the state has none.
func (s *source) startReplication(ctx context.Context, sy *sqlsource.Sync) (*replication, error) {
	var level string
	if err := s.conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	if level != "logical" {
		return nil, fmt.Errorf("replication: the server's wal_level is %q, and logical replication needs \"logical\": run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL, or set %q to \"none\"", level, KeyReplication)
	}
	r := &replication{s: s, tables: map[string]*sqlsource.Planned{}, rels: map[uint32]*relation{}}
	var replicated []*sqlsource.Planned
	for _, p := range s.plan {
		if isReplicated(p) {
			r.tables[p.Qualified()] = p
			replicated = append(replicated, p)
		}
	}
	if err := s.ensurePublication(ctx, replicated); err != nil {
		return nil, err
	}
	rc, err := pgconn.ConnectConfig(ctx, replicationConfig(s.connCfg))
	if err != nil {
		return nil, fmt.Errorf("replication: %w", connectError(s.connCfg, err))
	}
	r.rconn = rc

	st := sy.State.Replication
	reason := ""
	var (
		active                  bool
		confirmed, plugin, dbnm string
	)
	err = s.conn.QueryRow(ctx, `SELECT active, COALESCE(confirmed_flush_lsn::text, ''), COALESCE(plugin, ''), COALESCE(database, '')
		FROM pg_replication_slots WHERE slot_name = $1`, s.slot).Scan(&active, &confirmed, &plugin, &dbnm)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		r.close()
		return nil, fmt.Errorf("replication: read slot %q: %w", s.slot, err)
	}
	if exists && (plugin != "pgoutput" || dbnm != s.connCfg.Database) {
		r.close()
		return nil, fmt.Errorf("replication: slot %q belongs to something else (plugin %q, database %q): choose another name in %q", s.slot, plugin, dbnm, KeySlot)
	}
	switch {
	case st == nil:
		if exists {
			reason = "the state has no replication position (a first sync, or one cut short before its first checkpoint)"
		}
	case st.Slot != s.slot:
		reason = fmt.Sprintf("the slot changed from %q to %q", st.Slot, s.slot)
	case !exists:
		reason = fmt.Sprintf("slot %q no longer exists", s.slot)
	default:
		at, err1 := pglogrepl.ParseLSN(st.LSN)
		conf, err2 := pglogrepl.ParseLSN(confirmed)
		if err1 != nil || err2 != nil {
			reason = "the slot's position cannot be read"
		} else if conf > at {
			reason = fmt.Sprintf("slot %q was acknowledged past the state's position (%s > %s): changes in between are gone", s.slot, conf, at)
		} else {
			r.ack = at
		}
	}
	if r.ack != 0 {
		if active {
			r.close()
			return nil, fmt.Errorf("replication: slot %q is in use by another connection: stop the other sync first", s.slot)
		}
		if st.Publication != s.publication {
			slog.Warn("the publication changed: tables it adds are snapshotted, the stream goes on from the slot's position", "from", st.Publication, "to", s.publication)
			st.Publication = s.publication
		}
		return r, nil
	}
	if reason != "" {
		slog.Warn("replication starts over with a new slot and a new snapshot of the replicated tables", "slot", s.slot, "reason", reason)
	}
	if exists {
		if active {
			r.close()
			return nil, fmt.Errorf("replication: slot %q is in use by another connection: stop it, or choose another name in %q", s.slot, KeySlot)
		}
		if _, err := s.conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s.slot); err != nil {
			r.close()
			return nil, fmt.Errorf("replication: drop the stale slot %q: %w", s.slot, err)
		}
	}
	// Creating a slot waits for the transactions running on the server to
	// end, which a long one elsewhere can make slow.
	created := time.Now()
	res, err := pglogrepl.CreateReplicationSlot(ctx, rc, s.slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("replication: create slot %q: %w%s", s.slot, err, privilegeHint(err))
	}
	at, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("replication: slot %q: %w", s.slot, err)
	}
	slog.Debug("created the replication slot", "slot", s.slot, "at", at, "took", time.Since(created).Round(time.Millisecond))
	r.exported, r.ack = res.SnapshotName, at
	sy.State.Replication = &sqlsource.ReplicationState{Slot: s.slot, Publication: s.publication, LSN: at.String()}
	// Every replicated table is read again in the new snapshot.
	for name := range r.tables {
		delete(sy.State.Refresh, name)
	}
	return r, nil
}

func privilegeHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return " (the user needs the REPLICATION attribute: ALTER ROLE ... WITH REPLICATION)"
	}
	return ""
}

// ensurePublication creates the publication for the replicated tables, or
// adds those it lacks.
func (s *source) ensurePublication(ctx context.Context, tables []*sqlsource.Planned) error {
	names := func(ps []*sqlsource.Planned) string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = qualified(p.Table)
		}
		return strings.Join(out, ", ")
	}
	var all bool
	err := s.conn.QueryRow(ctx, `SELECT puballtables FROM pg_publication WHERE pubname = $1`, s.publication).Scan(&all)
	if errors.Is(err, pgx.ErrNoRows) {
		q := "CREATE PUBLICATION " + quoteIdent(s.publication) + " FOR TABLE " + names(tables) + " WITH (publish_via_partition_root = true)"
		if _, err := s.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("replication: create publication %q: %w (create it yourself with: %s)", s.publication, err, q)
		}
		slog.Info("created the publication", "publication", s.publication)
		return nil
	}
	if err != nil {
		return fmt.Errorf("replication: read publication %q: %w", s.publication, err)
	}
	if all {
		return nil
	}
	rows, err := s.conn.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1`, s.publication)
	if err != nil {
		return fmt.Errorf("replication: read publication %q: %w", s.publication, err)
	}
	in, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("replication: read publication %q: %w", s.publication, err)
	}
	var missing []*sqlsource.Planned
	for _, p := range tables {
		if !slices.Contains(in, p.Qualified()) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	q := "ALTER PUBLICATION " + quoteIdent(s.publication) + " ADD TABLE " + names(missing)
	if _, err := s.conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("replication: add tables to publication %q: %w (add them yourself with: %s)", s.publication, err, q)
	}
	slog.Info("added tables to the publication", "publication", s.publication, "tables", names(missing))
	return nil
}

// snapshot reads the replicated tables the state's snapshot does not
// cover: in the slot's exported snapshot when the slot was just created,
// else in one repeatable-read transaction (see the package comment on why
// that converges).
func (r *replication) snapshot(ctx context.Context, sy *sqlsource.Sync) error {
	st := sy.State.Replication
	var need []*sqlsource.Planned
	for _, p := range r.s.plan {
		if isReplicated(p) && !slices.Contains(st.Tables, p.Qualified()) {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		st.SnapshotDone = true
		return nil
	}
	st.SnapshotDone = false
	conn := r.s.conn
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("replication snapshot: %w", err)
	}
	if r.exported != "" {
		if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(r.exported)); err != nil {
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("replication snapshot: %w", err)
		}
	}
	sy.RefreshDone = func(p *sqlsource.Planned) {
		if isReplicated(p) && !slices.Contains(st.Tables, p.Qualified()) {
			st.Tables = append(st.Tables, p.Qualified())
		}
	}
	for _, p := range need {
		if err := sy.Refresh(ctx, p); err != nil {
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return err
		}
	}
	sy.RefreshDone = nil
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("replication snapshot: %w", err)
	}
	st.SnapshotDone = true
	return sy.Checkpoint()
}

// Stream timings: how long without a message before asking the server
// where it stands, and how often to report status so the server does not
// time the connection out (wal_sender_timeout, 60 s by default).
const (
	idlePing       = 200 * time.Millisecond
	statusInterval = 10 * time.Second
	// stalled ends a stream whose server has sent nothing and moved its
	// position no further for this long, between transactions: it waits
	// for WAL past the target that nobody writes. The rest comes next sync.
	stalled = 30 * time.Second
)

// stream applies the changes from the state's position up to the server's
// WAL position at the start.
func (r *replication) stream(ctx context.Context, sy *sqlsource.Sync) error {
	st := sy.State.Replication
	start, err := pglogrepl.ParseLSN(st.LSN)
	if err != nil {
		return fmt.Errorf("replication: the state's position %q: %w", st.LSN, err)
	}
	var targetText string
	if err := r.s.conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&targetText); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	target, err := pglogrepl.ParseLSN(targetText)
	if err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	err = pglogrepl.StartReplication(ctx, r.rconn, r.s.slot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(quoteIdent(r.s.publication))},
	})
	if err != nil {
		return fmt.Errorf("replication: start streaming from slot %q: %w", r.s.slot, err)
	}
	t := &streamer{r: r, sy: sy, st: st, commit: start, received: start}
	// The state the sync started from is committed: the slot may drop
	// what comes before it.
	if err := t.status(false); err != nil {
		return err
	}
	end, err := t.run(ctx, target)
	if err != nil {
		return err
	}
	st.LSN = end.String()
	slog.Debug("replication stream caught up", "slot", r.s.slot, "lsn", st.LSN)
	return nil
}

type streamer struct {
	r        *replication
	sy       *sqlsource.Sync
	st       *sqlsource.ReplicationState
	commit   pglogrepl.LSN // end of the last transaction applied
	received pglogrepl.LSN // how far the server said it has sent
	inTx     bool
	pending  int64 // changes since the last checkpoint
	last     time.Time
}

func (t *streamer) status(ping bool) error {
	t.last = time.Now()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), t.r.rconn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: max(t.received, t.r.ack),
		WALFlushPosition: t.r.ack,
		WALApplyPosition: t.r.ack,
		ReplyRequested:   ping,
	})
	if err != nil {
		return fmt.Errorf("replication: send status: %w", err)
	}
	return nil
}

// run reads the stream until it reaches target between transactions, and
// returns the position the state may take.
func (t *streamer) run(ctx context.Context, target pglogrepl.LSN) (pglogrepl.LSN, error) {
	progress := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("replication stream: %w", err)
		}
		if time.Since(t.last) > statusInterval {
			if err := t.status(false); err != nil {
				return 0, err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, idlePing)
		msg, err := t.r.rconn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				if !t.inTx {
					if err := t.status(true); err != nil {
						return 0, err
					}
				}
				continue
			}
			return 0, fmt.Errorf("replication stream: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return 0, fmt.Errorf("replication stream: %w", err)
				}
				if ka.ServerWALEnd > t.received {
					t.received, progress = ka.ServerWALEnd, time.Now()
				}
				if ka.ReplyRequested {
					if err := t.status(false); err != nil {
						return 0, err
					}
				}
				if t.inTx {
					continue
				}
				// Between transactions, every transaction that committed
				// before ServerWALEnd has been received (the server sends
				// one when it decodes its commit): the stream is caught up
				// once that passes the target.
				if ka.ServerWALEnd >= target {
					return max(t.commit, ka.ServerWALEnd), nil
				}
				if time.Since(progress) > stalled {
					slog.Info("the replication stream stalled short of the server's WAL position at its start: the rest comes next sync",
						"slot", t.r.s.slot, "at", ka.ServerWALEnd, "target", target)
					return max(t.commit, ka.ServerWALEnd), nil
				}
			case pglogrepl.XLogDataByteID:
				progress = time.Now()
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return 0, fmt.Errorf("replication stream: %w", err)
				}
				stop, err := t.apply(ctx, xld.WALData)
				if err != nil {
					return 0, err
				}
				if stop {
					return t.commit, nil
				}
				if !t.inTx && t.commit >= target {
					return t.commit, nil
				}
			}
		case *pgproto3.ErrorResponse:
			return 0, fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return 0, errors.New("replication stream: the server ended the stream")
		}
	}
}

// apply handles one pgoutput message. stop says the sync should end at the
// last commit: a replicated table gained a column after the sync read the
// catalog, which the next sync declares before going on.
func (t *streamer) apply(ctx context.Context, data []byte) (stop bool, err error) {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return false, fmt.Errorf("replication stream: %w", err)
	}
	ops := t.sy.Ops
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return t.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		t.inTx = true
	case *pglogrepl.CommitMessage:
		t.inTx = false
		t.commit = m.TransactionEndLSN
		if t.pending >= t.sy.Every {
			t.pending = 0
			t.st.LSN = t.commit.String()
			if err := t.sy.Checkpoint(); err != nil {
				return false, err
			}
		}
	case *pglogrepl.InsertMessage:
		rel := t.r.rels[m.RelationID]
		if rel == nil || rel.p == nil {
			return false, nil
		}
		row, _, err := t.row(rel, m.Tuple)
		if err != nil {
			return false, err
		}
		t.pending++
		return false, ops.Upsert(rel.p.Dest, row)
	case *pglogrepl.UpdateMessage:
		rel := t.r.rels[m.RelationID]
		if rel == nil || rel.p == nil {
			return false, nil
		}
		row, partial, err := t.row(rel, m.NewTuple)
		if err != nil {
			return false, err
		}
		t.pending++
		keyed := len(rel.p.Key) > 0
		if m.OldTuple != nil {
			old, oldPartial, err := t.row(rel, m.OldTuple)
			if err != nil {
				return false, err
			}
			if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld && !oldPartial {
				// REPLICA IDENTITY FULL: the old row is whole, and fills
				// in what the new one left out (unchanged TOAST values).
				for k, v := range old {
					if _, ok := row[k]; !ok {
						row[k] = v
					}
				}
				partial = false
			}
			switch {
			case !keyed:
				if err := ops.Delete(rel.p.Dest, old); err != nil {
					return false, err
				}
			case keyChanged(rel.p, old, row):
				if err := ops.Delete(rel.p.Dest, keyOf(rel.p, old)); err != nil {
					return false, err
				}
			}
		}
		if partial {
			return false, ops.Update(rel.p.Dest, row)
		}
		return false, ops.Upsert(rel.p.Dest, row)
	case *pglogrepl.DeleteMessage:
		rel := t.r.rels[m.RelationID]
		if rel == nil || rel.p == nil || m.OldTuple == nil {
			return false, nil
		}
		old, _, err := t.row(rel, m.OldTuple)
		if err != nil {
			return false, err
		}
		t.pending++
		if len(rel.p.Key) > 0 {
			return false, ops.Delete(rel.p.Dest, keyOf(rel.p, old))
		}
		return false, ops.Delete(rel.p.Dest, old)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if rel := t.r.rels[id]; rel != nil && rel.p != nil {
				t.pending++
				if err := ops.Truncate(rel.p.Dest); err != nil {
					return false, err
				}
			}
		}
	}
	return false, nil
}

// relation records how the stream's tuples of a table map to its columns.
func (t *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage) (bool, error) {
	p := t.r.tables[m.Namespace+"."+m.RelationName]
	rel := &relation{p: p}
	t.r.rels[m.RelationID] = rel
	if p == nil {
		return false, nil
	}
	var unknown []string
	for _, c := range m.Columns {
		i, ok := p.Col(c.Name)
		if ok && p.Columns[i].Generated {
			ok = false
		}
		if !ok {
			i = -1
			unknown = append(unknown, c.Name)
		}
		rel.cols = append(rel.cols, i)
	}
	if len(unknown) == 0 {
		return false, nil
	}
	// A column the catalog did not list: dropped since (its old values
	// are ignored), or added since the sync began (stop, and let the next
	// sync declare it).
	rows, err := t.r.s.conn.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, m.RelationID)
	if err != nil {
		return false, fmt.Errorf("replication: read the columns of %s: %w", p.Qualified(), err)
	}
	now, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("replication: read the columns of %s: %w", p.Qualified(), err)
	}
	for _, u := range unknown {
		if slices.Contains(now, u) {
			slog.Info("a replicated table has a new column: this sync stops at the last complete transaction, and the next one declares the column and goes on",
				"table", p.Qualified(), "column", u)
			return true, nil
		}
	}
	return false, nil
}

// row decodes a tuple into a row by source column name. partial says some
// columns were left out (TOAST values the update did not change).
func (t *streamer) row(rel *relation, tup *pglogrepl.TupleData) (map[string]any, bool, error) {
	row := make(map[string]any, len(tup.Columns))
	partial := false
	for j, col := range tup.Columns {
		if j >= len(rel.cols) {
			return nil, false, fmt.Errorf("replication: table %s: a tuple has more columns than its relation", rel.p.Qualified())
		}
		i := rel.cols[j]
		if i < 0 {
			continue
		}
		c := &rel.p.Columns[i]
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			row[c.Name] = nil
		case pglogrepl.TupleDataTypeToast:
			partial = true
		case pglogrepl.TupleDataTypeText:
			v, err := decodeText(c.Kind, col.Data)
			if err != nil {
				if errors.Is(err, errInfinite) {
					row[c.Name] = nil
					continue
				}
				return nil, false, fmt.Errorf("replication: table %s, column %q (%s): %w", rel.p.Qualified(), c.Name, c.SQLType, err)
			}
			row[c.Name] = v
		default:
			return nil, false, fmt.Errorf("replication: table %s, column %q: unexpected tuple data type %q", rel.p.Qualified(), c.Name, col.DataType)
		}
	}
	return row, partial, nil
}

func keyOf(p *sqlsource.Planned, row map[string]any) map[string]any {
	out := make(map[string]any, len(p.Key))
	for _, k := range p.Key {
		out[k] = row[k]
	}
	return out
}

func keyChanged(p *sqlsource.Planned, old, row map[string]any) bool {
	for _, k := range p.Key {
		a, b := old[k], row[k]
		if a == nil {
			continue // not in the old tuple
		}
		ta, err1 := sqlsource.PosText(a, &p.Columns[mustCol(p, k)])
		tb, err2 := sqlsource.PosText(b, &p.Columns[mustCol(p, k)])
		if err1 != nil || err2 != nil || ta != tb {
			return true
		}
	}
	return false
}

func mustCol(p *sqlsource.Planned, name string) int {
	i, _ := p.Col(name)
	return i
}
