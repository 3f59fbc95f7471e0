//go:build unix

package server

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// busyProgram writes a copy of /bin/true and returns its path and the
// descriptor that still holds it open for writing, as a fork taken in the
// middle of binaryPath's extract would.
func busyProgram(t *testing.T) (string, *os.File) {
	t.Helper()
	body, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skipf("no /bin/true to copy: %v", err)
	}
	path := filepath.Join(t.TempDir(), "connector")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(path).Start(); !errors.Is(err, syscall.ETXTBSY) {
		t.Skipf("this kernel starts a program open for writing (%v): nothing to try again", err)
	}
	return path, f
}

// TestStartCommandTextBusy: the first start finds the program busy; the
// descriptor is closed before the second, which starts it.
func TestStartCommandTextBusy(t *testing.T) {
	path, f := busyProgram(t)
	calls := 0
	cmd, err := startCommand(context.Background(), func() *exec.Cmd {
		calls++
		if calls == 2 {
			f.Close()
		}
		return exec.Command(path)
	})
	if err != nil {
		t.Fatalf("start after the writer closed: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the program: %v", err)
	}
	if calls != 2 {
		t.Errorf("%d commands built, want 2 (one busy, one started)", calls)
	}
}

// TestStartCommandTextBusyCancelled: a run stopped while the program is
// busy returns at once, with both reasons.
func TestStartCommandTextBusyCancelled(t *testing.T) {
	path, _ := busyProgram(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := startCommand(ctx, func() *exec.Cmd {
		calls++
		cancel()
		return exec.Command(path)
	})
	if !errors.Is(err, syscall.ETXTBSY) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want text file busy and context canceled", err)
	}
	if calls != 1 {
		t.Errorf("%d commands built after the cancel, want 1", calls)
	}
}
