package servecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testServerKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes, base64

// TestServeKeys creates, lists and revokes API keys, beside a running
// server, and the server honours them.
func TestServeKeys(t *testing.T) {
	t.Setenv("SLUICE_SERVER_KEY", testServerKey)
	data := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Serve(append(args, "--data", data), &out, &errb)
		return code, out.String(), errb.String()
	}
	// Flags go before the positional argument, after the subcommand.
	code, out, errs := run("keys", "create", "--name", "ci")
	key := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^sluice_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`).MatchString(key) || !strings.Contains(errs, "shown only this once") {
		t.Fatalf("keys create: %d %q %q", code, out, errs)
	}
	id := key[len("sluice_") : len("sluice_")+12]

	// The server, started on the same data folder.
	ctx, cancel := context.WithCancel(context.Background())
	var sout, serr syncBuffer
	done := make(chan int)
	go func() { done <- serve(ctx, []string{"--addr", "127.0.0.1:0", "--data", data}, &sout, &serr) }()
	addr := ""
	for deadline := time.Now().Add(60 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`http://(\S+)`).FindStringSubmatch(sout.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("serve did not start: %s %s", sout.String(), serr.String())
	}
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/info", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Errorf("with the new key: %d", s)
	}
	// A second server on the same data folder is refused.
	var out2, err2 bytes.Buffer
	if code := serve(context.Background(), []string{"--addr", "127.0.0.1:0", "--data", data}, &out2, &err2); code != 1 || !strings.Contains(err2.String(), "another sluice serve is using the data folder") {
		t.Errorf("second server: %d %s", code, err2.String())
	}

	code, out, _ = run("keys", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "ci") || strings.Contains(out, key) {
		t.Errorf("keys list: %d %s", code, out)
	}
	if code, out, _ = run("keys", "revoke", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("keys revoke: %d %s", code, out)
	}
	if s := get(); s != 401 {
		t.Errorf("with the revoked key: %d", s)
	}
	if code, _, errs = run("keys", "revoke", "nosuchid"); code != 1 || !strings.Contains(errs, "no API key with id") {
		t.Errorf("revoke unknown: %d %s", code, errs)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exited %d: %s", code, serr.String())
	}

	// Usage errors.
	if code, _, errs = run("keys"); code != 2 {
		t.Errorf("keys alone: %d %s", code, errs)
	}
	var o, e bytes.Buffer
	if code := Serve([]string{"--worker", "--data", data}, &o, &e); code != 2 || !strings.Contains(e.String(), "--db postgres://") {
		t.Errorf("--worker without --db: %d %s", code, e.String())
	}
}

func TestReadDotEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	os.WriteFile(p, []byte("# deploy settings\nSLUICE_SERVER=http://h:8080\nexport SLUICE_API_KEY='k 1'\nSLUICE_CONNECTION=\"shop\"\nSLUICE_SCHEDULE=15m # every quarter\n\n"), 0o600)
	got, err := readDotEnv(p)
	want := map[string]string{"SLUICE_SERVER": "http://h:8080", "SLUICE_API_KEY": "k 1", "SLUICE_CONNECTION": "shop", "SLUICE_SCHEDULE": "15m"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v %v, want %v", got, err, want)
	}
	os.WriteFile(p, []byte("OK=1\nnot a pair\n"), 0o600)
	if _, err := readDotEnv(p); err == nil || !strings.Contains(err.Error(), "line 2: not KEY=VALUE") {
		t.Errorf("bad line: %v", err)
	}
	if m, err := readDotEnv(filepath.Join(dir, "missing")); err != nil || m != nil {
		t.Errorf("missing file: %v %v", m, err)
	}
}

// jsonBody decodes a response.
func jsonBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
