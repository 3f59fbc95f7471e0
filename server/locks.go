package server

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// locker holds the locks that keep one run per connection (and one writer
// per DuckDB file) at a time. River's unique jobs already keep one job per
// connection queued or running; the lock also covers a job River rescued
// from a worker it believed dead but that is still running, and the API's
// own writes to a destination (state, re-sync).
type locker interface {
	// tryLock takes the lock (class, id) if it is free. unlock releases it.
	// lost, if not nil, is closed if the lock is lost before unlock (the
	// database connection that holds it broke): whatever it guards must
	// stop, as another process may now take it.
	tryLock(ctx context.Context, class int32, id int64) (unlock func(), lost <-chan struct{}, ok bool, err error)
}

// memLocker is the embedded store's locker: one server process owns the
// data folder (see lockDataDir), so an in-process lock is enough.
type memLocker struct {
	mu   sync.Mutex
	held map[[2]int64]bool
}

func newMemLocker() *memLocker { return &memLocker{held: map[[2]int64]bool{}} }

func (l *memLocker) tryLock(_ context.Context, class int32, id int64) (func(), <-chan struct{}, bool, error) {
	k := [2]int64{int64(class), id}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[k] {
		return nil, nil, false, nil
	}
	l.held[k] = true
	return func() {
		l.mu.Lock()
		delete(l.held, k)
		l.mu.Unlock()
	}, nil, true, nil
}

// pgLocker takes PostgreSQL session advisory locks, one connection per
// lock held. A worker that dies loses its connection, and PostgreSQL
// releases its locks at once: the lock cannot outlive its holder.
//
// The locks are the database's, whichever schema a store is in: salt, from
// the store's schema, keeps two stores of one database from taking each
// other's locks (connection 1 of one store and of another had one lock, so
// a run of one held up the other's, and the state API read the snapshot).
// Servers before the salt took the bare id: upgrade every server of a store
// together, or an old and a new one may run one connection at once.
type pgLocker struct {
	db   *sql.DB
	salt int32
}

// newPGLocker returns the locker of the store db opens, salted by its
// schema.
func newPGLocker(ctx context.Context, db *sql.DB) (*pgLocker, error) {
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("lock: the store's schema: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(schema))
	return &pgLocker{db: db, salt: int32(h.Sum32())}, nil
}

// lockCheck is how often a held lock's connection is checked.
const lockCheck = 5 * time.Second

func (l *pgLocker) tryLock(ctx context.Context, class int32, id int64) (func(), <-chan struct{}, bool, error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("lock: %w", err)
	}
	// The advisory lock takes two int4 keys; ids beyond 2^31 fold. The
	// salt keeps ids of one store apart, and apart from another store's.
	key := int32(id^id>>32) ^ l.salt
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, class, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, nil, false, fmt.Errorf("lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, nil, false, nil
	}
	lost := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockCheck)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(context.Background(), lockCheck)
			err := conn.PingContext(pctx)
			cancel()
			if err != nil {
				close(lost)
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		// A connection must not go back to the pool holding the lock:
		// if the unlock fails, the connection is discarded, which
		// releases it.
		var released bool
		err := conn.QueryRowContext(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, class, key).Scan(&released)
		if err != nil || !released {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, lost, true, nil
}

// lockSet takes several locks, all or none. lost is closed if any is lost.
func lockSet(ctx context.Context, l locker, keys ...[2]int64) (unlock func(), lost <-chan struct{}, ok bool, err error) {
	var held []func()
	var losts []<-chan struct{}
	release := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i]()
		}
	}
	for _, k := range keys {
		u, lc, ok, err := l.tryLock(ctx, int32(k[0]), k[1])
		if err != nil || !ok {
			release()
			return nil, nil, false, err
		}
		held = append(held, u)
		if lc != nil {
			losts = append(losts, lc)
		}
	}
	anyLost := make(chan struct{})
	stop := make(chan struct{})
	var once sync.Once
	for _, lc := range losts {
		go func() {
			select {
			case <-lc:
				once.Do(func() { close(anyLost) })
			case <-stop:
			}
		}()
	}
	return func() { close(stop); release() }, anyLost, true, nil
}
