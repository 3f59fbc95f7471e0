package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/contract"
)

const loginCode = "lc-7f3a9b" // a secret under a name no secret word matches

// shop is an in-memory dataset partitioned by day and country. Its writer
// stages rows and commits them in Close; a row whose name is "refuse" makes
// Write fail.
type shop struct {
	schema []contract.Column
	parts  map[string][]contract.Row
	order  []string
	closes int
}

func newShop() *shop {
	return &shop{
		schema: []contract.Column{{Name: "id", Type: contract.Long}, {Name: "name", Type: contract.String}},
		parts: map[string][]contract.Row{
			"2024-03-01|FR": {{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace, \"GH\""}},
			"2024-03-02|DE": {{"id": 3, "name": nil, "note": "late"}},
		},
		order: []string{"2024-03-01|FR", "2024-03-02|DE"},
	}
}

func (s *shop) Info() contract.DatasetInfo {
	return contract.DatasetInfo{
		Name:         "shop",
		Partitioning: contract.Partitioning{{Name: "day", Period: contract.Day}, {Name: "country"}},
		Params: contract.Params{
			{Name: "login_code", Label: "Login code", Type: contract.ParamSecret, Mandatory: true},
			{Name: "region", Type: contract.ParamSelect, Choices: []string{"eu", "us"}, Default: "eu"},
			{Name: "page_size", Type: contract.ParamInt},
		},
	}
}

func (s *shop) ReadSchema(context.Context, contract.Config) ([]contract.Column, error) {
	return s.schema, nil
}

