package servecmd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sluicedata/sluice/internal/cli"
	"github.com/sluicedata/sluice/server"
)

const deployUsage = `usage: sluice deploy --server URL --api-key KEY --connection NAME --destination NAME
                     [--configuration FILE] [--schedule S]

Builds the connector in the current folder for the server's platform and
uploads it. Deploying again replaces the code and keeps the state; a new
--configuration replaces the stored one, and without it the stored one stays.

Each flag may also come from the environment or a .env file in the current
folder: SLUICE_SERVER, SLUICE_API_KEY, SLUICE_CONNECTION,
SLUICE_DEPLOY_DESTINATION, SLUICE_CONFIGURATION, SLUICE_SCHEDULE.
`

// deployEnv maps each deploy flag to its environment variable. The
// destination's is not SLUICE_DESTINATION: that one holds a destination
// URL for `run`, where deploy wants a destination's name on the server.
var deployEnv = map[string]string{
	"server":        "SLUICE_SERVER",
	"api-key":       "SLUICE_API_KEY",
	"connection":    "SLUICE_CONNECTION",
	"destination":   "SLUICE_DEPLOY_DESTINATION",
	"configuration": "SLUICE_CONFIGURATION",
	"schedule":      "SLUICE_SCHEDULE",
}

// Deploy is `sluice deploy`.
func Deploy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, deployUsage); fs.PrintDefaults() }
	vals := map[string]*string{}
	for name, env := range deployEnv {
		vals[name] = fs.String(name, "", "(env "+env+")")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deploy: unexpected argument %q\n\n%s", fs.Arg(0), deployUsage)
		return 2
	}
	dotenv, err := readDotEnv(".env")
	if err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 2
	}
	// A flag wins over the environment, which wins over .env.
	for name, env := range deployEnv {
		if *vals[name] != "" {
			continue
		}
		if v := os.Getenv(env); v != "" {
			*vals[name] = v
		} else if v := dotenv[env]; v != "" {
			*vals[name] = v
		}
	}
	for _, name := range []string{"server", "api-key", "connection"} {
		if *vals[name] == "" {
			fmt.Fprintf(stderr, "deploy: --%s is required (or %s in the environment or .env)\n\n%s", name, deployEnv[name], deployUsage)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &deployer{
		server: strings.TrimRight(*vals["server"], "/"), key: *vals["api-key"],
		http: &http.Client{Timeout: 30 * time.Minute}, stdout: stdout, stderr: stderr,
	}
	req := server.DeployRequest{Connection: *vals["connection"], Destination: *vals["destination"]}
	if s := *vals["schedule"]; s != "" {
		req.Schedule = &s
	}
	if p := *vals["configuration"]; p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "deploy: configuration: %v\n", err)
			return 2
		}
		if _, err := cli.ParseConfiguration(p, b); err != nil {
			fmt.Fprintf(stderr, "deploy: %v\n", err)
			return 2
		}
		if err := json.Unmarshal(b, &req.Configuration); err != nil {
			fmt.Fprintf(stderr, "deploy: configuration %s: %v\n", p, err)
			return 2
		}
	}
	if err := d.deploy(ctx, req); err != nil {
		fmt.Fprintf(stderr, "deploy: %v\n", err)
		return 1
	}
	return 0
}

// readDotEnv reads KEY=VALUE lines (optionally "export KEY=VALUE", values
// optionally quoted, # comments); a missing file is empty.
func readDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: not KEY=VALUE", path, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		out[k] = v
	}
	return out, sc.Err()
}

type deployer struct {
	server, key    string
	http           *http.Client
	stdout, stderr io.Writer
}

