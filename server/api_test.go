package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAuth: no key, a malformed, unknown, wrong or revoked key all get the
// same 401, which says nothing more.
func TestAuth(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	ctx := context.Background()
	k2, key2, err := h.srv.CreateAPIKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key2, "sluice_"+k2.ID+"_") || len(key2) < 50 {
		t.Fatalf("key %q", key2)
	}
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", h.web.URL+"/api/connections", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, _ := get("Bearer " + key2); status != 200 {
		t.Fatalf("valid key: %d", status)
	}
	wrongSecret := key2[:len(key2)-4] + "AAAA"
	if err := h.srv.RevokeAPIKey(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, auth := range []string{"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer nonsense",
		"Bearer sluice_000000000000_" + strings.Repeat("A", 43), "Bearer " + wrongSecret, "Bearer " + key2, h.key} {
		status, body := get(auth)
		if status != 401 {
			t.Errorf("Authorization %q: status %d", auth, status)
		}
		bodies = append(bodies, body)
	}
	for _, b := range bodies {
		if b != bodies[0] || !strings.Contains(b, `"error": "unauthorized"`) {
			t.Errorf("401 bodies differ or say more: %q vs %q", b, bodies[0])
		}
	}
	// Every route is behind the key, unknown ones too.
	for _, rt := range routes {
		req, _ := http.NewRequest(rt.method, h.web.URL+strings.NewReplacer("{name}", "x", "{id}", "1").Replace(rt.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%s %s without a key: %d", rt.method, rt.path, resp.StatusCode)
		}
	}
	// The key list shows the revocation; revoking an unknown id fails.
	keys, _ := h.srv.ListAPIKeys(ctx)
	if len(keys) != 2 || keys[1].RevokedAt == nil || keys[1].LastUsedAt == nil || keys[0].RevokedAt != nil {
		t.Errorf("keys: %+v", keys)
	}
	if err := h.srv.RevokeAPIKey(ctx, "nosuchkey"); err == nil || !strings.Contains(err.Error(), "no API key with id") {
		t.Errorf("revoke unknown: %v", err)
	}
}

// TestValidation: bad input is a 400 naming the field; a name taken a 409.
func TestValidation(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	h.duckDest("local")
	cases := []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"POST", "/api/destinations", map[string]any{"name": "Bad-Name", "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": "pg_x", "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": "a__b", "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": "ab_", "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": "1ab", "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": strings.Repeat("a", 64), "url": "duckdb:/tmp/x.db"}, 400, "name"},
		{"POST", "/api/destinations", map[string]any{"name": "rel", "url": "duckdb:rel.db"}, 400, "url"},
		{"POST", "/api/destinations", map[string]any{"name": "ftp", "url": "ftp://host/x"}, 400, "url"},
		{"POST", "/api/destinations", map[string]any{"name": "nourl"}, 400, "url"},
		{"POST", "/api/destinations", map[string]any{"name": "local", "url": "duckdb:/tmp/y.db"}, 409, ""},
		{"POST", "/api/destinations", map[string]any{"name": "x", "url": "duckdb:/tmp/x.db", "colour": "red"}, 400, "colour"},
		{"POST", "/api/destinations", map[string]any{"name": 7}, 400, "name"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "nowhere"}, 400, "destination"},
		{"POST", "/api/connections", map[string]any{"name": "c1"}, 400, "destination"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "local", "schedule": "61 * * * *"}, 400, "schedule"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "local", "schedule": "15 minutes"}, 400, "schedule"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "local", "schedule": "10ms"}, 400, "schedule"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "local", "configuration": map[string]any{"port": 5432}}, 400, "configuration.port"},
		{"POST", "/api/connections", map[string]any{"name": "c1", "destination": "local", "paused": "yes"}, 400, "paused"},
		{"GET", "/api/connections/nope", nil, 404, ""},
		{"GET", "/api/runs/abc", nil, 400, "id"},
		{"GET", "/api/runs/99", nil, 404, ""},
		{"GET", "/api/nothing", nil, 404, ""},
	}
	for _, c := range cases {
		status, b := h.call(c.method, c.path, c.body)
		var e errorBody
		json.Unmarshal(b, &e)
		if status != c.status || e.Field != c.field || e.Error == "" {
			t.Errorf("%s %s %v: %d %s, want %d field %q", c.method, c.path, c.body, status, b, c.status, c.field)
		}
	}
	// Valid schedules.
	for i, s := range []string{"15m", "1h30m", "*/5 * * * *", "@hourly", "@every 2h", "CRON_TZ=Europe/Paris 0 6 * * 1-5", "manual"} {
		name := "ok" + string(rune('a'+i))
		h.must("POST", "/api/connections", map[string]any{"name": name, "destination": "local", "schedule": s}, 201, nil)
	}
	var c Connection
	h.must("POST", "/api/connections", map[string]any{"name": "dflt", "destination": "local"}, 201, &c)
	if c.Schedule != DefaultSchedule || c.Status != "not_deployed" || c.NextRunAt != nil {
		t.Errorf("default connection: %+v", c)
	}
	status, b := h.call("POST", "/api/connections/dflt/sync", nil)
	if status != 409 || !strings.Contains(string(b), "has no code") {
		t.Errorf("sync without code: %d %s", status, b)
	}
	status, b = h.call("DELETE", "/api/destinations/local", nil)
	if status != 409 || !strings.Contains(string(b), "used by") {
		t.Errorf("delete a destination in use: %d %s", status, b)
	}
	h.must("DELETE", "/api/connections/dflt", nil, 204, nil)
}

