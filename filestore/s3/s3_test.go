package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/filestore/storetest"
	"github.com/sluicedata/sluice/internal/s3test"
)

// isolate keeps the machine's own AWS settings out of a test.
func isolate(t *testing.T) {
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

func openStore(t *testing.T, root string, opts filestore.Options) *store {
	t.Helper()
	st, err := filestore.Open(t.Context(), root, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", root, err)
	}
	return st.(*store)
}

func TestConformance(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	opts.PartSize = minPartSize
	storetest.Run(t, func(t *testing.T) filestore.Store {
		// Each subtest under its own prefix, so that the prefix is part
		// of what is tested.
		return openStore(t, root+"/runs/"+strings.ReplaceAll(t.Name(), "/", "-"), opts)
	})
}

// Keys are relative to the root's prefix, and a store sees nothing outside
// its prefix.
func TestPrefix(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	bucket := openStore(t, root, opts)
	nested := openStore(t, root+"/a/b/", opts)
	storetest.Write(t, nested, "x.csv", []byte("x"))
	storetest.Write(t, bucket, "a/bc.csv", []byte("not under a/b/"))
	storetest.Write(t, bucket, "top.csv", []byte("top"))

	if got := storetest.Keys(t, bucket, ""); !slices.Equal(got, []string{"a/b/x.csv", "a/bc.csv", "top.csv"}) {
		t.Errorf("bucket lists %q", got)
	}
	if got := storetest.Keys(t, nested, ""); !slices.Equal(got, []string{"x.csv"}) {
		t.Errorf("s3://bucket/a/b lists %q, want [x.csv]", got)
	}
	if got := string(storetest.Read(t, bucket, "a/b/x.csv")); got != "x" {
		t.Errorf("read %q through the bucket", got)
	}
	if nested.String() != "s3://"+s3test.Bucket+"/a/b" || bucket.String() != "s3://"+s3test.Bucket {
		t.Errorf("String() = %q and %q", nested.String(), bucket.String())
	}
	if p, ok := nested.Local("x.csv"); ok || p != "" {
		t.Errorf("Local = %q, %v; want no path", p, ok)
	}
}

// Settings from the URL's query and from the environment, with Options
// taking precedence.
func TestSettingsSources(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	q := url.Values{"endpoint": {opts.Endpoint}, "region": {opts.Region}, "path_style": {"true"}}
	st := openStore(t, root+"/q?"+q.Encode(), filestore.Options{AccessKeyID: opts.AccessKeyID, SecretAccessKey: opts.SecretAccessKey})
	storetest.Write(t, st, "from-query.csv", []byte("q"))

	// Only the environment; no region anywhere: an endpoint implies
	// us-east-1.
	t.Setenv("AWS_ACCESS_KEY_ID", opts.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", opts.SecretAccessKey)
	t.Setenv("AWS_ENDPOINT_URL_S3", opts.Endpoint)
	st = openStore(t, root+"/q?path_style=true", filestore.Options{})
	if got := storetest.Keys(t, st, ""); !slices.Equal(got, []string{"from-query.csv"}) {
		t.Errorf("store configured by the environment lists %q", got)
	}

	// Options win over a wrong query endpoint and a wrong environment.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+opts.SecretAccessKey)
	st = openStore(t, root+"/q?endpoint=http://127.0.0.1:1&path_style=true", opts)
	if got := storetest.Keys(t, st, ""); !slices.Equal(got, []string{"from-query.csv"}) {
		t.Errorf("store configured by Options lists %q", got)
	}
}

func TestOpenErrors(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	secret := opts.SecretAccessKey
	wrong := opts
	wrong.SecretAccessKey = "not-the-" + secret

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	unreachable := opts
	unreachable.Endpoint = closed

	cases := []struct {
		name string
		root string
		opts filestore.Options
		want []string
		is   error
	}{
		{"missing bucket", "s3://no-such-bucket/x", opts,
			[]string{`bucket "no-such-bucket" does not exist`, opts.Endpoint, "check the bucket name"}, nil},
		{"wrong secret", root, wrong,
			[]string{"refused (HTTP 403)", opts.Endpoint, "check the access key ID and secret"}, nil},
		{"unreachable endpoint", root, unreachable,
			[]string{"cannot reach endpoint " + closed, "connection refused", "check the endpoint URL"}, nil},
		{"credentials in user info", "s3://AKID:" + secret + "@" + s3test.Bucket, opts,
			[]string{"credentials in the URL are not accepted"}, nil},
		{"secret in query", root + "?secret_access_key=" + secret, opts,
			[]string{"credentials in the URL are not accepted", `"secret_access_key"`}, nil},
		{"access key in query", root + "?access_key_id=AKID&endpoint=" + opts.Endpoint, opts,
			[]string{"credentials in the URL are not accepted"}, nil},
		{"token in query", root + "?x-amz-security-token=" + secret, opts,
			[]string{"credentials in the URL are not accepted"}, nil},
		{"credentials in endpoint", root, filestore.Options{Endpoint: "http://AKID:" + secret + "@127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: secret},
			[]string{"credentials in the endpoint URL are not accepted"}, nil},
		{"unknown setting", root + "?regoin=eu-west-1", opts,
			[]string{`unknown URL setting "regoin"`, "endpoint, region, path_style"}, nil},
		{"repeated setting", root + "?region=a&region=b", opts,
			[]string{`"region" is given 2 times`}, nil},
		{"bad path_style", root + "?path_style=yes please", opts,
			[]string{"path_style", "want true or false"}, nil},
		{"bad endpoint", root, filestore.Options{Endpoint: "127.0.0.1:7070"},
			[]string{`endpoint "127.0.0.1:7070"`, "want a URL such as"}, nil},
		{"part size", root, filestore.Options{PartSize: 1 << 20},
			[]string{"part size 1048576 bytes", "5 MiB"}, nil},
		{"no bucket", "s3:///prefix", opts,
			[]string{"no bucket name"}, nil},
		{"bad prefix", "s3://b/a/../c", opts,
			[]string{"invalid key"}, nil},
		{"secret without key", root, filestore.Options{SecretAccessKey: secret},
			[]string{"not both"}, nil},
		{"no credentials", root, filestore.Options{Endpoint: opts.Endpoint, PathStyle: true},
			[]string{"no AWS credentials", "AWS_ACCESS_KEY_ID"}, nil},
		{"no region without endpoint", "s3://b", filestore.Options{AccessKeyID: "a", SecretAccessKey: secret},
			[]string{"no region", "AWS_REGION"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := filestore.Open(t.Context(), c.root, c.opts)
			if err == nil {
				st.Close()
				t.Fatalf("Open succeeded, want an error")
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q shows the secret", msg)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q does not wrap %v", msg, c.is)
			}
		})
	}
}

// multipartUploads lists the bucket's unfinished multipart uploads.
func multipartUploads(t *testing.T, st *store) []string {
	t.Helper()
	out, err := st.client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(st.bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ids
}

// A multipart upload that is aborted or cancelled leaves no parts behind.
func TestNoDanglingUploads(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	opts.PartSize = minPartSize
	st := openStore(t, root, opts)
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*minPartSize)/16)

	w, err := st.Create(t.Context(), "aborted.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if ids := multipartUploads(t, st); len(ids) != 0 {
		t.Errorf("after Abort the bucket holds unfinished uploads %q", ids)
	}

	// Cancelled after two parts were sent: the manager's own abort uses the
	// cancelled context, so the driver must clean up itself.
	ctx, cancel := context.WithCancel(t.Context())
	w, err = st.Create(ctx, "cancelled.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close after cancel: %v, want context.Canceled", err)
	}
	if ids := multipartUploads(t, st); len(ids) != 0 {
		t.Errorf("after a cancelled upload the bucket holds unfinished uploads %q", ids)
	}
	if keys := storetest.Keys(t, st, ""); len(keys) != 0 {
		t.Errorf("bucket lists %q, want nothing", keys)
	}
}

