// Package s3 is the filestore driver for Amazon S3 and S3-compatible
// servers (MinIO, versitygw, Ceph, R2...). Import it for its side effect:
//
//	import _ "github.com/sluicedata/sluice/filestore/s3"
//
// and open a root such as
//
//	s3://bucket/prefix?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true
//
// Settings come from filestore.Options first, then from the URL's query
// (endpoint, region, path_style), then from the usual AWS environment
// variables and shared config (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_S3, ~/.aws/config). Credentials are never taken from
// the URL: a root is printed in logs and messages.
//
// The SDK sends CRC32 checksums with every upload. A server that refuses
// them can be served by setting AWS_REQUEST_CHECKSUM_CALCULATION=when_required.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluicedata/sluice/filestore"
)

func init() { filestore.Register("s3", open) }

const (
	defaultPartSize = 16 << 20
	// S3's limits on a multipart upload's parts, and on a single PUT or
	// CopyObject.
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	maxParts    = 10000
	// Concurrency of the upload manager: each in-flight part holds a
	// buffer of PartSize, so this bounds a writer's memory.
	uploadConcurrency = 2
	// cleanupTimeout bounds the requests that tidy up after a failure
	// (aborting a multipart upload), which run even when the caller's
	// context is cancelled.
	cleanupTimeout = 30 * time.Second
)

// Variables rather than constants so that the tests can exercise the
// multipart copy with a small object.
var (
	// singleCopyMax is the largest object CopyObject can copy.
	singleCopyMax int64 = 5 << 30
	// copyPartSize is the part size of a multipart copy; 512 MiB keeps a
	// 5 TiB object (the S3 maximum) under 10,000 parts.
	copyPartSize int64 = 512 << 20
)

// queryParams are the settings a root URL may carry.
var queryParams = []string{"endpoint", "region", "path_style"}

// store is one bucket, under an optional prefix.
type store struct {
	client   *s3.Client
	uploader *manager.Uploader
	bucket   string
	// prefix is "" or ends with "/"; keys are relative to it.
	prefix string
	// where names the server in messages: the endpoint URL or AWS S3.
	where string
}

func open(ctx context.Context, u *url.URL, opts filestore.Options) (filestore.Store, error) {
	bucket := u.Host
	// Never print u itself: its query is refused below precisely because it
	// may hold a secret.
	name := "s3://" + bucket + u.EscapedPath()
	if u.User != nil {
		return nil, fmt.Errorf("store %s: credentials in the URL are not accepted (a root is printed in logs); pass them in filestore.Options or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", name)
	}
	if bucket == "" || u.Port() != "" {
		return nil, fmt.Errorf("store %s: no bucket name: write the root as s3://bucket or s3://bucket/prefix", name)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			return nil, fmt.Errorf("store %s: the prefix: %w", name, err)
		}
		prefix += "/"
	}
	name = (&store{bucket: bucket, prefix: prefix}).String()

	q, err := parseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	endpoint := firstOf(opts.Endpoint, q["endpoint"])
	region := firstOf(opts.Region, q["region"])
	pathStyle := opts.PathStyle
	if v, ok := q["path_style"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("store %s: path_style=%q: want true or false", name, v)
		}
		pathStyle = pathStyle || b
	}
	if endpoint != "" {
		if err := checkEndpoint(endpoint); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
	}
	partSize := opts.PartSize
	switch {
	case partSize == 0:
		partSize = defaultPartSize
	case partSize < minPartSize || partSize > maxPartSize:
		return nil, fmt.Errorf("store %s: part size %d bytes is outside S3's limits: give 5 MiB (%d) to 5 GiB (%d)", name, partSize, minPartSize, maxPartSize)
	}

	// The SDK logs to stderr by default, and warns there about every
	// response without a checksum (ranged GETs have none).
	load := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region != "" {
		load = append(load, config.WithRegion(region))
	}
	switch {
	case opts.AccessKeyID != "" && opts.SecretAccessKey != "":
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	case opts.AccessKeyID != "" || opts.SecretAccessKey != "":
		return nil, fmt.Errorf("store %s: Options give an access key ID or a secret but not both: give both, or neither to use the environment", name)
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("store %s: loading the AWS configuration (AWS_* environment variables, ~/.aws/config and ~/.aws/credentials): %w", name, err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// Every self-hosted server is in "us-east-1" unless told
		// otherwise; AWS itself needs the bucket's real region.
		if o.Region == "" && o.BaseEndpoint != nil {
			o.Region = "us-east-1"
		}
		o.UsePathStyle = pathStyle
	})
	co := client.Options()
	if co.Region == "" {
		return nil, fmt.Errorf("store %s: no region: pass Options.Region or ?region=, set AWS_REGION, or set region in ~/.aws/config", name)
	}
	// Asked for here so that missing credentials are named as such, not
	// as a failed request.
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("store %s: no AWS credentials: pass them in filestore.Options, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile with AWS_PROFILE: %w", name, err)
	}
	s := &store{
		client: client,
		uploader: manager.NewUploader(client, func(up *manager.Uploader) {
			up.PartSize = partSize
			up.Concurrency = uploadConcurrency
		}),
		bucket: bucket,
		prefix: prefix,
		where:  "AWS S3 (region " + co.Region + ")",
	}
	if co.BaseEndpoint != nil {
		s.where = "endpoint " + redactURL(*co.BaseEndpoint) + " (region " + co.Region + ")"
	}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkBucket turns the usual mistakes into errors that say what to fix