// TestSecretsMasked: the API masks secrets, and the store holds them only
// sealed.
func TestSecretsMasked(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Key = nil // the key file
	t.Setenv(KeyEnv, "")
	h := startServer(t, cfg)
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	const pw, token = "pg-pass-word-77", "tok-secret-99"
	var d Destination
	h.must("POST", "/api/destinations", map[string]any{"name": "wh", "url": "postgres://loader:" + pw + "@db.example:5432/dw"}, 201, &d)
	if d.URL != "postgres://loader:"+Mask+"@db.example:5432/dw" {
		t.Errorf("destination URL shown as %q", d.URL)
	}
	var c Connection
	h.must("POST", "/api/connections", map[string]any{"name": "src", "destination": "wh", "configuration": map[string]string{
		"api_token": token, "region": "eu", "source_url": "https://u:" + pw + "@api.example"}}, 201, &c)
	if c.Configuration["api_token"] != Mask || c.Configuration["region"] != "eu" || strings.Contains(c.Configuration["source_url"], pw) {
		t.Errorf("configuration shown as %v", c.Configuration)
	}
	// The mask sent back keeps the secret; the URL password is kept too.
	h.must("PATCH", "/api/connections/src", map[string]any{"configuration": map[string]string{"api_token": Mask, "region": "us"}}, 200, &c)
	h.must("PATCH", "/api/destinations/wh", map[string]any{"url": d.URL}, 200, nil)
	row, _ := h.srv.st.connByName(context.Background(), "src")
	cfgJSON, _ := h.srv.oldConfig(&row)
	if cfgJSON["api_token"] != token || cfgJSON["region"] != "us" {
		t.Errorf("stored configuration after a masked update: %v", cfgJSON)
	}
	dr, _ := h.srv.st.destByName(context.Background(), "wh")
	if u, _ := h.srv.seal.open(purposeDestURL, dr.urlSealed); !strings.Contains(string(u), pw) {
		t.Errorf("stored URL lost its password: %s", u)
	}
	h.stop()
	// Nothing in the data folder holds a secret in clear.
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{pw, token} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in clear", p, s)
			}
		}
		return nil
	})
	// Another key does not open this store.
	cfg.Key = bytes.Repeat([]byte{9}, 32)
	if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not the one this metadata store was created with") {
		t.Errorf("open with another key: %v", err)
	}
}