func (s *shop) ReadRows(ctx context.Context, req contract.ReadRequest, emit func(contract.Row) error) error {
	if req.Config["region"] == "us" {
		return fmt.Errorf("the US endpoint refused login code %s", req.Config["login_code"])
	}
	contract.Log(contract.LevelInfo, "reading with "+req.Config["login_code"], nil)
	ids := s.order
	if !req.Partition.All() {
		ids = []string{req.Partition.ID}
	}
	for _, id := range ids {
		for _, r := range s.parts[id] {
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *shop) ListPartitions(context.Context, contract.Config) ([]string, error) {
	return s.order, nil
}

func (s *shop) CountRecords(_ context.Context, _ contract.Config, p contract.Partition) (int64, error) {
	if !p.All() {
		return int64(len(s.parts[p.ID])), nil
	}
	var n int64
	for _, rows := range s.parts {
		n += int64(len(rows))
	}
	return n, nil
}

type shopWriter struct {
	s      *shop
	req    contract.WriteRequest
	staged []contract.Row
}

func (s *shop) OpenWriter(_ context.Context, req contract.WriteRequest) (contract.Writer, error) {
	return &shopWriter{s: s, req: req}, nil
}

func (w *shopWriter) Write(_ context.Context, row contract.WriteRow) error {
	if row.Values["name"] == "refuse" {
		return errors.New("the shop refused a row")
	}
	r := contract.Row{}
	for k, v := range row.Values {
		r[k] = v
	}
	for k, v := range row.Extra {
		r["extra."+k] = v
	}
	w.staged = append(w.staged, r)
	return nil
}

func (w *shopWriter) Close(context.Context) error {
	w.s.closes++
	w.s.parts[w.req.Partition.ID] = w.staged
	return nil
}

func (w *shopWriter) Abort(context.Context) error { return nil }

type result struct {
	code           int
	stdout, stderr string
}

// runShop runs a dataset command with a configuration holding the secret.
func runShop(t *testing.T, d contract.Dataset, cfg string, args ...string) result {
	t.Helper()
	return runShopIn(t, d, cfg, "", args...)
}

// runShopIn is runShop with stdin as the standard input.
func runShopIn(t *testing.T, d contract.Dataset, cfg, stdin string, args ...string) result {
	t.Helper()
	path := filepath.Join(t.TempDir(), "configuration.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	args = append(args[:1:1], append([]string{"--configuration", path}, args[1:]...)...)
	code := runDataset(d, args, strings.NewReader(stdin), &out, &errb)
	r := result{code, out.String(), errb.String()}
	if strings.Contains(r.stdout+r.stderr, loginCode) {
		t.Errorf("%v: the secret is in the output:\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	}
	return r
}

const shopCfg = `{"login_code": "` + loginCode + `"}`

func TestDatasetRead(t *testing.T) {
	s := newShop()
	r := runShop(t, s, shopCfg, "read")
	want := "" +
		"id  name         note\n" +
		"1   Ada          NULL\n" +
		"2   Grace, \"GH\"  NULL\n" +
		"3   NULL         late\n" +
		"(3 rows)\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("read: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	if !strings.Contains(r.stderr, "INFO    reading with ***") {
		t.Errorf("the connector's log line is missing or unmasked:\n%s", r.stderr)
	}

	r = runShop(t, s, shopCfg, "read", "--format", "csv", "--partition", "2024-03-01|FR")
	if want := "id,name\n1,Ada\n2,\"Grace, \"\"GH\"\"\"\n"; r.code != 0 || r.stdout != want {
		t.Errorf("read csv: exit %d, stdout:\n%q\nwant:\n%q\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	r = runShop(t, s, shopCfg, "read", "--format", "jsonl", "--limit", "2")
	if want := "{\"id\":1,\"name\":\"Ada\"}\n{\"id\":2,\"name\":\"Grace, \\\"GH\\\"\"}\n"; r.code != 0 || r.stdout != want {
		t.Errorf("read jsonl: exit %d, stdout:\n%s\nwant:\n%s", r.code, r.stdout, want)
	}

	out := filepath.Join(t.TempDir(), "rows.csv")
	r = runShop(t, s, shopCfg, "read", "-o", out)
	b, err := os.ReadFile(out)
	if want := "id,name,note\n1,Ada,\n2,\"Grace, \"\"GH\"\"\",\n3,,late\n"; r.code != 0 || err != nil || string(b) != want {
		t.Errorf("read -o: exit %d, file %q (%v), want %q\nstderr:\n%s", r.code, b, err, want, r.stderr)
	}
	if r.stdout != "" || !strings.Contains(r.stderr, "read 3 rows into "+out) {
		t.Errorf("read -o: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestDatasetReadErrors(t *testing.T) {
	s := newShop()
	r := runShop(t, s, shopCfg, "read", "--partition", "2024-03-01")
	want := `read: malformed partition id "2024-03-01": want 2 values joined by "|" (day|country), got 1; for example "2024-03-01|<country>"`
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("malformed id: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runShop(t, s, `{"login_code": "`+loginCode+`", "region": "us"}`, "read")
	if r.code != 1 || !strings.Contains(r.stderr, `read: dataset "shop": read rows: the US endpoint refused login code ***`) {
		t.Errorf("connector error: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runShop(t, s, `{"region": "asia", "page_size": "ten"}`, "read")
	for _, want := range []string{
		`parameter "login_code" (Login code) is mandatory`,
		`parameter "region": "asia" is not one of the choices: eu, us`,
		`parameter "page_size": "ten" is not an integer`,
	} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("bad configuration: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	out := filepath.Join(t.TempDir(), "rows.jsonl")
	r = runShop(t, s, `{"login_code": "`+loginCode+`", "region": "us"}`, "read", "-o", out)
	if _, err := os.Stat(out); r.code != 1 || err == nil {
		t.Errorf("a failed export left a file: exit %d, stat %v", r.code, err)
	}
	if r := runShop(t, s, shopCfg, "read", "--format", "xml"); r.code != 2 || !strings.Contains(r.stderr, `unknown format "xml"`) {
		t.Errorf("bad format: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestDatasetWrite(t *testing.T) {
	s := newShop()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte("id,name,extra\n10,Linus,x\n11,,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Flags after the file work too.
	r := runShop(t, s, shopCfg, "write", in, "--partition", "2024-03-05|IT")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote 2 rows to partition 2024-03-05|IT (OVERWRITE)") ||
		!strings.Contains(r.stdout, `column "extra" is not in the schema: 2 values handed to the writer apart`) {
		t.Errorf("write csv: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	want := []contract.Row{{"id": "10", "name": "Linus", "extra.extra": "x"}, {"id": "11", "name": nil, "extra.extra": nil}}
	if got := s.parts["2024-03-05|IT"]; !reflect.DeepEqual(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}

	jl := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(jl, []byte("{\"id\": 12345678901234567, \"name\": \"Ken\"}\n\n{\"id\": 13}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runShop(t, s, shopCfg, "write", "--partition", "2024-03-01|FR", jl)
	if r.code != 0 || fmt.Sprint(s.parts["2024-03-01|FR"]) != "[map[id:12345678901234567 name:Ken] map[id:13]]" {
		t.Errorf("write jsonl: exit %d, partition %v\nstderr:\n%s", r.code, s.parts["2024-03-01|FR"], r.stderr)
	}
	if s.closes != 2 {
		t.Errorf("closes = %d, want 2", s.closes)
	}

	// Every failure leaves the partition as it was, and commits nothing.
	before := fmt.Sprint(s.parts["2024-03-01|FR"])
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"id\": 1}\n[2]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := filepath.Join(dir, "refused.csv")
	if err := os.WriteFile(refused, []byte("id,name\n1,ok\n2,refuse\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"write", "--partition", "2024-03-01|FR", bad}, 1, "write: input: JSONL line 2: not a JSON object"},
		{[]string{"write", "--partition", "2024-03-01|FR", refused}, 1, `write: dataset "shop": write row 2: the shop refused a row`},
		{[]string{"write", "--partition", "2024-03-01|FR", "--append", jl}, 1, `dataset "shop" has no "append" capability`},
		{[]string{"write", "--partition", "2024-03-01", jl}, 1, `malformed partition id "2024-03-01"`},
		{[]string{"write", jl}, 1, `dataset "shop" is partitioned (day (DAY) | country (discrete)): name the partition to write, like "2024-03-01|<country>"`},
		{[]string{"write", "--partition", "2024-03-01|FR", filepath.Join(dir, "missing.csv")}, 1, "no such file"},
		{[]string{"write", "--partition", "2024-03-01|FR", filepath.Join(dir, "in.parquet")}, 1, "in.parquet: no such file"},
		{[]string{"write", "--partition", "2024-03-01|FR"}, 2, "usage: write"},
	} {
		r := runShop(t, s, shopCfg, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if got := fmt.Sprint(s.parts["2024-03-01|FR"]); got != before || s.closes != 2 {
		t.Errorf("failed writes changed the partition: %s, was %s (closes %d)", got, before, s.closes)
	}
}

func TestDatasetPartitionsCountDescribe(t *testing.T) {
	s := newShop()
	if r := runShop(t, s, shopCfg, "partitions"); r.code != 0 || r.stdout != "2024-03-01|FR\n2024-03-02|DE\n" {
		t.Errorf("partitions: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runShop(t, s, shopCfg, "count"); r.code != 0 || r.stdout != "3\n" {
		t.Errorf("count: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runShop(t, s, shopCfg, "count", "--partition", "2024-03-01|FR"); r.code != 0 || r.stdout != "2\n" {
		t.Errorf("count --partition: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runShop(t, s, shopCfg, "count", "--partition", "2024-13-01|FR"); r.code != 1 || !strings.Contains(r.stderr, `dimension "day" (DAY) wants YYYY-MM-DD, got "2024-13-01"`) {
		t.Errorf("count with a bad id: exit %d, stderr %q", r.code, r.stderr)
	}

	r := runShop(t, s, shopCfg, "describe")
	for _, want := range []string{
		"dataset: shop\n",
		"capabilities: read rows, read schema, write rows, list partitions, records count\n",
		"write modes: OVERWRITE\n",
		"partitioning: day (DAY) | country (discrete); ids like 2024-03-01|<country>\n",
		"  name        label       type             mandatory  default  value\n",
		"  login_code  Login code  secret           yes                 ***\n",
		"  region                  select (eu, us)  no         eu       eu\n",
		"  page_size               int              no\n",
		"schema:\n  id    LONG\n  name  STRING\n",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("describe lacks %q: exit %d, stdout:\n%s\nstderr:\n%s", want, r.code, r.stdout, r.stderr)
		}
	}
	// With a bad configuration describe still shows the parameters.
	r = runShop(t, s, `{"page_size": "x"}`, "describe")
	if r.code != 1 || !strings.Contains(r.stdout, "  page_size") || !strings.Contains(r.stderr, `parameter "login_code" (Login code) is mandatory`) {
		t.Errorf("describe, bad configuration: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

type onlyInfo struct{}

func (onlyInfo) Info() contract.DatasetInfo { return contract.DatasetInfo{Name: "bare"} }

func TestDatasetMissingCapability(t *testing.T) {
	for cmd, capability := range map[string]string{"read": "read rows", "partitions": "list partitions", "count": "records count"} {
		r := runShop(t, onlyInfo{}, `{}`, cmd)
		want := fmt.Sprintf(`%s: dataset "bare" has no %q capability: the connector does not implement sdk.`, cmd, capability)
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant %q", cmd, r.code, r.stderr, want)
		}
	}
	r := runShop(t, onlyInfo{}, `{}`, "describe")
	if r.code != 0 || !strings.Contains(r.stdout, "capabilities: none\n") || !strings.Contains(r.stdout, "schema: unknown") {
		t.Errorf("describe: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	var errb bytes.Buffer
	if code := notDataset("write", &errb); code != 1 || !strings.Contains(errb.String(), `write: this connector has no "write rows" capability: it syncs changes through Update`) {
		t.Errorf("notDataset: exit %d, %s", code, errb.String())
	}
}
