package filestore_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/filestore"
	"github.com/sluicedata/sluice/filestore/storetest"
)

func openLocal(t *testing.T) filestore.Store {
	st, err := filestore.Open(t.Context(), t.TempDir(), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, openLocal)
}

func TestLocalPath(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(t.Context(), "file://"+filepath.ToSlash(dir), filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Write(t, st, "x/y.csv", []byte("y"))
	p, ok := st.Local("x/y.csv")
	if !ok || p != filepath.Join(dir, "x", "y.csv") {
		t.Fatalf("Local = %q, %v; want %q", p, ok, filepath.Join(dir, "x", "y.csv"))
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "y" {
		t.Errorf("the file at Local's path holds %q, %v", b, err)
	}
	if st.String() != dir {
		t.Errorf("String() = %q, want %q", st.String(), dir)
	}
}

// A prefix that climbs out of the root must not list the folder above it.
func TestLocalListPrefixStaysInRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "outside.csv"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := filestore.Open(t.Context(), root, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"../", "../outside", "a/../../"} {
		if keys := storetest.Keys(t, st, prefix); len(keys) != 0 {
			t.Errorf("List(%q) = %q, want nothing", prefix, keys)
		}
	}
}

func TestLocalOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.csv")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ root, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{file, "not a folder"},
		{"file://otherhost/data", "not supported"},
		{"", "empty store root"},
		{"ftp://host/x", `no driver for scheme "ftp"`},
	}
	for _, c := range cases {
		_, err := filestore.Open(t.Context(), c.root, filestore.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v, want an error saying %q", c.root, err, c.want)
		}
	}
}

// Deleting the last file of a folder removes the folder: to a reader of
// the store a folder is a table.
func TestLocalDeleteRemovesEmptyFolders(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(t.Context(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Write(t, st, "t/date=1/p.csv", []byte("p"))
	if err := st.Delete(t.Context(), "t/date=1/p.csv"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		slices.Sort(names)
		t.Errorf("root holds %q after deleting its only file, want nothing", names)
	}
}

// A written file is readable by others, as any file the user writes; a
// rename or delete that empties a folder removes it (a folder is a table).
func TestLocalModeAndEmptyFolders(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(t.Context(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Write(t, st, "a/b/part.csv", []byte("x"))
	fi, err := os.Stat(filepath.Join(dir, "a", "b", "part.csv"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode().Perm(), err)
	}
	if err := st.Rename(t.Context(), "a/b/part.csv", "c/part.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("the emptied folder a is still there: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the root went: %v", err)
	}
}
