package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crashed-worker tests run a worker in another process (this test
// program, started again with workerEnv set), kill it with SIGKILL while it
// runs a sync, and check that the run is marked failed and retried by
// another process, and that the connector did not outlive its worker.

const (
	workerEnv     = "SLUICE_TEST_WORKER_DATA" // the data folder
	workerDBEnv   = "SLUICE_TEST_WORKER_DB"   // the PostgreSQL store, if any
	workerRescEnv = "SLUICE_TEST_WORKER_RESCUE"
)

// workerMain is the test program as a worker process: it works syncs until
// it is killed.
func workerMain() int {
	cfg := testConfig(os.Getenv(workerEnv))
	cfg.DB = os.Getenv(workerDBEnv)
	if d, err := time.ParseDuration(os.Getenv(workerRescEnv)); err == nil {
		cfg.RescueAfter = d
	}
	ctx := context.Background()
	srv, err := Open(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("worker started")
	select {}
}

// startWorkerProcess starts a worker process on cfg's store.
func startWorkerProcess(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+cfg.DataDir, workerDBEnv+"="+cfg.DB, workerRescEnv+"="+cfg.RescueAfter.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "worker started") {
		t.Fatalf("the worker process did not start: %q", buf[:n])
	}
	return cmd
}

// waitPID waits for the hanging test connector to write its process id.
func waitPID(t *testing.T, file string) int {
	t.Helper()
	d := waitDeadline()
	for {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil {
				return pid
			}
		}
		d.check(t, "the connector's pid in "+file)
	}
}

// waitGone waits for a process to end (the kernel's parent-death signal
// kills a connector whose worker died).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	d := waitDeadline()
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		// A zombie is gone too: it runs nothing; its parent (dead) will
		// not reap it, init will.
		if b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); rerr == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return
			}
		}
		d.check(t, fmt.Sprintf("connector process %d to end", pid))
	}
}

// crashWorkerScenario deploys a connector that hangs on its first run, has
// a worker process run it, kills that process, then has h's server (started
// by start) retry it.
func crashWorkerScenario(t *testing.T, h *harness, conn, destName string, start func()) {
	failFile := filepath.Join(t.TempDir(), "failed")
	h.deploy(conn, destName, map[string]string{"fail_file": failFile, "fail_mode": "hang"}, "manual")
	worker := startWorkerProcess(t, h.cfg)
	h.must("POST", "/api/connections/"+conn+"/sync", nil, 202, nil)
	pid := waitPID(t, failFile+".pid")
	runs := h.runs(conn)
	if len(runs) != 1 || runs[0].Status != RunRunning || !strings.HasPrefix(runs[0].Worker, fmt.Sprintf("%s/%d/", hostname(), worker.Process.Pid)) {
		t.Fatalf("the worker process should be running the sync: %+v", runs)
	}
	if err := worker.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	worker.Wait()
	waitGone(t, pid)

	start()
	runs = h.waitRuns(conn, "the killed run failed, then retried", func(r []Run) bool {
		return len(r) == 2 && r[0].Status == RunSucceeded
	})
	if r := runs[1]; r.Status != RunFailed || r.Error != orphanMessage || r.Attempt != 1 {
		t.Errorf("killed run: %+v", r)
	}
	if r := runs[0]; r.Trigger != "retry" || r.Attempt != 2 || r.Worker == runs[1].Worker {
		t.Errorf("retry: %+v", r)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// TestCrashedWorkerEmbedded: with the embedded store, the server that
// starts after a crash marks the crashed run failed and retries it at once.
func TestCrashedWorkerEmbedded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	// The API only, in this process: the worker process owns the data
	// folder until it is killed.
	h := &harness{t: t, cfg: cfg, noStart: true}
	h.start()
	t.Cleanup(h.stop)
	h.duckDest("local")
	crashWorkerScenario(t, h, "crashy", "local", func() {
		if err := h.srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
