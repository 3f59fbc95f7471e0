package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Config configures a server. The zero value of every field but DataDir
// takes its default.
type Config struct {
	// DataDir holds the embedded store (sluice.db), the key file, cached
	// connector binaries and the runs' temporary folders.
	DataDir string
	// DB is a PostgreSQL URL for the metadata store, for production and
	// for several worker processes; empty for the embedded SQLite store.
	DB string
	// Key seals secrets at rest (32 bytes); nil reads SLUICE_SERVER_KEY or
	// the data folder's key file.
	Key []byte
	// Concurrency is how many syncs this process runs at once (default 4).
	Concurrency int
	// TickInterval is how often the scheduler looks for connections due
	// to run (default 15s); negative disables scheduled runs.
	TickInterval time.Duration
	// MaxAttempts is how many times a failing sync is tried before it
	// waits for its next schedule (default 4).
	MaxAttempts int
	// RetryBase is the wait before the first retry; it doubles with each
	// attempt, up to RetryMax (defaults 30s and 1h).
	RetryBase time.Duration
	RetryMax  time.Duration
	// RescueAfter is how long a sync job may be running without its
	// connection's lock held (its worker died: the database released the
	// lock with the worker's connection) before another process retries
	// it (default 1m; PostgreSQL store only: an embedded server retries
	// at its next start).
	RescueAfter time.Duration
	// LockWait is how long a run that finds its connection locked waits
	// before it tries again (default 10s).
	LockWait time.Duration
	// KeepRuns is how many runs (with their logs) each connection keeps
	// (default 500).
	KeepRuns int
	// MaxLogLines caps the lines kept per run (default 20000); the rest
	// are counted, not kept.
	MaxLogLines int
	// ShutdownGrace is how long Close lets running syncs finish before it
	// stops them (default 30s). A stopped sync is retried.
	ShutdownGrace time.Duration
	// Logger receives the server's own logs (default: slog.Default()).
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.TickInterval == 0 {
		c.TickInterval = 15 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 4
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 30 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.RescueAfter <= 0 {
		c.RescueAfter = time.Minute
	}
	if c.LockWait <= 0 {
		c.LockWait = 10 * time.Second
	}
	if c.KeepRuns <= 0 {
		c.KeepRuns = 500
	}
	if c.MaxLogLines <= 0 {
		c.MaxLogLines = 20000
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is a sluice server: the metadata store, the job queue (River) and
// the HTTP API and page. Open it, Start its workers (or not, for a process
// that only serves the API or manages keys), serve Handler, Close it.
type Server struct {
	cfg    Config
	st     *store
	seal   *sealer
	locks  locker
	jobs   jobClient
	log    *slog.Logger
	worker string // this process, as runs record it

	mu       sync.Mutex
	started  bool
	unlockDD func()
	binMu    sync.Mutex // one binary extraction at a time
}

// Open opens the store (creating it and the key on first use) and the job
// queue, without starting any worker.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("server: no data folder: set --data")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	key := cfg.Key
	if key == nil {
		if key, err = loadKey(dir); err != nil {
			return nil, err
		}
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, dir, cfg.DB)
	if err != nil {
		return nil, err
	}
	if err := checkKey(ctx, st, seal); err != nil {
		st.close()
		return nil, err
	}
	host, _ := os.Hostname()
	// Host and process, and which server of the process (tests run
	// several in one).
	s := &Server{cfg: cfg, st: st, seal: seal, log: cfg.Logger, worker: fmt.Sprintf("%s/%d/%04x", host, os.Getpid(), rand.Uint32N(1<<16))}
	if st.postgres {
		if s.locks, err = newPGLocker(ctx, st.db); err != nil {
			st.close()
			return nil, err
		}
	} else {
		s.locks = newMemLocker()
	}
	if s.jobs, err = newJobClient(ctx, s); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// Start starts this process's workers and, if it is elected River's leader,
// the scheduler.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if !s.st.postgres {
		unlock, err := lockDataDir(s.cfg.DataDir)
		if err != nil {
			return err
		}
		s.unlockDD = unlock
		// This process owns the embedded store alone: whatever it
		// finds running was left by a previous process that died.
		if err := s.recoverEmbedded(ctx); err != nil {
			unlock()
			return err
		}
	}
	if err := s.jobs.Start(ctx); err != nil {
		if s.unlockDD != nil {
			s.unlockDD()
		}
		return fmt.Errorf("start the job queue: %w", err)
	}
	s.started = true
	return nil
}

// Close stops the workers, letting running syncs finish for up to
// ShutdownGrace (then stopping them: they are retried on the next start),
// and closes the store.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = false
	s.mu.Unlock()
	var err error
	if started {
		soft, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
		err = s.jobs.Stop(soft)
		cancel()
		if err != nil {
			hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err = s.jobs.StopAndCancel(hard)
			cancel()
		}
	}
	if cerr := s.st.close(); err == nil {
		err = cerr
	}
	if s.unlockDD != nil {
		s.unlockDD()
	}
	return err
}

// Handler serves the API under /api/ and the web page at /.
func (s *Server) Handler() http.Handler { return s.routes() }

// CreateAPIKey makes a new API key and returns it; it is not kept in clear
// and cannot be shown again.
func (s *Server) CreateAPIKey(ctx context.Context, name string) (APIKey, string, error) {
	return s.st.createAPIKey(ctx, name)
}

// ListAPIKeys lists the keys, revoked ones included, without their secrets.
func (s *Server) ListAPIKeys(ctx context.Context) ([]APIKey, error) { return s.st.listAPIKeys(ctx) }

// RevokeAPIKey revokes a key by id; requests with it get 401 from then on.
func (s *Server) RevokeAPIKey(ctx context.Context, id string) error {
	return s.st.revokeAPIKey(ctx, id)
}

// Postgres reports whether the store is PostgreSQL (so that several
// worker processes may share it).
func (s *Server) Postgres() bool { return s.st.postgres }
