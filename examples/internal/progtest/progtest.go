// Package progtest runs an example connector as a user does: built once
// into a program, then started with arguments in a folder. It serves the
// examples' own tests; `sluice init` does not copy it (see examples.FS).
package progtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Main builds the package in the current folder into a temporary program,
// sets *program to its path, runs the tests and exits; call it from
// TestMain.
func Main(m *testing.M, name string, program *string) {
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*program = filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		*program += ".exe"
	}
	code := 1
	if out, err := exec.Command("go", "build", "-o", *program, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// Result is what a run of the program printed and its exit status.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run starts program with args in dir and waits for it.
func Run(t testing.TB, program, dir string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(program, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}
