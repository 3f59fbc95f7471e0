//go:build !unix

package server

import "os/exec"

func prepareCommand(cmd *exec.Cmd) {}

// textBusy is Unix's: elsewhere a program being written is not started.
func textBusy(err error) bool { return false }

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

// lockDataDir does not lock on this platform: run one server per data
// folder.
func lockDataDir(dir string) (func(), error) { return func() {}, nil }
