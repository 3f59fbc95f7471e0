//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// prepareCommand puts the connector in its own process group, so a
// cancelled run stops the connector and anything it started, and (on
// Linux) has the kernel kill it if the server dies: an orphaned connector
// must not keep writing while a retry of its run starts elsewhere.
func prepareCommand(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		// SIGTERM first: the connector's run stops at its next
		// operation and rolls back what it had not committed.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
}

// textBusy reports whether err is exec's "text file busy".
func textBusy(err error) bool { return errors.Is(err, syscall.ETXTBSY) }

// killGroup kills what is left of a connector's process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// lockDataDir makes sure one server process at a time uses an embedded
// store: its locks (memLocker) are in-process. The lock goes with the
// process, however it ends.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, "server.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data folder lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sluice serve is using the data folder %s: stop it, or give this one its own --data (several workers need --db postgres://...)", dir)
		}
		return nil, fmt.Errorf("data folder lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
