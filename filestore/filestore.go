// Package filestore is one portable API over places that hold files: a local
// folder or an S3-compatible bucket. Callers open a store by its root URL and
// never import a driver's internals; drivers register an opener per URL
// scheme, as database/sql drivers do.
//
// Keys are slash-separated paths relative to the root ("users.csv",
// "events/date=2024-03-01/part-0.parquet"), whatever the driver.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotExist is returned (wrapped) for a key that is not in the store.
var ErrNotExist = errors.New("no such file")

// Object describes one file in a store.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag identifies the content where the store knows it (S3); empty
	// otherwise. Incremental syncs compare it, with Size and ModTime.
	ETag string
}

// Reader reads one file: sequentially through Read, or at any offset through
// ReadAt (Parquet reads its footer first), without holding the file in
// memory.
type Reader interface {
	io.ReadCloser
	io.ReaderAt
	Size() int64
}

// Writer writes one file. Nothing is visible under the key until Close
// returns nil; Abort discards what was written.
type Writer interface {
	io.Writer
	Close() error
	Abort() error
}

// Store is what a driver implements.
type Store interface {
	// List yields every object whose key starts with prefix, in any depth,
	// sorted by key.
	List(ctx context.Context, prefix string) iter.Seq2[Object, error]
	Stat(ctx context.Context, key string) (Object, error)
	Open(ctx context.Context, key string) (Reader, error)
	Create(ctx context.Context, key string) (Writer, error)
	// Delete removes a key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Rename moves a key. On a local folder it is atomic; on S3 it is a
	// server-side copy then a delete.
	Rename(ctx context.Context, from, to string) error
	// Local returns the file-system path of a key when the store is a local
	// folder, so that callers can hand it to a reader that wants a path
	// (DuckDB's read_csv). ok is false for remote stores.
	Local(key string) (path string, ok bool)
	// String names the store for messages, without secrets.
	String() string
	Close() error
}

// Options configure remote stores; local folders ignore them. Empty fields
// fall back to the usual environment variables (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL) and shared config.
type Options struct {
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle addresses buckets as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT, which most self-hosted servers need.
	PathStyle bool
	// PartSize is the multipart upload part size in bytes (default 16 MiB).
	PartSize int64
}

// Secrets returns the option values that must never be printed.
func (o Options) Secrets() []string {
	var s []string
	for _, v := range []string{o.SecretAccessKey, o.SessionToken} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// Opener opens a store for a parsed root URL.
type Opener func(ctx context.Context, root *url.URL, opts Options) (Store, error)

var (
	mu      sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a driver available for a URL scheme. It panics on a
// duplicate, as sql.Register does: that is a programming error.
func Register(scheme string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("filestore: Register called twice for scheme " + scheme)
	}
	openers[scheme] = open
}

// Open opens the store at root: "s3://bucket/prefix", "file:///data/raw" or
// a plain path.
func Open(ctx context.Context, root string, opts Options) (Store, error) {
	u, err := ParseRoot(root)
	if err != nil {
		return nil, err
	}
	mu.RLock()
	open, ok := openers[u.Scheme]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store %q: no driver for scheme %q (known: %s)", root, u.Scheme, strings.Join(schemes(), ", "))
	}
	return open(ctx, u, opts)
}

// ParseRoot turns a root into a URL; a plain path becomes a file URL with an
// absolute path.
func ParseRoot(root string) (*url.URL, error) {
	if root == "" {
		return nil, errors.New("empty store root: give a folder, file:///path or s3://bucket/prefix")
	}
	if i := strings.Index(root, "://"); i > 0 && !strings.ContainsAny(root[:i], `/\`) {
		u, err := url.Parse(root)
		if err != nil {
			return nil, fmt.Errorf("store root %q: %w", root, err)
		}
		u.Scheme = strings.ToLower(u.Scheme)
		return u, nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store root %q: %w", root, err)
	}
	return &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}, nil
}

func schemes() []string {
	mu.RLock()
	defer mu.RUnlock()
	var s []string
	for k := range openers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
