//go:build unix

package duckdb

import (
	"os"
	"syscall"
)

// tryLock takes the write lock DuckDB takes on its file (fcntl, the whole
// file) without waiting, and reports whether it got it. The lock goes
// with f's closing.
func tryLock(f *os.File) bool {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	return syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk) == nil
}