// call sends a request with the API key and decodes a JSON answer into
// out; a non-2xx answer is an error with the server's message.
func (d *deployer) call(req *http.Request, out any) error {
	req.Header.Set("Authorization", "Bearer "+d.key)
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the server at %s: %w", d.server, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("the server refused the API key (401): check --api-key / SLUICE_API_KEY, or create a key with `sluice serve keys create`")
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Field string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("the server answered %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("the server answered %s (is %s a sluice server?)", resp.Status, d.server)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("the server's answer is not what sluice expects (is %s a sluice server?): %v", d.server, err)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (d *deployer) deploy(ctx context.Context, req server.DeployRequest) error {
	if _, err := url.ParseRequestURI(d.server); err != nil || !strings.HasPrefix(d.server, "http") {
		return fmt.Errorf("--server %q is not an http(s) URL, like http://127.0.0.1:8080", d.server)
	}
	hreq, err := http.NewRequestWithContext(ctx, "GET", d.server+"/api/info", nil)
	if err != nil {
		return err
	}
	var info server.Info
	if err := d.call(hreq, &info); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-deploy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "connector")
	if err := buildConnector(ctx, bin, info.GOOS, info.GOARCH, d.stdout, d.stderr); err != nil {
		return err
	}
	sum, size, err := fileSHA256(bin)
	if err != nil {
		return err
	}
	req.GOOS, req.GOARCH, req.SHA256 = info.GOOS, info.GOARCH, sum
	fmt.Fprintf(d.stdout, "uploading %s (%.1f MB before compression, sha256 %s) to %s\n", req.Connection, float64(size)/1e6, sum[:12], d.server)

	// The build streams from the file into the request: no copy of it in
	// memory.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeDeployBody(mw, req, bin))
	}()
	hreq, err = http.NewRequestWithContext(ctx, "POST", d.server+"/api/deploy", pr)
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", mw.FormDataContentType())
	var res server.DeployResult
	if err := d.call(hreq, &res); err != nil {
		pr.CloseWithError(err)
		return err
	}
	c := res.Connection
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(d.stdout, "connection %s %s: destination %s, schedule %s, status %s\n", c.Name, verb, c.Destination, c.Schedule, c.Status)
	if c.NextRunAt != nil {
		fmt.Fprintf(d.stdout, "next run: %s\n", c.NextRunAt.Local().Format(time.DateTime))
	}
	return nil
}

func writeDeployBody(mw *multipart.Writer, req server.DeployRequest, bin string) error {
	meta, err := mw.CreateFormField("metadata")
	if err != nil {
		return err
	}
	if err := json.NewEncoder(meta).Encode(req); err != nil {
		return err
	}
	// Compressed: a connector program shrinks to about a third, and the
	// server stores it as sent.
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="binary"; filename="connector"`)
	hdr.Set("Content-Type", server.EncodingZstd)
	part, err := mw.CreatePart(hdr)
	if err != nil {
		return err
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	enc, err := zstd.NewWriter(part)
	if err != nil {
		return err
	}
	if _, err := io.Copy(enc, f); err != nil {
		enc.Close()
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return mw.Close()
}

// buildConnector builds the connector in the current folder for the
// server's platform. Connectors link DuckDB through cgo, so a build for
// another platform needs that platform's C cross-compiler: the usual way
// is to deploy from a machine (or CI job) of the server's platform.
func buildConnector(ctx context.Context, out, goos, goarch string, stdout, stderr io.Writer) error {
	if _, err := os.Stat("go.mod"); err != nil {
		if _, err := os.Stat("main.go"); err != nil {
			return errors.New("no connector here (no go.mod or main.go): run sluice deploy in the connector's folder")
		}
	}
	fmt.Fprintf(stdout, "building the connector for %s/%s\n", goos, goarch)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", cli.BuildTags, "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		if goos != runtime.GOOS || goarch != runtime.GOARCH {
			return fmt.Errorf("go build for %s/%s failed (%v): the server runs %s/%s and this machine %s/%s; a connector links DuckDB through cgo, so build and deploy from a %s/%s machine (or CI job)",
				goos, goarch, err, goos, goarch, runtime.GOOS, runtime.GOARCH, goos, goarch)
		}
		return fmt.Errorf("go build failed (%v): fix the errors above, then deploy again", err)
	}
	return nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
