//go:build !unix

package fileformat_test

import "time"

// csvCPUTime is unknown here: benchmarks report wall time only.
func csvCPUTime() time.Duration { return 0 }