// when the store is opened, not at the first write an hour later.
func (s *store) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("store %s: checking bucket %q at %s: %w", s, s.bucket, s.where, ctx.Err())
	}
	var send *smithyhttp.RequestSendError
	switch status := httpStatus(err); {
	case status == 404:
		return fmt.Errorf("store %s: bucket %q does not exist at %s: check the bucket name and the endpoint, or create the bucket", s, s.bucket, s.where)
	case status == 401 || status == 403:
		return fmt.Errorf("store %s: access to bucket %q at %s refused (HTTP %d): check the access key ID and secret (filestore.Options, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), and that the key may list the bucket", s, s.bucket, s.where, status)
	case status == 301:
		return fmt.Errorf("store %s: bucket %q is not in the region configured for %s (HTTP 301): set the bucket's region with Options.Region, ?region= or AWS_REGION", s, s.bucket, s.where)
	case errors.As(err, &send):
		return fmt.Errorf("store %s: cannot reach %s to open bucket %q: check the endpoint URL and that the server is running and reachable: %w", s, s.where, s.bucket, send.Err)
	default:
		return fmt.Errorf("store %s: checking bucket %q at %s: %w", s, s.bucket, s.where, err)
	}
}

func (s *store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *store) Close() error { return nil }

func (s *store) Local(string) (string, bool) { return "", false }

// object maps a key to its object name in the bucket.
func (s *store) object(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", fmt.Errorf("store %s: %w", s, err)
	}
	return s.prefix + key, nil
}

func (s *store) List(ctx context.Context, prefix string) iter.Seq2[filestore.Object, error] {
	return func(yield func(filestore.Object, error) bool) {
		// One page (up to 1,000 keys) at a time: a bucket may hold
		// millions of keys.
		pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.prefix + prefix),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(filestore.Object{}, fmt.Errorf("store %s: list %q: %w", s, prefix, err))
				return
			}
			for _, o := range page.Contents {
				key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
				// Keys ending in "/" are folder markers that consoles
				// create; a local folder lists no folders either.
				if !ok || key == "" || strings.HasSuffix(key, "/") {
					continue
				}
				obj := filestore.Object{
					Key:  key,
					Size: aws.ToInt64(o.Size),
					ETag: strings.Trim(aws.ToString(o.ETag), `"`),
				}
				if o.LastModified != nil {
					obj.ModTime = o.LastModified.UTC()
				}
				if !yield(obj, nil) {
					return
				}
			}
		}
	}
}

