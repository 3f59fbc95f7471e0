package s3test

import (
	"net"
	"net/url"
	"testing"
)

// The server serves its bucket while the test runs, and is gone after.
func TestStartStop(t *testing.T) {
	var endpoint string
	t.Run("serve", func(t *testing.T) {
		root, opts := Start(t)
		if root != "s3://"+Bucket || opts.Endpoint == "" || opts.AccessKeyID == "" || opts.SecretAccessKey == "" || !opts.PathStyle {
			t.Fatalf("Start = %q, %+v", root, opts)
		}
		endpoint = opts.Endpoint
	})
	if endpoint == "" {
		// The subtest skipped (no server configured) or failed, and
		// said why.
		t.Skip("no server started")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", u.Host); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test ended", endpoint)
	}
}
