package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

func init() { Register("file", openLocal) }

// local is a folder on this machine.
type local struct{ root string }

func openLocal(_ context.Context, u *url.URL, _ Options) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("store %q: a file URL names a local folder (file:///path); host %q is not supported", u.String(), u.Host)
	}
	root := filepath.FromSlash(u.Path)
	st, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store %s: the folder does not exist; create it first", root)
	case err != nil:
		return nil, fmt.Errorf("store %s: %w", root, err)
	case !st.IsDir():
		return nil, fmt.Errorf("store %s: not a folder (a store root is a folder that holds the table files)", root)
	}
	return &local{root: root}, nil
}

func (l *local) String() string { return l.root }
func (l *local) Close() error   { return nil }

// path maps a key to a file path, refusing keys that would leave the root.
func (l *local) path(key string) (string, error) {
	clean := path.Clean("/" + key)
	if key == "" || clean == "/" || strings.Contains(key, `\`) {
		return "", fmt.Errorf("store %s: invalid key %q", l.root, key)
	}
	return filepath.Join(l.root, filepath.FromSlash(clean[1:])), nil
}

func (l *local) Local(key string) (string, bool) {
	p, err := l.path(key)
	return p, err == nil
}

func (l *local) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		// Walk only the folder the prefix lies in: a prefix "events/date="
		// must not walk the whole root.
		// Cleaned under "/" so that a prefix "../" cannot walk the
		// folder above the root.
		dir := l.root
		if i := strings.LastIndex(prefix, "/"); i >= 0 {
			dir = filepath.Join(l.root, filepath.FromSlash(path.Clean("/"+prefix[:i])))
		}
		var objs []Object
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return fs.SkipAll
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(l.root, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			if d.IsDir() {
				if p != dir && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
					return fs.SkipDir
				}
				return nil
			}
			if !strings.HasPrefix(key, prefix) || !d.Type().IsRegular() || isTemp(d.Name()) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			objs = append(objs, Object{Key: key, Size: info.Size(), ModTime: info.ModTime().UTC()})
			return nil
		})
		if err != nil {
			yield(Object{}, fmt.Errorf("store %s: list %q: %w", l.root, prefix, err))
			return
		}
		// WalkDir visits in lexical order per folder, which is not key
		// order ("a/b" vs "a.csv"); sort so every driver agrees.
		sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
		for _, o := range objs {
			if !yield(o, nil) {
				return
			}
		}
	}
}

// isTemp tells a writer's temporary file (see Create), which is not a file
// of the store until the writer's Close renames it.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

func (l *local) Stat(ctx context.Context, key string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("store %s: stat %s: %w", l.root, key, err)
	}
	p, err := l.path(key)
	if err != nil {
		return Object{}, err
	}
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && info.IsDir()) {
		return Object{}, fmt.Errorf("store %s: %s: %w", l.root, key, ErrNotExist)
	}
	if err != nil {
		return Object{}, fmt.Errorf("store %s: %w", l.root, err)
	}
	return Object{Key: key, Size: info.Size(), ModTime: info.ModTime().UTC()}, nil
}

type localReader struct {
	*os.File
	size int64
}

func (r localReader) Size() int64 { return r.size }

func (l *local) Open(ctx context.Context, key string) (Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store %s: open %s: %w", l.root, key, err)
	}
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store %s: %s: %w", l.root, key, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", l.root, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store %s: %w", l.root, err)
	}
	if info.IsDir() {
		f.Close()
		return nil, fmt.Errorf("store %s: %s is a folder: %w", l.root, key, ErrNotExist)
	}
	return localReader{f, info.Size()}, nil
}

// localWriter writes beside the target and renames on Close, so a reader
// never sees a half-written file.
type localWriter struct {
	*os.File
	ctx    context.Context
	target string
	done   bool
}

// Write fails once the context is cancelled, as a remote store's does.
func (w *localWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.target, err)
	}
	return w.File.Write(p)
}

func (w *localWriter) Close() error {
	if w.done {
		return nil
	}
	// A writer whose context was cancelled may hold a partial file: never
	// publish it.
	if err := w.ctx.Err(); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.target, err)
	}
	w.done = true
	// CreateTemp made the file private; a published file is readable as
	// any other file the user writes.
	if err := w.File.Chmod(0o644); err != nil {
		w.File.Close()
		os.Remove(w.Name())
		return err
	}
	if err := w.File.Sync(); err != nil {
		w.File.Close()
		os.Remove(w.Name())
		return err
	}
	if err := w.File.Close(); err != nil {
		os.Remove(w.Name())
		return err
	}
	if err := os.Rename(w.Name(), w.target); err != nil {
		os.Remove(w.Name())
		return err
	}
	return nil
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.File.Close()
	return os.Remove(w.Name())
}

func (l *local) Create(ctx context.Context, key string) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store %s: create %s: %w", l.root, key, err)
	}
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("store %s: %w", l.root, err)
	}
	// The temporary name starts with a dot so that table listings, which
	// skip hidden files, never show it.
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", l.root, err)
	}
	return &localWriter{File: f, ctx: ctx, target: p}, nil
}

func (l *local) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store %s: delete %s: %w", l.root, key, err)
	}
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s: %w", l.root, err)
	}
	l.pruneEmpty(filepath.Dir(p))
	return nil
}

// pruneEmpty removes dir and its parents up to the root while they are
// empty: a folder is a table to a reader, so none is left behind.
func (l *local) pruneEmpty(dir string) {
	for ; dir != l.root && strings.HasPrefix(dir, l.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
}

func (l *local) Rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store %s: rename %s: %w", l.root, from, err)
	}
	src, err := l.path(from)
	if err != nil {
		return err
	}
	dst, err := l.path(to)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("store %s: %w", l.root, err)
	}
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store %s: rename %s: %w", l.root, from, ErrNotExist)
		}
		return fmt.Errorf("store %s: %w", l.root, err)
	}
	l.pruneEmpty(filepath.Dir(src))
	return nil
}