func (s *store) Stat(ctx context.Context, key string) (filestore.Object, error) {
	name, err := s.object(key)
	if err != nil {
		return filestore.Object{}, err
	}
	head, err := s.head(ctx, name)
	if err != nil {
		return filestore.Object{}, fmt.Errorf("store %s: stat %s: %w", s, key, err)
	}
	obj := filestore.Object{Key: key, Size: aws.ToInt64(head.ContentLength), ETag: strings.Trim(aws.ToString(head.ETag), `"`)}
	if head.LastModified != nil {
		obj.ModTime = head.LastModified.UTC()
	}
	return obj, nil
}

// head is HeadObject with a missing object reported as ErrNotExist.
func (s *store) head(ctx context.Context, name string) (*s3.HeadObjectOutput, error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(name)})
	if httpStatus(err) == 404 {
		return nil, filestore.ErrNotExist
	}
	return head, err
}

func (s *store) Open(ctx context.Context, key string) (filestore.Reader, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	head, err := s.head(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("store %s: open %s: %w", s, key, err)
	}
	return &reader{
		ctx:  ctx,
		s:    s,
		key:  key,
		name: name,
		size: aws.ToInt64(head.ContentLength),
		etag: aws.ToString(head.ETag),
	}, nil
}

// reader reads one object. Read streams a single GET, opened at the first
// Read; each ReadAt is its own ranged GET, so ReadAt calls may run in
// parallel. Every GET asks for the version that Open saw (If-Match), so a
// file replaced while being read fails instead of mixing two versions.
type reader struct {
	// ctx is the context given to Open: Read and ReadAt take none.
	ctx    context.Context
	s      *store
	key    string
	name   string
	size   int64
	etag   string
	body   io.ReadCloser
	pos    int64
	closed bool
}

func (r *reader) Size() int64 { return r.size }

func (r *reader) get(rng string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(r.s.bucket), Key: aws.String(r.name)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	if r.etag != "" {
		in.IfMatch = aws.String(r.etag)
	}
	out, err := r.s.client.GetObject(r.ctx, in)
	switch status := httpStatus(err); {
	case status == 404:
		return nil, fmt.Errorf("store %s: read %s: deleted since it was opened: %w", r.s, r.key, filestore.ErrNotExist)
	case status == 412:
		return nil, fmt.Errorf("store %s: read %s: the file was replaced since it was opened; open it again: %w", r.s, r.key, err)
	case err != nil:
		return nil, fmt.Errorf("store %s: read %s: %w", r.s, r.key, err)
	}
	return out.Body, nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("store %s: read %s: %w", r.s, r.key, fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		body, err := r.get("")
		if err != nil {
			return 0, err
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.pos += int64(n)
	switch {
	case err == io.EOF && r.pos < r.size:
		return n, fmt.Errorf("store %s: read %s: the stream ended at byte %d of %d: %w", r.s, r.key, r.pos, r.size, io.ErrUnexpectedEOF)
	case err == io.EOF:
		return n, io.EOF
	case err != nil:
		if r.ctx.Err() != nil {
			err = r.ctx.Err()
		}
		return n, fmt.Errorf("store %s: read %s at byte %d: %w", r.s, r.key, r.pos, err)
	}
	return n, nil
}

// ReadAt follows os.File: a read that reaches the end returns io.EOF with
// the bytes it got.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("store %s: read %s: %w", r.s, r.key, fs.ErrClosed)
	}
	if off < 0 {
		return 0, fmt.Errorf("store %s: read %s: negative offset %d", r.s, r.key, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	body, err := r.get(fmt.Sprintf("bytes=%d-%d", off, end-1))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:end-off])
	if err != nil {
		if r.ctx.Err() != nil {
			err = r.ctx.Err()
		}
		return n, fmt.Errorf("store %s: read %s: %d bytes at offset %d: %w", r.s, r.key, end-off, off, err)
	}
	if end-off < int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		return r.body.Close()
	}
	return nil
}

