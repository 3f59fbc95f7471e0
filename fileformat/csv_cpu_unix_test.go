//go:build unix

package fileformat_test

import (
	"syscall"
	"time"
)

// csvCPUTime is the process's user and system CPU time, for benchmarks on a
// shared machine, where wall time also counts other processes' turns.
func csvCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
