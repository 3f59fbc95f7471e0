// Package storetest is the conformance suite of filestore drivers: every
// driver runs it from its tests, so that callers see one behaviour whatever
// the store.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/sluicedata/sluice/filestore"
)

// LargeSize is the size of the file the suite round-trips to cross
// multipart boundaries: give S3 a part size of 5 MiB (its minimum) so that
// it takes three parts.
const LargeSize = 12<<20 + 12345

// Run runs the suite. open must return an empty store, a new one for each
// call (each subtest calls it once).
func Run(t *testing.T, open func(t *testing.T) filestore.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, filestore.Store)
	}{
		{"WriteRead", testWriteRead},
		{"ReadAt", testReadAt},
		{"EmptyFile", testEmptyFile},
		{"Overwrite", testOverwrite},
		{"NotVisibleBeforeClose", testNotVisibleBeforeClose},
		{"Abort", testAbort},
		{"List", testList},
		{"Delete", testDelete},
		{"Rename", testRename},
		{"Missing", testMissing},
		{"InvalidKey", testInvalidKey},
		{"Large", testLarge},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, st)
		})
	}
}

// pattern returns n bytes that differ at every offset a test might pick,
// so a read at the wrong offset shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// Write stores data under key and fails the test on error.
func Write(t *testing.T, st filestore.Store, key string, data []byte) {
	t.Helper()
	w, err := st.Create(t.Context(), key)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		t.Fatalf("Write(%q): %v", key, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%q): %v", key, err)
	}
}

// Read returns the content of key through Read, and fails the test on
// error.
func Read(t *testing.T, st filestore.Store, key string) []byte {
	t.Helper()
	r, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if int64(len(b)) != r.Size() {
		t.Fatalf("%q: read %d bytes, Size() says %d", key, len(b), r.Size())
	}
	return b
}

// Keys lists the keys under prefix.
func Keys(t *testing.T, st filestore.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	for o, err := range st.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

func wantNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, filestore.ErrNotExist) {
		t.Errorf("%s: got error %v, want one wrapping filestore.ErrNotExist", what, err)
	}
}

func testWriteRead(t *testing.T, st filestore.Store) {
	data := pattern(100_000, 1)
	Write(t, st, "a.csv", data)

	obj, err := st.Stat(t.Context(), "a.csv")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if obj.Key != "a.csv" || obj.Size != int64(len(data)) || obj.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key a.csv, size %d and a modification time", obj, len(data))
	}
	if bytes.ContainsAny([]byte(obj.ETag), `"`) {
		t.Errorf("Stat: ETag %s is quoted", obj.ETag)
	}
	if got := Read(t, st, "a.csv"); !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes that differ from the %d written", len(got), len(data))
	}

	// Reading in small pieces crosses the boundaries of whatever the
	// driver buffers.
	r, err := st.Open(t.Context(), "a.csv")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var got []byte
	buf := make([]byte, 777)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read back in 777-byte pieces: %d bytes that differ from the %d written", len(got), len(data))
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// The listing agrees with Stat.
	var listed []filestore.Object
	for o, err := range st.List(t.Context(), "") {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		listed = append(listed, o)
	}
	if len(listed) != 1 || listed[0].Key != "a.csv" || listed[0].Size != obj.Size || listed[0].ETag != obj.ETag || listed[0].ModTime.IsZero() {
		t.Errorf("List = %+v, want one object like Stat's %+v", listed, obj)
	}
}