func (s *store) Create(ctx context.Context, key string) (filestore.Writer, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store %s: create %s: %w", s, key, err)
	}
	pr, pw := io.Pipe()
	w := &writer{ctx: ctx, s: s, key: key, name: name, pw: pw, done: make(chan struct{})}
	// The manager blocks reading the pipe, not in a request, while the
	// caller is slow to write: closing the pipe is what makes a cancelled
	// context stop it.
	w.stop = context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	go func() {
		_, err := s.uploader.Upload(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(name),
			Body:   pr,
		})
		// Unblock a Write waiting for a reader that has gone.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		w.err = err
		close(w.done)
	}()
	return w, nil
}

// errAborted ends the upload's input when Abort is called; the manager then
// aborts the multipart upload rather than completing it.
var errAborted = errors.New("write aborted")

// writer streams into the upload manager through a pipe: the manager cuts
// the stream into parts of PartSize and uploads up to two at once, so a
// writer holds about four parts in memory, whatever the file's size. S3
// shows the object only when the upload completes, which Close does.
type writer struct {
	ctx  context.Context
	s    *store
	key  string
	name string
	pw   *io.PipeWriter
	stop func() bool
	// done is closed when the upload has finished; err is its result.
	done     chan struct{}
	err      error
	finished bool
	result   error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.finished {
		return 0, fmt.Errorf("store %s: write %s: %w", w.s, w.key, fs.ErrClosed)
	}
	n, err := w.pw.Write(p)
	if err != nil {
		// The pipe says only that it is closed; say why.
		if cerr := w.ctx.Err(); cerr != nil {
			err = cerr
		}
		return n, fmt.Errorf("store %s: write %s: %w", w.s, w.key, err)
	}
	return n, nil
}

func (w *writer) Close() error {
	if w.finished {
		return w.result
	}
	w.finished = true
	// A cancelled context must fail the upload even if Close comes before
	// the context's AfterFunc has run.
	w.pw.CloseWithError(w.ctx.Err())
	<-w.done
	w.stop()
	if w.err != nil {
		w.result = fmt.Errorf("store %s: write %s: upload failed, nothing was written: %w", w.s, w.key, w.err)
		if err := w.cleanup(); err != nil {
			w.result = fmt.Errorf("%w; %w", w.result, err)
		}
	}
	return w.result
}

func (w *writer) Abort() error {
	if w.finished {
		return nil
	}
	w.finished = true
	w.pw.CloseWithError(errAborted)
	<-w.done
	w.stop()
	return w.cleanup()
}

// cleanup aborts a failed multipart upload, whose parts would otherwise
// stay in the bucket (and be billed) with no object to show for them. The
// manager tries too, but with the caller's context, which may be the very
// reason for the failure.
func (w *writer) cleanup() error {
	var mu manager.MultiUploadFailure
	if !errors.As(w.err, &mu) || mu.UploadID() == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), cleanupTimeout)
	defer cancel()
	return w.s.abortUpload(ctx, w.name, mu.UploadID())
}

func (s *store) abortUpload(ctx context.Context, name, id string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(name), UploadId: aws.String(id),
	})
	var api smithy.APIError
	if err == nil || errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload" {
		return nil
	}
	return fmt.Errorf("store %s: aborting the multipart upload %s of %s failed, its parts stay in the bucket until aborted (or a lifecycle rule removes them): %w", s, id, name, err)
}

func (s *store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(name)})
	if err != nil && httpStatus(err) != 404 {
		return fmt.Errorf("store %s: delete %s: %w", s, key, err)
	}
	return nil
}

func (s *store) Rename(ctx context.Context, from, to string) error {
	src, err := s.object(from)
	if err != nil {
		return err
	}
	dst, err := s.object(to)
	if err != nil {
		return err
	}
	head, err := s.head(ctx, src)
	if err != nil {
		return fmt.Errorf("store %s: rename %s: %w", s, from, err)
	}
	if src == dst {
		// S3 refuses to copy an object onto itself; a local rename onto
		// itself does nothing.
		return nil
	}
	if aws.ToInt64(head.ContentLength) <= singleCopyMax {
		_, err = s.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket:            aws.String(s.bucket),
			Key:               aws.String(dst),
			CopySource:        aws.String(s.copySource(src)),
			CopySourceIfMatch: head.ETag,
		})
	} else {
		err = s.copyMultipart(ctx, src, dst, head)
	}
	if err != nil {
		return fmt.Errorf("store %s: rename %s to %s: copy: %w", s, from, to, err)
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(src)})
	if err != nil {
		return fmt.Errorf("store %s: rename %s to %s: copied, but deleting %s failed (both keys now hold the file): %w", s, from, to, from, err)
	}
	return nil
}

