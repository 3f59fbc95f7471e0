package filetable

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"iter"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicedata/sluice/filestore"
	_ "github.com/sluicedata/sluice/filestore/s3"
	"github.com/sluicedata/sluice/filestore/storetest"
	"github.com/sluicedata/sluice/internal/s3test"
)

// isolateAWS keeps the machine's own AWS settings out of a test.
func isolateAWS(t *testing.T) {
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

// bothStores runs fn against an empty local folder and an empty prefix of
// a real S3 server (skipped, alone, when the server is not installed).
func bothStores(t *testing.T, fn func(t *testing.T, st filestore.Store)) {
	t.Run("local", func(t *testing.T) {
		fn(t, localStore(t))
	})
	t.Run("s3", func(t *testing.T) {
		isolateAWS(t)
		root, opts := s3test.Start(t)
		// A small multipart part size, so that the larger test parts go
		// through multipart upload.
		opts.PartSize = 5 << 20
		st, err := filestore.Open(t.Context(), root+"/tables", opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

func localStore(t *testing.T) filestore.Store {
	st, err := filestore.Open(t.Context(), t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func put(t *testing.T, st filestore.Store, key, data string) {
	t.Helper()
	storetest.Write(t, st, key, []byte(data))
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type pqRow struct {
	ID    int64   `parquet:"id"`
	Name  string  `parquet:"name"`
	Score float64 `parquet:"score"`
}

// pqFile writes rows from..to-1 as Parquet with parquet-go, rowGroup rows
// per row group.
func pqFile(t testing.TB, from, to, rowGroup int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pqRow](&buf, parquet.MaxRowsPerRowGroup(int64(rowGroup)))
	for i := from; i < to; i++ {
		if _, err := w.Write([]pqRow{{ID: int64(i), Name: "name " + strings.Repeat("x", i%7), Score: float64(i) / 4}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads every row of a table, copying values.
func readAll(t *testing.T, tb *Table) ([]Column, [][]any) {
	t.Helper()
	rows, err := tb.Rows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		v := rows.Values()
		if len(v) != len(rows.Columns()) {
			t.Fatalf("row %d: %d values for %d columns", len(out)+1, len(v), len(rows.Columns()))
		}
		out = append(out, append([]any(nil), v...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return rows.Columns(), out
}

func table(t *testing.T, st filestore.Store, name string) *Table {
	t.Helper()
	tb, err := New(st).Table(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func colNames(cols []Column) string {
	var s []string
	for _, c := range cols {
		s = append(s, c.Name+" "+typeName(c))
	}
	return strings.Join(s, ", ")
}

func typeName(c Column) string { return c.Type.String() }

// faultyStore is a real store whose Create or Rename fails after a number
// of successful calls, as a network or a full disk would.
type faultyStore struct {
	filestore.Store
	createsLeft, renamesLeft atomic.Int64
}

var errInjected = errors.New("injected failure")

func faulty(st filestore.Store, creates, renames int64) *faultyStore {
	f := &faultyStore{Store: st}
	f.createsLeft.Store(creates)
	f.renamesLeft.Store(renames)
	return f
}

func (f *faultyStore) Create(ctx context.Context, key string) (filestore.Writer, error) {
	if f.createsLeft.Add(-1) < 0 {
		return nil, errInjected
	}
	return f.Store.Create(ctx, key)
}

func (f *faultyStore) Rename(ctx context.Context, from, to string) error {
	if f.renamesLeft.Add(-1) < 0 {
		return errInjected
	}
	return f.Store.Rename(ctx, from, to)
}

func (f *faultyStore) List(ctx context.Context, prefix string) iter.Seq2[filestore.Object, error] {
	return f.Store.List(ctx, prefix)
}
