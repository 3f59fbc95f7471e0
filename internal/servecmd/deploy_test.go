package servecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/server"
)

// connectorFolder makes a connector folder outside the module, as a user
// has it (the server's test connector), and has Go resolve its module
// graph as it builds.
func connectorFolder(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(root, "server", "testdata", "testconn", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
	os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644)
	os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/deploytest\n\ngo 1.26\n\nrequire github.com/sluicedata/sluice v0.0.0\n\nreplace github.com/sluicedata/sluice => "+root+"\n"), 0o644)
	t.Setenv("GOFLAGS", "-mod=mod") // the folder's go.mod lists no indirect requirements
	return dir
}

// TestBuildConnectorTags: sluice deploy builds a connector with
// cli.BuildTags, so that its CSV loads go through Arrow; Go records the
// tags in the binary.
func TestBuildConnectorTags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := connectorFolder(t, filepath.Join(filepath.Dir(file), "..", ".."))
	t.Chdir(dir)
	out := filepath.Join(t.TempDir(), "conn")
	var log bytes.Buffer
	if err := buildConnector(context.Background(), out, runtime.GOOS, runtime.GOARCH, &log, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	info, err := exec.Command("go", "version", "-m", out).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, info)
	}
	if want := "-tags=" + cli.BuildTags; !strings.Contains(string(info), want) {
		t.Errorf("the connector was built without %s:\n%s", want, info)
	}
}

// TestDeploy deploys a connector folder to a real server with sluice
// deploy: created, run, deployed again from .env with the state and the
// configuration kept, then with a new configuration.
func TestDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a connector twice")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DataDir: t.TempDir(), Key: bytes.Repeat([]byte{1}, 32), TickInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { web.Close(); srv.Close(ctx) })
	_, key, err := srv.CreateAPIKey(ctx, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, web.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wh := filepath.Join(t.TempDir(), "wh.db")
	if r := call("POST", "/api/destinations", `{"name": "local", "url": "duckdb:`+wh+`"}`); r.StatusCode != 201 {
		t.Fatalf("create destination: %d", r.StatusCode)
	}

	dir := connectorFolder(t, root)
	os.WriteFile(filepath.Join(dir, "conf.json"), []byte(`{"rows": "2", "api_token": "tok-abc-123"}`), 0o600)
	for _, k := range []string{"SLUICE_SERVER", "SLUICE_API_KEY", "SLUICE_CONNECTION", "SLUICE_DEPLOY_DESTINATION", "SLUICE_CONFIGURATION", "SLUICE_SCHEDULE"} {
		t.Setenv(k, "")
	}
	t.Chdir(dir)

	deploy := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Deploy(args, &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := deploy("--server", web.URL, "--api-key", key, "--connection", "shop", "--destination", "local",
		"--configuration", "conf.json", "--schedule", "manual")
	if code != 0 || !strings.Contains(out, "connection shop created: destination local, schedule manual") || strings.Contains(out, "tok-abc-123") {
		t.Fatalf("first deploy: %d\n%s", code, out)
	}
	var c server.Connection
	jsonBody(t, call("GET", "/api/connections/shop", ""), &c)
	if c.Configuration["rows"] != "2" || c.Configuration["api_token"] != server.Mask {
		t.Errorf("connection: %+v", c)
	}
	if r := call("POST", "/api/connections/shop/sync", ""); r.StatusCode != 202 {
		t.Fatalf("sync: %d", r.StatusCode)
	}
	waitRun := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var res struct{ Runs []server.Run }
			jsonBody(t, call("GET", "/api/connections/shop/runs", ""), &res)
			if len(res.Runs) == n && res.Runs[0].Status == server.RunSucceeded {
				return
			}
			if len(res.Runs) == n && res.Runs[0].Status == server.RunFailed || time.Now().After(deadline) {
				t.Fatalf("runs: %+v", res.Runs)
			}
		}
	}
	waitRun(1)

	// Deployed again, every setting from .env, no configuration: the
	// stored one stays, and so does the state.
	os.WriteFile(".env", []byte("SLUICE_SERVER="+web.URL+"\nSLUICE_API_KEY="+key+"\nSLUICE_CONNECTION=shop\n"), 0o600)
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("main.go", append(src, []byte("\n// a change\n")...), 0o644)
	code, out = deploy()
	if code != 0 || !strings.Contains(out, "connection shop updated") {
		t.Fatalf("second deploy: %d\n%s", code, out)
	}
	jsonBody(t, call("GET", "/api/connections/shop", ""), &c)
	if c.Configuration["rows"] != "2" || c.Schedule != "manual" || c.Destination != "local" {
		t.Errorf("after a deploy without configuration: %+v", c)
	}
	if r := call("POST", "/api/connections/shop/sync", ""); r.StatusCode != 202 {
		t.Fatalf("sync: %d", r.StatusCode)
	}
	waitRun(2)
	var st server.StateView
	jsonBody(t, call("GET", "/api/connections/shop/state", ""), &st)
	var compact bytes.Buffer
	if err := json.Compact(&compact, st.State); err != nil || compact.String() != `{"events":{"run":2},"items":{"rows":2}}` {
		t.Errorf("state after a redeploy and a run: %s (the run number goes on from the kept state)", st.State)
	}

	// Errors a user can act on, before anything is built.
	code, out = deploy("--api-key", "sluice_000000000000_wrong")
	if code != 1 || !strings.Contains(out, "refused the API key (401)") {
		t.Errorf("wrong key: %d %s", code, out)
	}
	os.Remove(".env")
	code, out = deploy("--connection", "shop")
	if code != 2 || !strings.Contains(out, "--server is required") {
		t.Errorf("no server: %d %s", code, out)
	}
	code, out = deploy("--server", "http://127.0.0.1:1", "--api-key", "k", "--connection", "shop")
	if code != 1 || !strings.Contains(out, "cannot reach the server at http://127.0.0.1:1") {
		t.Errorf("no server there: %d %s", code, out)
	}
}