func testReadAt(t *testing.T, st filestore.Store) {
	const size = 10_000
	data := pattern(size, 2)
	Write(t, st, "dir/r.bin", data)
	r, err := st.Open(t.Context(), "dir/r.bin")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if r.Size() != size {
		t.Errorf("Size() = %d, want %d", r.Size(), size)
	}
	// os.File's rules: a read that fills p returns nil even if it ends at
	// the last byte; a read that reaches the end early returns io.EOF
	// with what it read.
	cases := []struct {
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{0, 10, 10, false},
		{size - 8, 8, 8, false}, // the footer, as Parquet reads it
		{1234, 4000, 4000, false},
		{size - 5, 10, 5, true},   // spans the end
		{size, 10, 0, true},       // at the end
		{size + 100, 10, 0, true}, // past the end
		{0, size + 1, size, true},
	}
	for _, c := range cases {
		p := make([]byte, c.n)
		n, err := r.ReadAt(p, c.off)
		if n != c.wantN || (err == io.EOF) != c.wantEOF || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d, EOF %v", c.n, c.off, n, err, c.wantN, c.wantEOF)
			continue
		}
		if n > 0 && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
			t.Errorf("ReadAt(%d bytes at %d): wrong bytes", c.n, c.off)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil || err == io.EOF {
		t.Errorf("ReadAt at offset -1: got %v, want an error", err)
	}

	// io.ReaderAt allows parallel calls; ReadAt leaves Read's position
	// alone.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			off := int64(i * 2000)
			p := make([]byte, 1500)
			if _, err := r.ReadAt(p, off); err != nil {
				errs[i] = err
			} else if !bytes.Equal(p, data[off:off+1500]) {
				errs[i] = fmt.Errorf("wrong bytes at %d", off)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("parallel ReadAt: %v", err)
	}
	all, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(all, data) {
		t.Errorf("Read after ReadAt: %d bytes, %v; want the whole file from its start", len(all), err)
	}
}

func testEmptyFile(t *testing.T, st filestore.Store) {
	Write(t, st, "empty.csv", nil)
	obj, err := st.Stat(t.Context(), "empty.csv")
	if err != nil || obj.Size != 0 {
		t.Fatalf("Stat = %+v, %v; want size 0", obj, err)
	}
	r, err := st.Open(t.Context(), "empty.csv")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := r.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt = %d, %v; want 0, io.EOF", n, err)
	}
}

func testOverwrite(t *testing.T, st filestore.Store) {
	Write(t, st, "o.csv", []byte("first version, longer than the second"))
	before, err := st.Stat(t.Context(), "o.csv")
	if err != nil {
		t.Fatal(err)
	}
	Write(t, st, "o.csv", []byte("second"))
	if got := Read(t, st, "o.csv"); string(got) != "second" {
		t.Errorf("after overwrite read %q, want %q", got, "second")
	}
	after, err := st.Stat(t.Context(), "o.csv")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != 6 || (before.ETag != "" && before.ETag == after.ETag) {
		t.Errorf("Stat after overwrite = %+v (before: %+v); want size 6 and a new ETag", after, before)
	}
}

func testNotVisibleBeforeClose(t *testing.T, st filestore.Store) {
	w, err := st.Create(t.Context(), "pending/p.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(1000, 3)); err != nil {
		t.Fatal(err)
	}
	_, err = st.Stat(t.Context(), "pending/p.csv")
	wantNotExist(t, "Stat before Close", err)
	_, err = st.Open(t.Context(), "pending/p.csv")
	wantNotExist(t, "Open before Close", err)
	if keys := Keys(t, st, ""); len(keys) != 0 {
		t.Errorf("List before Close = %q, want nothing", keys)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if keys := Keys(t, st, ""); !slices.Equal(keys, []string{"pending/p.csv"}) {
		t.Errorf("List after Close = %q, want [pending/p.csv]", keys)
	}
	// Close twice is harmless, Write after Close is not.
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close succeeded")
	}
}

func testAbort(t *testing.T, st filestore.Store) {
	// A small file, a large one (several parts on S3), and an aborted
	// overwrite that must leave the old content.
	for _, size := range []int{1000, LargeSize} {
		w, err := st.Create(t.Context(), "aborted.bin")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pattern(size, 4)); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after %d bytes: %v", size, err)
		}
		_, err = st.Stat(t.Context(), "aborted.bin")
		wantNotExist(t, fmt.Sprintf("Stat after Abort of %d bytes", size), err)
		if keys := Keys(t, st, ""); len(keys) != 0 {
			t.Errorf("List after Abort of %d bytes = %q, want nothing", size, keys)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
	}

	Write(t, st, "kept.csv", []byte("old"))
	w, err := st.Create(t.Context(), "kept.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("new content")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := Read(t, st, "kept.csv"); string(got) != "old" {
		t.Errorf("after an aborted overwrite read %q, want %q", got, "old")
	}
}

