package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testconn is the test connector program (testdata/testconn), built once;
// testconnZstd is it compressed, as deploys send it.
var (
	testconn     string
	testconnZstd []byte
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	dir, err := os.MkdirTemp("", "sluice-server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testconn = filepath.Join(dir, "testconn")
	code := 1
	if out, err := exec.Command("go", "build", "-ldflags=-s -w", "-o", testconn, "./testdata/testconn").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the test connector: %v\n%s", err, out)
	} else if testconnZstd, err = compressFile(testconn); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig is a server configuration for tests: no scheduler (tests
// trigger runs), quick retries.
func testConfig(dir string) Config {
	return Config{
		DataDir:       dir,
		Key:           bytes.Repeat([]byte{7}, 32),
		TickInterval:  -1,
		RetryBase:     300 * time.Millisecond,
		RetryMax:      2 * time.Second,
		LockWait:      200 * time.Millisecond,
		ShutdownGrace: 2 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// harness is a running server and an HTTP client for it.
type harness struct {
	t    testing.TB
	srv  *Server
	web  *httptest.Server
	key  string
	cfg  Config
	open bool
	// noStart serves the API without starting workers.
	noStart bool
	// rawUpload deploys the build uncompressed.
	rawUpload bool
}

func startServer(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, cfg: cfg}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx := context.Background()
	srv, err := Open(ctx, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if !h.noStart {
		if err := srv.Start(ctx); err != nil {
			srv.Close(ctx)
			h.t.Fatal(err)
		}
	}
	h.srv, h.open = srv, true
	h.web = httptest.NewServer(srv.Handler())
	if h.key == "" {
		_, key, err := srv.CreateAPIKey(ctx, "test")
		if err != nil {
			h.t.Fatal(err)
		}
		h.key = key
	}
}

func (h *harness) stop() {
	if !h.open {
		return
	}
	h.open = false
	h.web.Close()
	if err := h.srv.Close(context.Background()); err != nil {
		h.t.Errorf("close the server: %v", err)
	}
}

// call sends a request with the API key and returns the status and body.
func (h *harness) call(method, path string, body any) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.web.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// must sends a request that must answer want, and decodes the body into out.
func (h *harness) must(method, path string, body any, want int, out any) {
	h.t.Helper()
	status, b := h.call(method, path, body)
	if status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// duckDest creates a DuckDB destination in a fresh file and returns the file.
func (h *harness) duckDest(name string) string {
	h.t.Helper()
	path := filepath.Join(h.t.TempDir(), "warehouse.db")
	h.must("POST", "/api/destinations", map[string]string{"name": name, "url": "duckdb:" + path}, 201, nil)
	return path
}

// deploy uploads the test connector as the client of `sluice deploy` does.
func (h *harness) deploy(conn, dest string, cfg map[string]string, schedule string) DeployResult {
	h.t.Helper()
	status, b := h.deployRaw(conn, dest, cfg, schedule, testconn)
	if status/100 != 2 {
		h.t.Fatalf("deploy: status %d: %s", status, b)
	}
	var res DeployResult
	if err := json.Unmarshal(b, &res); err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) deployRaw(conn, dest string, cfg map[string]string, schedule, bin string) (int, []byte) {
	h.t.Helper()
	req := DeployRequest{Connection: conn, Destination: dest, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if cfg != nil {
		req.Configuration = map[string]json.RawMessage{}
		for k, v := range cfg {
			b, _ := json.Marshal(v)
			req.Configuration[k] = b
		}
	}
	if schedule != "" {
		req.Schedule = &schedule
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	req.SHA256 = hex.EncodeToString(sum[:])
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	meta, _ := mw.CreateFormField("metadata")
	json.NewEncoder(meta).Encode(req)
	// Compressed, as sluice deploy sends it; h.rawUpload sends it as is.
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="binary"; filename="connector"`)
	if h.rawUpload {
		hdr.Set("Content-Type", "application/octet-stream")
	} else {
		hdr.Set("Content-Type", EncodingZstd)
	}
	part, _ := mw.CreatePart(hdr)
	switch {
	case h.rawUpload:
		part.Write(data)
	case bin == testconn:
		part.Write(testconnZstd)
	default:
		z, err := compressFile(bin)
		if err != nil {
			h.t.Fatal(err)
		}
		part.Write(z)
	}
	mw.Close()
	hreq, _ := http.NewRequest("POST", h.web.URL+"/api/deploy", &body)
	hreq.Header.Set("Authorization", "Bearer "+h.key)
	hreq.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) runs(conn string) []Run {
	h.t.Helper()
	var res struct{ Runs []Run }
	h.must("GET", "/api/connections/"+conn+"/runs?limit=500", nil, 200, &res)
	return res.Runs
}

func (h *harness) connection(conn string) Connection {
	h.t.Helper()
	var c Connection
	h.must("GET", "/api/connections/"+conn, nil, 200, &c)
	return c
}

// waitRuns polls the connection's runs (newest first) until cond holds.
// The deadline is a safety net against a hung test, not an assertion on
// speed.
func (h *harness) waitRuns(conn string, what string, cond func([]Run) bool) []Run {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		runs := h.runs(conn)
		if cond(runs) {
			return runs
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(runs, "", "  ")
			h.t.Fatalf("waiting for %s: gave up; runs:\n%s", what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finished counts runs that ended with status.
func finished(runs []Run, status string) int {
	n := 0
	for _, r := range runs {
		if r.Status == status {
			n++
		}
	}
	return n
}

func (h *harness) logs(runID int64) []LogLine {
	h.t.Helper()
	var p LogPage
	h.must("GET", fmt.Sprintf("/api/runs/%d/logs?limit=5000", runID), nil, 200, &p)
	return p.Lines
}

func logText(lines []LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", l.Level, l.Message)
	}
	return b.String()
}

func sleepPoll() { time.Sleep(50 * time.Millisecond) }

func compressFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	enc.Write(data)
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