// copyMultipart copies an object larger than CopyObject allows, part by
// part on the server.
func (s *store) copyMultipart(ctx context.Context, src, dst string, head *s3.HeadObjectOutput) error {
	size := aws.ToInt64(head.ContentLength)
	part := copyPartSize
	if size/part >= maxParts {
		part = size/maxParts + 1
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(dst),
		ContentType: head.ContentType,
		Metadata:    head.Metadata,
	})
	if err != nil {
		return err
	}
	id := aws.ToString(created.UploadId)
	fail := func(err error) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if aerr := s.abortUpload(ctx, dst, id); aerr != nil {
			return fmt.Errorf("%w; %w", err, aerr)
		}
		return err
	}
	parts := make([]types.CompletedPart, 0, (size+part-1)/part)
	for num, off := int32(1), int64(0); off < size; num, off = num+1, off+part {
		end := min(off+part, size) - 1
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket:            aws.String(s.bucket),
			Key:               aws.String(dst),
			UploadId:          aws.String(id),
			PartNumber:        aws.Int32(num),
			CopySource:        aws.String(s.copySource(src)),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
			CopySourceIfMatch: head.ETag,
		})
		if err != nil {
			return fail(fmt.Errorf("part %d (bytes %d-%d): %w", num, off, end, err))
		}
		if out.CopyPartResult == nil {
			return fail(fmt.Errorf("part %d: the server returned no part ETag", num))
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(dst),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// copySource is the x-amz-copy-source header: bucket/key, URL-encoded.
// Each segment is escaped as a query value with "+" spelled %20, since
// servers differ on whether a bare "+" is a space.
func (s *store) copySource(name string) string {
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		segs[i] = strings.ReplaceAll(url.QueryEscape(seg), "+", "%20")
	}
	return s.bucket + "/" + strings.Join(segs, "/")
}

// checkKey refuses keys that would not name the same file on every driver.
func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	if strings.Contains(key, `\`) {
		return fmt.Errorf("invalid key %q: use / to separate folders", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid key %q: no empty, . or .. path segments, and no leading or trailing /", key)
		}
	}
	return nil
}

// parseQuery reads a root's settings, refusing what it does not know:
// a misspelt setting silently ignored sends data to the wrong place.
func parseQuery(raw string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		// The parse error quotes the query, which may hold a secret.
		return nil, errors.New("the URL's query cannot be parsed: write ?endpoint=URL&region=NAME&path_style=true")
	}
	q := map[string]string{}
	for k, v := range vals {
		switch lk := strings.ToLower(k); {
		case strings.Contains(lk, "secret") || strings.Contains(lk, "key") ||
			strings.Contains(lk, "token") || strings.Contains(lk, "password") || strings.Contains(lk, "credential"):
			return nil, fmt.Errorf("URL setting %q: credentials in the URL are not accepted (a root is printed in logs); pass them in filestore.Options or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", k)
		case !slices.Contains(queryParams, k):
			return nil, fmt.Errorf("unknown URL setting %q: known settings are %s", k, strings.Join(queryParams, ", "))
		case len(v) != 1:
			return nil, fmt.Errorf("URL setting %q is given %d times: give it once", k, len(v))
		}
		q[k] = v[0]
	}
	return q, nil
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("endpoint %q: want a URL such as https://s3.example.com or http://127.0.0.1:7070", redactURL(endpoint))
	}
	if u.User != nil {
		return errors.New("endpoint: credentials in the endpoint URL are not accepted; pass them in filestore.Options or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return nil
}

// redactURL drops a URL's user information before it is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// httpStatus is the HTTP status of a failed request, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if err != nil && errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
