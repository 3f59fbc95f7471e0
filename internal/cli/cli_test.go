package cli

// Unit tests of the command line's pieces. The commands themselves, run as a
// user runs them, are tested in examples/examples_test.go.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicedata/sluice/destination"
)

func TestParseConfiguration(t *testing.T) {
	cfg, err := ParseConfiguration("c.json", []byte(`{"api_key": "k-123", "page_size": "50", "empty": ""}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg) != 3 || cfg["api_key"] != "k-123" || cfg["page_size"] != "50" || cfg["empty"] != "" {
		t.Errorf("got %v", cfg)
	}

	for _, tc := range []struct{ in, key, value string }{
		{`{"page_size": 50}`, "page_size", "50"},
		{`{"ok": "fine", "token": {"secret": "s3cr3t-xyz"}}`, "token", "s3cr3t-xyz"},
		{`{"flag": true}`, "flag", "true"},
		{`{"list": ["a-secret-item"]}`, "list", "a-secret-item"},
		{`{"nothing": null}`, "nothing", "null"},
		{`{"nothing": null , "z": "1"}`, "nothing", "null"},
	} {
		_, err := ParseConfiguration("c.json", []byte(tc.in))
		if err == nil {
			t.Errorf("%s: no error", tc.in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `the value of "`+tc.key+`" is not a string`) {
			t.Errorf("%s: error %q does not name the key", tc.in, msg)
		}
		if strings.Contains(msg, tc.value) {
			t.Errorf("%s: error %q shows the value", tc.in, msg)
		}
	}
	for _, in := range []string{`[]`, `"x"`, `null`, `{`, ``, `{"a": "b"} {}`} {
		_, err := ParseConfiguration("c.json", []byte(in))
		if err == nil || !strings.Contains(err.Error(), "c.json: must be a JSON object of string values") {
			t.Errorf("%q: error %v", in, err)
		}
	}
}

func TestReadStateFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if b, err := readStateFile(missing, false); b != nil || err != nil {
		t.Errorf("missing, optional: %q, %v", b, err)
	}
	if _, err := readStateFile(missing, true); err == nil {
		t.Errorf("missing, required: no error")
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"cursor": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := readStateFile(good, false); err != nil || string(b) != `{"cursor": "x"}` {
		t.Errorf("good: %q, %v", b, err)
	}
	for _, content := range []string{`[]`, `null`, `1`, `"s"`, `{`, ``, `{} x`} {
		p := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readStateFile(p, false)
		if err == nil || !strings.Contains(err.Error(), "state file "+p+" is not a JSON object") {
			t.Errorf("%q: error %v", content, err)
		}
	}
}

func TestChooseState(t *testing.T) {
	a, b := []byte(`{"n":1}`), []byte(`{"n":2}`)
	rec := &destination.StateRecord{State: b, PrevHash: hashOf(a)}
	for _, tc := range []struct {
		name     string
		file     []byte
		rec      *destination.StateRecord
		explicit bool
		want     []byte
		note     string
	}{
		{"first sync", nil, nil, false, nil, ""},
		{"no warehouse state", a, nil, false, a, ""},
		{"explicit file", a, rec, true, a, ""},
		{"file lost", nil, rec, false, b, "state file missing"},
		{"in step", b, rec, false, b, ""},
		{"one behind", a, rec, false, b, "one checkpoint behind"},
		{"edited", []byte(`{"n":0}`), rec, false, []byte(`{"n":0}`), "using the file, as edited"},
	} {
		got, note := chooseState(tc.file, tc.rec, tc.explicit)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: state %s, want %s", tc.name, got, tc.want)
		}
		if (tc.note == "") != (note == "") || !strings.Contains(note, tc.note) {
			t.Errorf("%s: note %q, want one containing %q", tc.name, note, tc.note)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Errorf("the null device counts as a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(r) {
		t.Errorf("a pipe counts as a terminal")
	}
	if isTerminal(strings.NewReader("y\n")) {
		t.Errorf("a reader counts as a terminal")
	}
}

func TestResetWithoutTerminal(t *testing.T) {
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.db")
	st := filepath.Join(dir, "s.json")
	for _, p := range []string{wh, st} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var out, errb bytes.Buffer
	if code := runReset([]string{"--warehouse", wh, "--state", st}, null, &out, &errb); code != 2 {
		t.Errorf("reset from the null device: exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "pass --force to confirm without a terminal") {
		t.Errorf("stderr: %s", errb.String())
	}
	if _, err := os.Stat(wh); err != nil {
		t.Errorf("reset without --force deleted the warehouse")
	}
	out.Reset()
	if code := runReset([]string{"--force", "--warehouse", wh, "--state", st}, null, &out, &errb); code != 0 {
		t.Errorf("reset --force: exit %d", code)
	}
	if want := "reset: deleted " + wh + ", " + st + "\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	for _, p := range []string{wh, st} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s survived reset --force", p)
		}
	}
}

func TestFormatCell(t *testing.T) {
	dec := func(v int64, scale uint8) duckdbdriver.Decimal {
		return duckdbdriver.Decimal{Width: 18, Scale: scale, Value: big.NewInt(v)}
	}
	ts := time.Date(2024, 3, 1, 9, 30, 5, 250_000_000, time.UTC)
	for _, tc := range []struct {
		v      any
		dbType string
		want   string
	}{
		{nil, "VARCHAR", "NULL"},
		{nil, "JSON", "NULL"},
		{"a\nb", "VARCHAR", `a\nb`},
		{[]byte{0xde, 0xad}, "BLOB", `\xdead`},
		{int64(42), "BIGINT", "42"},
		{true, "BOOLEAN", "true"},
		{dec(1250, 2), "DECIMAL(10,2)", "12.50"},
		{dec(-5, 2), "DECIMAL(10,2)", "-0.05"},
		{dec(0, 2), "DECIMAL(10,2)", "0.00"},
		{dec(500000, 2), "DECIMAL(12,2)", "5000.00"},
		{dec(-42, 0), "DECIMAL(18,0)", "-42"},
		{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), "DATE", "2024-03-01"},
		{ts, "TIMESTAMP", "2024-03-01 09:30:05.25"},
		{ts.In(time.FixedZone("X", 2*3600)), "TIMESTAMPTZ", "2024-03-01 09:30:05.25Z"},
		{map[string]any{"b": []any{1.0, "x<y"}, "a": true}, "JSON", `{"a":true,"b":[1,"x<y"]}`},
		{"text", "JSON", `"text"`},
		{float64(3), "JSON", `3`},
	} {
		if got := formatCell(tc.v, tc.dbType); got != tc.want {
			t.Errorf("formatCell(%#v, %s) = %q, want %q", tc.v, tc.dbType, got, tc.want)
		}
	}
}

func TestReorder(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"NAME", "--template", "hello"}, []string{"--template", "hello", "NAME"}},
		{[]string{"--template", "hello", "NAME"}, []string{"--template", "hello", "NAME"}},
		{[]string{"NAME", "--template=hello", "--sluice-source", "/src"}, []string{"--template=hello", "--sluice-source", "/src", "NAME"}},
	} {
		if got := reorder(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// logDest records what the log handler stores; the other methods are not
// used.
type logDest struct {
	destination.Destination
	recs []destination.LogRecord
}

func (d *logDest) Log(_ context.Context, recs []destination.LogRecord) error {
	d.recs = append(d.recs, recs...)
	return nil
}

func TestLogHandlerStoresDerivedLoggers(t *testing.T) {
	var console bytes.Buffer
	dest := &logDest{}
	r := newRedactor(map[string]string{"key": "s3cr3t"})
	h := newLogHandler(&console, dest, false, &r)
	log := slog.New(h)
	log.Info("plain")
	log.With("component", "api").Warn("derived", "token", "s3cr3t")
	log.Debug("fine, hidden without --verbose")
	h.close(context.Background())

	var got []string
	for _, rec := range dest.recs {
		got = append(got, rec.Level+" "+rec.Message)
	}
	want := []string{"INFO plain", "WARNING derived component=api token=***"}
	if !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	if strings.Contains(console.String(), "s3cr3t") || !strings.Contains(console.String(), "derived component=api token=***") {
		t.Errorf("console:\n%s", console.String())
	}
}

func TestTemplates(t *testing.T) {
	want := []string{"dataset-csv", "dataset-readings", "hello", "incremental-cursor", "multiple-tables", "schema-change", "three-operations"}
	if got := Templates(); !slices.Equal(got, want) {
		t.Errorf("Templates() = %q, want %q", got, want)
	}
}

func TestInitProject(t *testing.T) {
	dir := t.TempDir()
	proj := filepath.Join(dir, "conn")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	want := "module conn\n\ngo 1.26\n\nrequire github.com/sluicedata/sluice v0.0.0\n\nreplace github.com/sluicedata/sluice => " + repo + "\n"
	// With the source given, and found from where this program was built.
	for i, src := range []string{repo, ""} {
		proj := filepath.Join(dir, fmt.Sprint("conn", i), "conn")
		if err := initProject(proj, "schema-change", src); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(proj, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("source %q: go.mod:\n%s\nwant:\n%s", src, b, want)
		}
	}
	if err := initProject(proj, "schema-change", repo); err != nil {
		t.Fatal(err)
	}
	if err := initProject(filepath.Join(dir, "bad"), "hello", dir); err == nil || !strings.Contains(err.Error(), "no go.mod of module github.com/sluicedata/sluice") {
		t.Errorf("init with a source that is not sluice: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Errorf("a failed init left its folder")
	}
	if _, err := os.Stat(filepath.Join(proj, "main.go")); err != nil {
		t.Errorf("main.go not copied: %v", err)
	}
	if err := initProject(proj, "hello", ""); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("init over an existing folder: %v", err)
	}
	if err := initProject(filepath.Join(dir, "other"), "nope", ""); err == nil || !strings.Contains(err.Error(), `no template "nope"`) {
		t.Errorf("unknown template: %v", err)
	}
}
