package s3test

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal stops the server if the test binary dies without
// running its cleanups (a panic, a timeout, a kill), so that no server is
// left listening.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
