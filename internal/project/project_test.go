package project

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/filestore"
)

func TestStoresRoundTripKeepOtherKeys(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	orig := `{"destinations": {"wh": {"url": "duckdb:///x.db", "n": [1, 2.50]}}, "version": 1}`
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AddStore("lake", Store{Root: "s3://b/raw", Endpoint: "http://127.0.0.1:9", PathStyle: true, AccessKeyEnv: "LAKE_KEY", SecretKeyEnv: "LAKE_SECRET"}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddStore("local", Store{Root: "data"}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddStore("lake", Store{Root: "x"}); err == nil || !strings.Contains(err.Error(), "already saved") {
		t.Errorf("duplicate: %v", err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"access_key_env": "LAKE_KEY"`) {
		t.Errorf("saved file:\n%s", b)
	}
	g, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The other keys keep their values exactly (2.50 stays 2.50).
	var c bytes.Buffer
	json.Compact(&c, g.rest["destinations"])
	if c.String() != `{"wh":{"url":"duckdb:///x.db","n":[1,2.50]}}` || string(g.rest["version"]) != "1" || len(g.rest) != 2 {
		t.Errorf("other keys: %s %s", c.String(), g.rest)
	}
	if !slices.Equal(g.StoreNames(), []string{"lake", "local"}) || g.Stores["lake"].SecretKeyEnv != "LAKE_SECRET" {
		t.Errorf("reloaded: %+v", g.Stores)
	}
	if err := g.RemoveStore("lake"); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveStore("lake"); err == nil || !strings.Contains(err.Error(), "no store named lake in "+p+" (saved: local)") {
		t.Errorf("remove twice: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	for content, want := range map[string]string{
		`[]`:                                "not a JSON object",
		"{\n\"a\": }":                       "line 2",
		`{"stores": []}`:                    `"stores" must be an object`,
		`{"stores": {"x": {}}}`:             "store x has no root",
		`{"stores": {"9x": {"root": "a"}}}`: `store name "9x"`,
		`{"stores": {"x": {"root": "a", "secret_key_env": "wJalrXUtnFEMI/K7MDENG"}}}`: "must be the NAME of an environment variable",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", content, err, want)
		}
	}
	f, err := Load(t.TempDir())
	if err != nil || len(f.Stores) != 0 {
		t.Errorf("missing file: %v %v", f, err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	f, _ := Load(dir)
	f.AddStore("lake", Store{Root: "s3://b/raw", Region: "eu-west-1", AccessKeyEnv: "T_LAKE_KEY", SecretKeyEnv: "T_LAKE_SECRET"})
	f.AddStore("data", Store{Root: "files/data"})
	t.Setenv("T_LAKE_KEY", "AKIDEXAMPLE")
	t.Setenv("T_LAKE_SECRET", "s3cr3t-value")

	r, err := f.Resolve("lake", filestore.Options{Endpoint: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	want := Resolved{Root: "s3://b/raw", Store: "lake", Options: filestore.Options{Endpoint: "http://127.0.0.1:9", Region: "eu-west-1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "s3cr3t-value"}}
	if r != want {
		t.Errorf("lake: %+v", r)
	}
	if r, err := f.Resolve("@data", filestore.Options{}); err != nil || r.Root != filepath.Join(dir, "files/data") {
		t.Errorf("@data: %+v %v", r, err)
	}
	for _, plain := range []string{"./lake", "s3://other", "/abs/path", "elsewhere"} {
		if r, err := f.Resolve(plain, filestore.Options{Region: "x"}); err != nil || r.Root != plain || r.Store != "" || r.Options.Region != "x" {
			t.Errorf("%s: %+v %v", plain, r, err)
		}
	}
	// A folder of a store's name makes the bare name ambiguous.
	os.Mkdir(filepath.Join(dir, "data"), 0o755)
	if _, err := f.Resolve("data", filestore.Options{}); err == nil || !strings.Contains(err.Error(), `"data" is both a store saved in`) || !strings.Contains(err.Error(), "write @data for the store or ./data for the folder") {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := f.Resolve("@nope", filestore.Options{}); err == nil || !strings.Contains(err.Error(), "no store named nope") {
		t.Errorf("@nope: %v", err)
	}
	t.Setenv("T_LAKE_SECRET", "")
	_, err = f.Resolve("@lake", filestore.Options{})
	if err == nil || !strings.Contains(err.Error(), "the environment variable T_LAKE_SECRET (its secret access key) is not set") {
		t.Errorf("unset secret: %v", err)
	}
}

func writeProject(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDestinationForms(t *testing.T) {
	// No destination saved.
	f, err := Load(writeProject(t, `{"stores": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	if u, ok, err := f.DestinationURL(); u != "" || ok || err != nil {
		t.Errorf("none saved: %q %v %v", u, ok, err)
	}
	// A URL without a password, as a string.
	f, err = Load(writeProject(t, `{"destination": "duckdb:files/prod.db"}`))
	if err != nil {
		t.Fatal(err)
	}
	if u, ok, err := f.DestinationURL(); u != "duckdb:files/prod.db" || !ok || err != nil {
		t.Errorf("string form: %q %v %v", u, ok, err)
	}
	// An object whose password comes from the environment, escaped as a
	// URL needs.
	const secret = "s3cr:t/@pw"
	t.Setenv("SLUICE_TEST_DW_PASSWORD", secret)
	dir := writeProject(t, `{"destination": {"url": "postgres://loader@db:5432/dw?sslmode=disable", "password_env": "SLUICE_TEST_DW_PASSWORD"}, "other": [1.50]}`)
	f, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, ok, err := f.DestinationURL()
	if err != nil || !ok {
		t.Fatalf("object form: %v %v", ok, err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := parsed.User.Password(); pw != secret || parsed.User.Username() != "loader" || parsed.Host != "db:5432" || parsed.RawQuery != "sslmode=disable" {
		t.Errorf("object form gave %q", u)
	}
	// Saving keeps the reference, never the password, and the other keys.
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	if strings.Contains(string(b), "s3cr") || !strings.Contains(string(b), `"password_env": "SLUICE_TEST_DW_PASSWORD"`) || !strings.Contains(string(b), "1.50") {
		t.Errorf("saved file:\n%s", b)
	}
	// The variable unset: an error naming it, with no value in it.
	t.Setenv("SLUICE_TEST_DW_PASSWORD", "")
	if _, ok, err := f.DestinationURL(); !ok || err == nil || !strings.Contains(err.Error(), "SLUICE_TEST_DW_PASSWORD, which is not set") {
		t.Errorf("unset variable: %v %v", ok, err)
	}
}

func TestDestinationRefused(t *testing.T) {
	const secret = "hunter2-not-shown"
	for _, c := range []struct{ content, want string }{
		{`{"destination": "postgres://loader:` + secret + `@db/dw"}`, "holds a password"},
		{`{"destination": {"url": "postgres://loader:` + secret + `@db/dw"}}`, "holds a password"},
		{`{"destination": {"url": "postgres://loader@db/dw", "password_env": "` + secret + `"}}`, "NAME of an environment variable"},
		{`{"destination": {"url": "postgres://db/dw", "password_env": "DW_PASSWORD"}}`, "names no user"},
		{`{"destination": {"url": "postgres://loader@db/dw", "password": "` + secret + `"}}`, `"destination" must be a URL or`},
		{`{"destination": {"password_env": "DW_PASSWORD"}}`, "has no url"},
		{`{"destination": 42}`, `"destination" must be a URL or`},
		{`{"destination": "postgres://loader@db:bad` + secret + `/dw"}`, "not a valid URL"},
	} {
		_, err := Load(writeProject(t, c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.content, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", c.content, err)
		}
	}
	// Save refuses what Load would.
	f, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f.Destination = &Destination{URL: "postgres://u:" + secret + "@db/dw"}
	if err := f.Save(); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("save with a password: %v", err)
	}
}