// TestOpenAPIMatchesRoutes: every route is documented, and every documented
// operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	resp, err := http.Get(h.web.URL + "/api/openapi.json") // no key needed
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %d %v %q", resp.StatusCode, err, doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	served := []string{"GET /api/openapi.json"}
	for _, rt := range routes {
		served = append(served, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	// References resolve.
	raw, _ := os.ReadFile("openapi.json")
	var all map[string]any
	json.Unmarshal(raw, &all)
	for _, m := range regexp.MustCompile(`"\$ref": "#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(raw), -1) {
		comp := all["components"].(map[string]any)[m[1]].(map[string]any)
		if _, ok := comp[m[2]]; !ok {
			t.Errorf("dangling $ref %s/%s", m[1], m[2])
		}
	}
}

// TestDeployKeepsStateAndConfiguration: deploying again replaces the code
// and keeps the state; a new configuration replaces the old one, none keeps
// it.
func TestDeployKeepsStateAndConfiguration(t *testing.T) {
	t.Parallel()
	h := startServer(t, testConfig(t.TempDir()))
	h.duckDest("local")
	first := h.deploy("dep", "local", map[string]string{"rows": "1", "region": "eu"}, "manual")
	h.must("POST", "/api/connections/dep/sync", nil, 202, nil)
	h.waitRuns("dep", "first run", func(r []Run) bool { return finished(r, RunSucceeded) == 1 })

	// A different build (the same program with a byte appended runs the
	// same), no configuration: state and configuration stay.
	other := filepath.Join(t.TempDir(), "testconn2")
	data, _ := os.ReadFile(testconn)
	os.WriteFile(other, append(data, 0), 0o700)
	status, b := h.deployRaw("dep", "", nil, "", other)
	var res DeployResult
	if status != 200 || json.Unmarshal(b, &res) != nil || res.Created {
		t.Fatalf("second deploy: %d %s", status, b)
	}
	if res.Connection.Binary.SHA256 == first.Connection.Binary.SHA256 || res.Connection.Configuration["region"] != "eu" || res.Connection.Schedule != "manual" {
		t.Errorf("after a redeploy: %+v", res.Connection)
	}
	h.must("POST", "/api/connections/dep/sync", nil, 202, nil)
	runs := h.waitRuns("dep", "second run", func(r []Run) bool { return finished(r, RunSucceeded) == 2 })
	if runs[0].Binary != res.Connection.Binary.SHA256 {
		t.Errorf("second run used %s, not the new build", runs[0].Binary)
	}
	var sv StateView
	h.must("GET", "/api/connections/dep/state", nil, 200, &sv)
	if compact(sv.State) != `{"events":{"run":2},"items":{"rows":1}}` {
		t.Errorf("state after a redeploy and a run: %s (the run number must go on)", sv.State)
	}
	// An uncompressed upload works too.
	h.rawUpload = true
	res = h.deploy("dep", "", nil, "")
	h.rawUpload = false
	if res.Connection.Binary.SHA256 != first.Connection.Binary.SHA256 || res.Connection.Binary.Size != int64(len(data)) {
		t.Errorf("raw upload: %+v", res.Connection.Binary)
	}
	// A new configuration replaces the old one whole.
	res = h.deploy("dep", "local", map[string]string{"rows": "2"}, "")
	if _, ok := res.Connection.Configuration["region"]; ok || res.Connection.Configuration["rows"] != "2" {
		t.Errorf("configuration after a deploy with one: %v", res.Connection.Configuration)
	}
	// The old builds are gone from the store; one remains.
	var bins struct{ Binaries []BinaryUse }
	h.must("GET", "/api/binaries", nil, 200, &bins)
	var n int
	h.srv.st.queryRow(context.Background(), `SELECT COUNT(*) FROM sluice_binaries`).Scan(&n)
	if len(bins.Binaries) != 1 || n != 1 || !slices.Equal(bins.Binaries[0].Connections, []string{"dep"}) {
		t.Errorf("binaries: %+v (%d stored)", bins.Binaries, n)
	}
	status, b = h.deployRaw("newconn", "nowhere", nil, "", testconn)
	if status != 400 || !strings.Contains(string(b), `"field": "destination"`) {
		t.Errorf("deploy to an unknown destination: %d %s", status, b)
	}
}
