//go:build !linux

package s3test

import "os/exec"

// setParentDeathSignal has no portable equivalent outside Linux: there a
// crashed test binary may leave the server running.
func setParentDeathSignal(*exec.Cmd) {}
