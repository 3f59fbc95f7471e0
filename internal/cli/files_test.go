package cli

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/s3test"
)

// files runs `sluice files ARGS` and returns its exit code and output.
func files(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runFiles(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFiles(t *testing.T, dir string, content map[string]string) {
	t.Helper()
	for name, data := range content {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilesLsHeadSchema(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"users.csv":                        "id,name,joined\n1,Ada,2024-03-01\n2,\"Bob\nBobson\",\n",
		"events/day=2024-03-01/a.csv":      "n\n1\n",
		"events/day=2024-03-02/b.csv":      "n\n2\n",
		"notes.txt":                        "x",
		"mixed/a.csv":                      "a\n1\n",
		"mixed/b.jsonl":                    `{"a":1}` + "\n",
		"events/_SUCCESS":                  "",
		"_sluice_upload/x/y/part-1.csv":    "a\n",
		"events/day=2024-03-02/.b.csv.crc": "x",
	})

	code, out, errs := files(t, "ls", root)
	if code != 0 || errs != "" {
		t.Fatalf("ls: exit %d, %s", code, errs)
	}
	for _, want := range []string{
		"TABLE   FORMAT              FILES  SIZE  MODIFIED",
		"events  csv folder          2",
		"day\n",
		"mixed   (see below) folder  2",
		"users   csv                 1      48 B",
		"(3 tables at " + root + "; 1 file ignored for their extension, such as notes.txt)\n",
		`mixed: table "mixed" at ` + root + ` mixes formats: mixed/a.csv is csv but mixed/b.jsonl is jsonl`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = files(t, "head", root, "users")
	want := "id  name         joined\n1   Ada          2024-03-01\n2   Bob\\nBobson  NULL\n(2 rows)\n"
	if code != 0 || out != want {
		t.Errorf("head: exit %d\n%s\nwant\n%s", code, out, want)
	}
	code, out, _ = files(t, "head", "-n", "1", root, "users", "--format", "csv")
	if code != 0 || out != "id,name,joined\n1,Ada,2024-03-01\n" {
		t.Errorf("head csv: exit %d %q", code, out)
	}
	code, out, _ = files(t, "head", root, "events", "--format=jsonl")
	if code != 0 || out != `{"n":1,"day":"2024-03-01"}`+"\n"+`{"n":2,"day":"2024-03-02"}`+"\n" {
		t.Errorf("head jsonl: exit %d %q", code, out)
	}

	code, out, _ = files(t, "schema", root, "events")
	for _, w := range []string{
		"table events: csv, folder events/ of 2 files, 8 B\n",
		"rows: unknown",
		"  n    LONG\n",
		"  day  NAIVE_DATE  partition\n",
	} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("schema: exit %d, output lacks %q:\n%s", code, w, out)
		}
	}

	code, _, errs = files(t, "head", root, "user")
	if code != 1 || !strings.Contains(errs, `files head: table "user" not found at `+root+"; closest: users") {
		t.Errorf("missing table: exit %d %s", code, errs)
	}
	code, _, errs = files(t, "schema", root, "mixed")
	if code != 1 || !strings.Contains(errs, "mixes formats") {
		t.Errorf("mixed: exit %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"ls"}, {"head", root}, {"head", root, "users", "--format", "xml"}, {"head", root, "users", "-n", "-1"},
		{"upload", root, "x"}, {"rm", root}, {"nope"}, {}, {"store"}, {"store", "x"}, {"ls", root, "--bogus"},
	} {
		if code, _, _ := files(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := files(t, "ls", filepath.Join(root, "missing")); code != 1 || !strings.Contains(errs, "the folder does not exist") {
		t.Errorf("missing root: %d %s", code, errs)
	}
}

func TestFilesUploadAndRm(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(t.TempDir(), "people.csv")
	writeFiles(t, filepath.Dir(src), map[string]string{"people.csv": "User ID,e-mail\n1,a@x.org\n2,b@x.org\n"})

	code, out, errs := files(t, "upload", root, "people", src)
	if code != 0 {
		t.Fatalf("upload: exit %d %s", code, errs)
	}
	for _, w := range []string{"renamed columns:\n", `  "User ID"  -> User_ID`, `  "e-mail"   -> e_mail`, "uploaded " + src + " (35 B) as table people at " + root + ": people.csv, in "} {
		if !strings.Contains(out, w) {
			t.Errorf("upload output lacks %q:\n%s", w, out)
		}
	}
	if errs != "" {
		t.Errorf("a progress bar without a terminal: %q", errs)
	}
	code, out, _ = files(t, "head", root, "people", "--format", "csv")
	if code != 0 || out != "User_ID,e_mail\n1,a@x.org\n2,b@x.org\n" {
		t.Errorf("head after upload: %d %q", code, out)
	}
	code, _, errs = files(t, "upload", root, "people", src, "--partition-size-mb", "50")
	if code != 1 || !strings.Contains(errs, "partition size 50 MB is out of range: give 100 to 1000") {
		t.Errorf("partition size: %d %s", code, errs)
	}
	code, out, _ = files(t, "rm", root, "people")
	if code != 0 || out != "removed table people from "+root+" (1 object)\n" {
		t.Errorf("rm: %d %q", code, out)
	}
	code, _, errs = files(t, "rm", root, "people")
	if code != 1 || !strings.Contains(errs, `table "people" not found`) {
		t.Errorf("rm twice: %d %s", code, errs)
	}
}

// S3 settings by flags, credentials from the AWS variables, and the secret
// in no output, not even an error's.
func TestFilesS3(t *testing.T) {
	isolateFilesAWS(t)
	root, opts := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", opts.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", opts.SecretAccessKey)
	src := filepath.Join(t.TempDir(), "p.csv")
	writeFiles(t, filepath.Dir(src), map[string]string{"p.csv": "id\n1\n2\n"})
	s3 := []string{"--endpoint", opts.Endpoint, "--region", opts.Region, "--path-style"}
	var all strings.Builder
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errs := files(t, append(args, s3...)...)
		all.WriteString(out + errs)
		if code != want {
			t.Errorf("%q: exit %d, want %d: %s", args, code, want, errs)
		}
		return out + errs
	}
	run(0, "upload", root+"/lake", "p", src)
	if out := run(0, "ls", root+"/lake"); !strings.Contains(out, "p      csv     1      7 B") {
		t.Errorf("ls:\n%s", out)
	}
	if out := run(0, "head", root+"/lake", "p"); out != "id\n1\n2\n(2 rows)\n" {
		t.Errorf("head: %q", out)
	}
	run(1, "head", root+"/lake", "q")
	t.Setenv("AWS_SECRET_ACCESS_KEY", opts.SecretAccessKey+"x")
	if out := run(1, "ls", root+"/lake"); !strings.Contains(out, "SignatureDoesNotMatch") && !strings.Contains(out, "403") {
		t.Logf("bad secret: %s", out)
	}
	if strings.Contains(all.String(), opts.SecretAccessKey) {
		t.Errorf("the secret is in the output:\n%s", all.String())
	}
}

func isolateFilesAWS(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
	} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestFilesNamedStores(t *testing.T) {
	proj := t.TempDir()
	t.Chdir(proj)
	if err := os.WriteFile("sluice.json", []byte(`{"destinations": {"wh": "duckdb"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, proj, map[string]string{"data/users.csv": "id\n1\n"})

	code, out, errs := files(t, "store", "add", "warehouse", "data")
	if code != 0 || !strings.Contains(out, "saved store warehouse (data) in sluice.json; use it as @warehouse") {
		t.Fatalf("store add: %d %s %s", code, out, errs)
	}
	if code, out, _ := files(t, "ls", "warehouse"); code != 0 || !strings.Contains(out, "users  csv") {
		t.Errorf("ls by name: %d\n%s", code, out)
	}
	if code, out, _ := files(t, "head", "@warehouse", "users"); code != 0 || out != "id\n1\n(1 row)\n" {
		t.Errorf("head @name: %d %q", code, out)
	}
	// A folder of the same name makes the bare name ambiguous.
	writeFiles(t, proj, map[string]string{"warehouse/x.csv": "a\n"})
	if code, _, errs := files(t, "ls", "warehouse"); code != 1 || !strings.Contains(errs, "write @warehouse for the store or ./warehouse for the folder") {
		t.Errorf("ambiguous: %d %s", code, errs)
	}
	if code, out, _ := files(t, "ls", "./warehouse"); code != 0 || !strings.Contains(out, "x  ") {
		t.Errorf("./warehouse: %d %s", code, out)
	}
	if code, _, errs := files(t, "store", "add", "warehouse", "elsewhere"); code != 1 || !strings.Contains(errs, "already saved") {
		t.Errorf("add twice: %d %s", code, errs)
	}
	if code, _, errs := files(t, "store", "add", "bad", "s3://b", "--secret-key-env", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"); code != 1 || !strings.Contains(errs, "must be the NAME of an environment variable") || strings.Contains(errs, "wJalr") {
		t.Errorf("secret as a name: %d %s", code, errs)
	}

	t.Run("s3", func(t *testing.T) {
		isolateFilesAWS(t)
		root, opts := s3test.Start(t)
		t.Setenv("LAKE_KEY", opts.AccessKeyID)
		t.Setenv("LAKE_SECRET", opts.SecretAccessKey)
		var all strings.Builder
		run := func(want int, args ...string) string {
			t.Helper()
			code, out, errs := files(t, args...)
			all.WriteString(out + errs)
			if code != want {
				t.Errorf("%q: exit %d, want %d: %s", args, code, want, errs)
			}
			return out + errs
		}
		run(0, "store", "add", "lake", root+"/raw", "--endpoint", opts.Endpoint, "--region", opts.Region, "--path-style",
			"--access-key-env", "LAKE_KEY", "--secret-key-env", "LAKE_SECRET")
		out := run(0, "store", "ls")
		for _, w := range []string{"NAME", "lake       " + root + "/raw  " + opts.Endpoint, "$LAKE_KEY (set), $LAKE_SECRET (set)", "warehouse  data"} {
			if !strings.Contains(out, w) {
				t.Errorf("store ls lacks %q:\n%s", w, out)
			}
		}
		run(0, "upload", "@lake", "users", filepath.Join(proj, "data", "users.csv"))
		if out := run(0, "head", "lake", "users"); out != "id\n1\n(1 row)\n" {
			t.Errorf("head: %q", out)
		}
		run(0, "rm", "@lake", "users")
		t.Setenv("LAKE_SECRET", "")
		if out := run(1, "ls", "@lake"); !strings.Contains(out, "the environment variable LAKE_SECRET (its secret access key) is not set") {
			t.Errorf("unset secret: %s", out)
		}
		run(0, "store", "rm", "lake")
		b, _ := os.ReadFile("sluice.json")
		if strings.Contains(all.String(), opts.SecretAccessKey) || strings.Contains(string(b), opts.SecretAccessKey) {
			t.Errorf("the secret leaked:\n%s\n%s", all.String(), b)
		}
	})

	if code, out, _ := files(t, "store", "rm", "warehouse"); code != 0 || !strings.Contains(out, "forgot store warehouse") {
		t.Errorf("store rm: %d %s", code, out)
	}
	if code, _, errs := files(t, "store", "rm", "warehouse"); code != 1 || !strings.Contains(errs, "no store named warehouse") {
		t.Errorf("store rm twice: %d %s", code, errs)
	}
	b, _ := os.ReadFile("sluice.json")
	if !strings.Contains(string(b), `"destinations": {`) || !strings.Contains(string(b), `"wh": "duckdb"`) {
		t.Errorf("sluice.json lost its other keys:\n%s", b)
	}
	if code, out, _ := files(t, "store", "ls"); code != 0 || !strings.Contains(out, "no saved stores") {
		t.Errorf("store ls when empty: %d %s", code, out)
	}
}

func TestFilesBar(t *testing.T) {
	var b bytes.Buffer
	bar := newFilesBar(&b, false, "uploading x")
	bar.update(1, 2)
	bar.finish()
	if b.Len() != 0 {
		t.Errorf("drawn without a terminal: %q", b.String())
	}
	bar = newFilesBar(&b, true, "uploading x")
	bar.update(0, 4<<20)
	bar.update(4<<20, 4<<20)
	bar.finish()
	s := b.String()
	if !strings.HasPrefix(s, "\ruploading x [") || !strings.Contains(s, "100% 4.0 MiB / 4.0 MiB") || !strings.Contains(s, "/s, ") || !strings.HasSuffix(s, "left\n") {
		t.Errorf("bar: %q", s)
	}
}

// A gzipped CSV and a JSON Lines file go up as they are; an extension that
// does not match the content is refused with the rename to make.
func TestFilesUploadGzipAndJSONL(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("id,name\n1,\"Ada\nLovelace\"\n"))
	zw.Close()
	writeFiles(t, src, map[string]string{
		"people.csv.gz": gz.String(),
		"events.jsonl":  "{\"id\": 1}\n{\"id\": 2}\n",
		"plain.csv.gz":  "id\n1\n",
	})
	for _, c := range []struct{ file, table, key string }{
		{"people.csv.gz", "people", "people.csv.gz"},
		{"events.jsonl", "events", "events.jsonl"},
	} {
		code, out, errs := files(t, "upload", root, c.table, filepath.Join(src, c.file))
		if code != 0 || !strings.Contains(out, "as table "+c.table+" at "+root+": "+c.key+", in ") {
			t.Errorf("upload %s: exit %d\n%s%s", c.file, code, out, errs)
		}
	}
	code, out, _ := files(t, "head", root, "people", "--format", "jsonl")
	if code != 0 || out != "{\"id\":1,\"name\":\"Ada\\nLovelace\"}\n" {
		t.Errorf("head people: %d %q", code, out)
	}
	code, out, _ = files(t, "head", root, "events", "--format", "csv")
	if code != 0 || out != "id\n1\n2\n" {
		t.Errorf("head events: %d %q", code, out)
	}
	code, _, errs := files(t, "upload", root, "plain", filepath.Join(src, "plain.csv.gz"))
	if code != 1 || !strings.Contains(errs, "plain.csv.gz is named .csv.gz but its content is text, not gzip-compressed; rename it to .csv") {
		t.Errorf("mismatch: %d %s", code, errs)
	}
}
