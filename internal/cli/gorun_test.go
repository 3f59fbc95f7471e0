package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoRunTags: `sluice debug` in a connector folder runs the connector
// with Go, built with BuildTags (so that its CSV loads go through Arrow),
// and hands it the arguments. The connector here records what Go says it
// was built with.
func TestGoRunTags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	dir := t.TempDir()
	main := `package main

import (
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	info, _ := debug.ReadBuildInfo()
	var tags string
	for _, s := range info.Settings {
		if s.Key == "-tags" {
			tags = s.Value
		}
	}
	os.WriteFile("ran.txt", []byte(tags+" "+strings.Join(os.Args[1:], " ")), 0o644)
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tagtest\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if code := goRun([]string{"debug", "--verbose"}); code != 0 {
		t.Fatalf("goRun: exit %d", code)
	}
	got, err := os.ReadFile("ran.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := BuildTags + " debug --verbose"; strings.TrimSpace(string(got)) != want {
		t.Errorf("the connector ran as %q, want %q", got, want)
	}
}
