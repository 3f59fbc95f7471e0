// Package s3test runs a real S3-compatible server for tests: versitygw with
// its POSIX backend, on a free local port, with its data in a test's
// temporary folder.
//
// The binary is not built by the tests (it takes minutes); it is found in
// $SLUICE_VERSITYGW, else $(go env GOPATH)/bin, else the cache folder that
// .ci/install-versitygw builds into. Without it, tests that need S3 are
// skipped with a message saying how to get it.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicedata/sluice/filestore"
)

// Bucket is the bucket Start creates.
const Bucket = "sluice-test"

// Region is the region the server answers for.
const Region = "us-east-1"

// startTimeout bounds how long the server may take to answer its health
// check; it is ready in well under a second when healthy.
const startTimeout = 30 * time.Second

// Start starts a server with an empty bucket and stops it when the test
// ends. root is "s3://sluice-test"; opts hold the endpoint, region, path
// style and the root account's keys, random for each server.
func Start(t testing.TB) (root string, opts filestore.Options) {
	t.Helper()
	bin := Binary(t)
	data := t.TempDir()
	opts = filestore.Options{
		Region:          Region,
		AccessKeyID:     "sluice" + randomHex(t, 8),
		SecretAccessKey: randomHex(t, 20),
		PathStyle:       true,
	}
	// The free port is found by binding port 0 and closing it, so another
	// process may take it before the server binds it: try a few.
	var srv *server
	for attempt := 1; ; attempt++ {
		var err error
		srv, err = start(t, bin, data, opts)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("s3test: %v", err)
		}
		t.Logf("s3test: %v; trying another port", err)
	}
	t.Cleanup(srv.stop)
	opts.Endpoint = srv.endpoint

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(opts.Endpoint),
		Region:       opts.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, ""),
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		t.Fatalf("s3test: creating bucket %s at %s: %v\nserver output:\n%s", Bucket, opts.Endpoint, err, srv.output())
	}
	return "s3://" + Bucket, opts
}

// Binary returns the path of the versitygw binary, or skips the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SLUICE_VERSITYGW"); p != "" {
		// Asked for explicitly: a wrong path is an error, not a skip.
		if err := isExecutable(p); err != nil {
			t.Fatalf("s3test: SLUICE_VERSITYGW=%s: %v; unset it or run: export SLUICE_VERSITYGW=$(bash .ci/install-versitygw)", p, err)
		}
		return p
	}
	var looked []string
	for _, dir := range []string{goBin(), cacheBin()} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "versitygw")
		if isExecutable(p) == nil {
			return p
		}
		looked = append(looked, p)
	}
	t.Skipf("s3test: versitygw (the S3 server these tests run against) is not installed; looked at $SLUICE_VERSITYGW and %s. "+
		"Build it once (about two minutes) from the repository root with: export SLUICE_VERSITYGW=$(bash .ci/install-versitygw)",
		strings.Join(looked, ", "))
	return ""
}

func isExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// goBin is where `go install` puts binaries.
func goBin() string {
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				return lines[0]
			}
			if gp := filepath.SplitList(lines[1]); len(gp) > 0 && gp[0] != "" {
				return filepath.Join(gp[0], "bin")
			}
		}
	}
	if gp := filepath.SplitList(build.Default.GOPATH); len(gp) > 0 && gp[0] != "" {
		return filepath.Join(gp[0], "bin")
	}
	return ""
}

// cacheBin is where .ci/install-versitygw builds: on Linux
// ${XDG_CACHE_HOME:-$HOME/.cache}/sluice/bin, as os.UserCacheDir says.
func cacheBin() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sluice", "bin")
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("s3test: random keys: %v", err)
	}
	return hex.EncodeToString(b)
}

type server struct {
	cmd      *exec.Cmd
	endpoint string
	exited   chan struct{}
	waitErr  error
	out      *tailBuffer
	once     sync.Once
}

func start(t testing.TB, bin, data string, opts filestore.Options) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", addr, "--quiet", "--health", "/health", "posix", data)
	// Keys through the environment, not arguments, which any user can see
	// in the process list. Settings of the caller's own versitygw stay out.
	env := []string{"ROOT_ACCESS_KEY_ID=" + opts.AccessKeyID, "ROOT_SECRET_ACCESS_KEY=" + opts.SecretAccessKey, "VGW_REGION=" + opts.Region}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &server{cmd: cmd, endpoint: "http://" + addr, exited: make(chan struct{}), out: out}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s on %s: %w\nserver output:\n%s", bin, addr, err, out.String())
	}
	t.Logf("s3test: versitygw serving %s from %s", s.endpoint, data)
	return s, nil
}

func (s *server) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(s.endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering: %v", s.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on /health after %s (last error: %v)", startTimeout, err)
		}
	}
}

// stop asks the server to stop, and kills it if it does not.
func (s *server) stop() {
	s.once.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

func (s *server) output() string { return s.out.String() }

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// tailBuffer keeps the last max bytes of the server's output, for failure
// messages, however long the server runs.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if extra := b.buf.Len() - b.max; extra > 0 {
		b.buf.Next(extra)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