func testList(t *testing.T, st filestore.Store) {
	// "b.csv" sorts before "b/c.csv" ('.' < '/'), which a folder walk
	// does not give by itself.
	files := map[string]int{
		"a.csv":                                 10,
		"b.csv":                                 11,
		"b/c.csv":                               12,
		"b/d/e.csv":                             13,
		"events/date=2024-01-01/part-0.parquet": 14,
		"events/date=2024-01-02/part-0.parquet": 15,
		"events/dates.txt":                      16,
		"with space+plus/é.csv":                 17,
		"z.csv":                                 18,
	}
	for k, n := range files {
		Write(t, st, k, pattern(n, 5))
	}
	all := []string{
		"a.csv", "b.csv", "b/c.csv", "b/d/e.csv",
		"events/date=2024-01-01/part-0.parquet", "events/date=2024-01-02/part-0.parquet", "events/dates.txt",
		"with space+plus/é.csv", "z.csv",
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"b", []string{"b.csv", "b/c.csv", "b/d/e.csv"}},
		{"b/", []string{"b/c.csv", "b/d/e.csv"}},
		{"b/d/", []string{"b/d/e.csv"}},
		{"events/date=", []string{"events/date=2024-01-01/part-0.parquet", "events/date=2024-01-02/part-0.parquet"}},
		{"events/date=2024-01-02/", []string{"events/date=2024-01-02/part-0.parquet"}},
		{"with space+plus/", []string{"with space+plus/é.csv"}},
		{"a.csv", []string{"a.csv"}},
		{"nothing/", []string{}},
		{"zz", []string{}},
		{"events/date=2025", []string{}},
	}
	for _, c := range cases {
		if got := Keys(t, st, c.prefix); !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
	for o, err := range st.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != int64(files[o.Key]) {
			t.Errorf("List: %s has size %d, want %d", o.Key, o.Size, files[o.Key])
		}
	}
	// A consumer that stops early stops the listing.
	n := 0
	for _, err := range st.List(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Errorf("List after break yielded %d objects", n)
	}
}