// Objects above CopyObject's 5 GB limit are renamed with a multipart copy;
// the limit is lowered here to exercise it with a small object.
func TestRenameMultipartCopy(t *testing.T) {
	isolate(t)
	defer func(a, b int64) { singleCopyMax, copyPartSize = a, b }(singleCopyMax, copyPartSize)
	singleCopyMax, copyPartSize = 1<<20, minPartSize

	root, opts := s3test.Start(t)
	opts.PartSize = minPartSize
	st := openStore(t, root, opts)
	data := bytes.Repeat([]byte("sluice!"), storetest.LargeSize/7)
	storetest.Write(t, st, "big/from.bin", data)
	if err := st.Rename(t.Context(), "big/from.bin", "big/to.bin"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	r, err := st.Open(t.Context(), "big/to.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("renamed object differs from the original")
	}
	if keys := storetest.Keys(t, st, ""); !slices.Equal(keys, []string{"big/to.bin"}) {
		t.Errorf("after Rename the bucket lists %q", keys)
	}
	if ids := multipartUploads(t, st); len(ids) != 0 {
		t.Errorf("unfinished uploads %q", ids)
	}
}

// A file replaced while a reader has it open fails the reader's next GET
// instead of mixing two versions (a Parquet footer from one, columns from
// the other).
func TestReaderSeesReplacement(t *testing.T) {
	isolate(t)
	root, opts := s3test.Start(t)
	st := openStore(t, root, opts)
	storetest.Write(t, st, "f.bin", []byte("version one"))
	r, err := st.Open(t.Context(), "f.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	storetest.Write(t, st, "f.bin", []byte("version two"))
	_, err = r.ReadAt(make([]byte, 4), 0)
	if err == nil || !strings.Contains(err.Error(), "replaced since it was opened") {
		t.Errorf("ReadAt after replacement: %v, want an error saying the file was replaced", err)
	}
	if err := st.Delete(t.Context(), "f.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, filestore.ErrNotExist) && (err == nil || !strings.Contains(err.Error(), "replaced")) {
		t.Errorf("Read after deletion: %v, want an error", err)
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"a", "a/b.csv", "date=2024-01-01/p 1+é.parquet", ".hidden"} {
		if err := checkKey(k); err != nil {
			t.Errorf("checkKey(%q): %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", "./a", "a/../b", "..", `a\b`} {
		if err := checkKey(k); err == nil {
			t.Errorf("checkKey(%q) accepted it", k)
		}
	}
}

func TestCopySource(t *testing.T) {
	s := &store{bucket: "bk"}
	if got, want := s.copySource("p/a b+c/é?.csv"), "bk/p/a%20b%2Bc/%C3%A9%3F.csv"; got != want {
		t.Errorf("copySource = %q, want %q", got, want)
	}
}
