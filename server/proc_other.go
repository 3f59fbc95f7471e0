//go:build !unix

package server

import "os/exec"

func prepareCommand(cmd *exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

// lockDataDir does not lock on this platform: run one server per data
// folder.
func lockDataDir(dir string) (func(), error) { return func() {}, nil }
