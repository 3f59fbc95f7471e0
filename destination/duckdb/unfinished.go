package duckdb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// DuckDB creates a database file in four steps: it opens the file (O_CREAT),
// locks it, writes its three 4 KiB headers and syncs. A process killed
// before the third header is written leaves a file DuckDB will not open
// again ("exists, but it is not a valid DuckDB database file"), so the
// first run of a connector killed in its first milliseconds would leave a
// warehouse that no later run could open. Such a file is shorter than the
// headers, and DuckDB starts the write-ahead log only after them, so it
// cannot hold a committed row: it is removed, and DuckDB creates the file
// anew. Anything else DuckDB refuses is left as it is.
//
// The check must not race a process creating the same file: DuckDB takes
// its lock just after creating the file, so the file must be at least a
// second old (or waited for) and its lock free.

// headersSize is the size of a new DuckDB file once its headers are written.
const headersSize = 3 * 4096

// removeUnfinished removes the database file at path if it is the leftover
// of a creation cut short, as above, and no other process holds it.
func removeUnfinished(path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() >= headersSize {
		return nil
	}
	if wal, err := os.Stat(path + ".wal"); err == nil && wal.Size() > 0 {
		return nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A creator takes its lock microseconds after creating the file, so a
	// file made in the last second gets the rest of that second first:
	// one being created then holds the lock or has its headers.
	if wait := time.Second - time.Since(fi.ModTime()); wait > 0 {
		time.Sleep(min(wait, time.Second))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	// DuckDB's own lock: a process that holds it is creating the file now.
	if !tryLock(f) {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Size() >= headersSize {
		return nil
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the unfinished warehouse file %s: %w", path, err)
	}
	os.Remove(path + ".wal")
	slog.Warn("the warehouse file was left unfinished by a run stopped while creating it (it holds no data): creating it anew", "path", path, "bytes", fi.Size())
	return nil
}