func testDelete(t *testing.T, st filestore.Store) {
	Write(t, st, "d/x.csv", []byte("x"))
	Write(t, st, "d/y.csv", []byte("y"))
	if err := st.Delete(t.Context(), "d/x.csv"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := st.Stat(t.Context(), "d/x.csv")
	wantNotExist(t, "Stat after Delete", err)
	if keys := Keys(t, st, ""); !slices.Equal(keys, []string{"d/y.csv"}) {
		t.Errorf("List after Delete = %q, want [d/y.csv]", keys)
	}
	if err := st.Delete(t.Context(), "d/x.csv"); err != nil {
		t.Errorf("deleting it again: %v, want no error", err)
	}
	if err := st.Delete(t.Context(), "never/was.csv"); err != nil {
		t.Errorf("deleting a key that never existed: %v, want no error", err)
	}
	if err := st.Delete(t.Context(), "d/y.csv"); err != nil {
		t.Fatal(err)
	}
	if keys := Keys(t, st, ""); len(keys) != 0 {
		t.Errorf("List after deleting everything = %q, want nothing", keys)
	}
}

func testRename(t *testing.T, st filestore.Store) {
	data := pattern(50_000, 6)
	Write(t, st, "from/x.csv", data)
	if err := st.Rename(t.Context(), "from/x.csv", "to/y z+é.csv"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	if got := Read(t, st, "to/y z+é.csv"); !bytes.Equal(got, data) {
		t.Errorf("renamed file: %d bytes that differ from the %d written", len(got), len(data))
	}
	_, err := st.Stat(t.Context(), "from/x.csv")
	wantNotExist(t, "Stat of the renamed source", err)
	if keys := Keys(t, st, ""); !slices.Equal(keys, []string{"to/y z+é.csv"}) {
		t.Errorf("List after Rename = %q, want only the target", keys)
	}

	// Onto an existing key: replaced.
	Write(t, st, "new.csv", []byte("new"))
	if err := st.Rename(t.Context(), "new.csv", "to/y z+é.csv"); err != nil {
		t.Fatalf("Rename onto an existing key: %v", err)
	}
	if got := Read(t, st, "to/y z+é.csv"); string(got) != "new" {
		t.Errorf("Rename onto an existing key: target holds %q, want %q", got, "new")
	}

	err = st.Rename(t.Context(), "missing.csv", "other.csv")
	wantNotExist(t, "Rename of a missing key", err)
	_, err = st.Stat(t.Context(), "other.csv")
	wantNotExist(t, "Stat of the target of a failed Rename", err)

	// Onto itself: nothing changes.
	if err := st.Rename(t.Context(), "new.csv", "new.csv"); !errors.Is(err, filestore.ErrNotExist) {
		t.Errorf("Rename of a renamed-away key onto itself: %v, want ErrNotExist", err)
	}
	Write(t, st, "same.csv", []byte("same"))
	if err := st.Rename(t.Context(), "same.csv", "same.csv"); err != nil {
		t.Errorf("Rename onto itself: %v", err)
	}
	if got := Read(t, st, "same.csv"); string(got) != "same" {
		t.Errorf("after Rename onto itself read %q", got)
	}
}

func testMissing(t *testing.T, st filestore.Store) {
	Write(t, st, "dir/present.csv", []byte("here"))
	for _, key := range []string{"missing.csv", "dir/missing.csv", "dir"} {
		_, err := st.Stat(t.Context(), key)
		wantNotExist(t, fmt.Sprintf("Stat(%q)", key), err)
		_, err = st.Open(t.Context(), key)
		wantNotExist(t, fmt.Sprintf("Open(%q)", key), err)
	}
}

func testInvalidKey(t *testing.T, st filestore.Store) {
	for _, key := range []string{"", "/"} {
		if _, err := st.Stat(t.Context(), key); err == nil || errors.Is(err, filestore.ErrNotExist) {
			t.Errorf("Stat(%q): %v, want an invalid-key error", key, err)
		}
		if w, err := st.Create(t.Context(), key); err == nil {
			w.Abort()
			t.Errorf("Create(%q) succeeded, want an invalid-key error", key)
		}
	}
}

func testLarge(t *testing.T, st filestore.Store) {
	// Written in odd-sized pieces so that no write lines up with a part.
	data := pattern(LargeSize, 7)
	w, err := st.Create(t.Context(), "large.bin")
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+7)
		if _, err := w.Write(rest[:n]); err != nil {
			w.Abort()
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	obj, err := st.Stat(t.Context(), "large.bin")
	if err != nil || obj.Size != LargeSize {
		t.Fatalf("Stat = %+v, %v; want size %d", obj, err, LargeSize)
	}

	r, err := st.Open(t.Context(), "large.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if n, err := io.Copy(h, r); err != nil || n != LargeSize {
		t.Fatalf("reading back: %d bytes, %v", n, err)
	}
	if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Errorf("read back %d bytes whose SHA-256 differs from what was written", LargeSize)
	}
	// Across the boundary of the first 5 MiB part.
	p := make([]byte, 1000)
	off := int64(5<<20 - 500)
	if _, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+1000]) {
		t.Errorf("ReadAt across a part boundary: %v or wrong bytes", err)
	}
}

func testCancelled(t *testing.T, st filestore.Store) {
	Write(t, st, "c.csv", []byte("c"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", what, err)
		}
	}
	_, err := st.Stat(ctx, "c.csv")
	check("Stat", err)
	_, err = st.Open(ctx, "c.csv")
	check("Open", err)
	err = nil
	for _, e := range st.List(ctx, "") {
		if e != nil {
			err = e
			break
		}
	}
	check("List", err)
	if w, err := st.Create(ctx, "new.csv"); err == nil {
		// A driver may fail at Create or later; the file must not appear.
		w.Write([]byte("x"))
		check("Close", w.Close())
	}
	check("Delete", st.Delete(ctx, "c.csv"))
	check("Rename", st.Rename(ctx, "c.csv", "d.csv"))
	if keys := Keys(t, st, ""); !slices.Equal(keys, []string{"c.csv"}) {
		t.Errorf("after cancelled operations List = %q, want [c.csv] untouched", keys)
	}

	// Cancelled while writing: Close fails, and nothing appears.
	ctx, cancel = context.WithCancel(t.Context())
	w, err := st.Create(ctx, "half.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pattern(1000, 8)); err != nil {
		t.Fatal(err)
	}
	cancel()
	check("Close of a writer whose context was cancelled", w.Close())
	_, err = st.Stat(t.Context(), "half.csv")
	wantNotExist(t, "Stat of a file whose writer was cancelled", err)
}
