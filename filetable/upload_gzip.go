package filetable

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// gzipPart compresses a part of a split gzipped file as it is written, and
// counts the compressed bytes, which the partition size is about.
type gzipPart struct {
	part *partWriter
	zw   *gzip.Writer
	n    int64 // compressed bytes written to part
}

func newGzipPart(part *partWriter) *gzipPart {
	g := &gzipPart{part: part}
	// The fastest level: the parts are written at about the speed the
	// file is read, and compress about as well as the usual level on
	// data files, for a fraction of its CPU.
	g.zw, _ = gzip.NewWriterLevel(gzipCounter{g}, gzip.BestSpeed) // a valid level never fails
	return g
}

func (g *gzipPart) Write(p []byte) (int, error) { return g.zw.Write(p) }

// Close ends the gzip stream, then the part; on an error the part stays
// open, for the upload to abort it.
func (g *gzipPart) Close() error {
	if err := g.zw.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	return g.part.Close()
}

type gzipCounter struct{ g *gzipPart }

func (c gzipCounter) Write(p []byte) (int, error) {
	n, err := c.g.part.Write(p)
	c.g.n += int64(n)
	return n, err
}

// gzipReader decompresses a gzipped upload, saying that its errors are about
// the file's compression.
type gzipReader struct{ zr *gzip.Reader }

func newGzipReader(r io.Reader) (*gzipReader, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a valid gzip file (%w); check the file or download it again", err)
	}
	return &gzipReader{zr: zr}, nil
}

func (g *gzipReader) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("the gzip stream is damaged or cut short (%w); check the file or download it again", err)
	}
	return n, err
}

// copyWholeChecked copies a gzipped file as it is into the single object
// next opens, decompressing it on the side: a damaged or truncated file
// fails the copy, and the object is never published.
func copyWholeChecked(ctx context.Context, next func(int) (io.WriteCloser, error), r io.Reader) error {
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		zr, err := newGzipReader(pr)
		if err == nil {
			_, err = io.Copy(io.Discard, zr)
		}
		// Also unblocks the copy, should the check end first.
		pr.CloseWithError(err)
		checked <- err
	}()
	err := copyWhole(ctx, next, io.TeeReader(r, pw))
	pw.CloseWithError(err) // nil: the end of the file for the check
	if cerr := <-checked; cerr != nil {
		// The check's error says more than the copy's broken pipe.
		return cerr
	}
	return err
}
