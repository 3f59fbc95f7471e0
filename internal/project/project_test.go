package project

import (
	"bytes"
	"encoding/json"
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
