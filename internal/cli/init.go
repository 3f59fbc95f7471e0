package cli

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sluicedata/sluice/examples"
)

const modulePath = "github.com/sluicedata/sluice"

// Templates lists the examples `sluice init` can start from.
func Templates() []string {
	entries, _ := fs.ReadDir(examples.FS, ".")
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func runInit(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("init", flag.ContinueOnError)
	fset.SetOutput(stderr)
	tmpl := fset.String("template", "hello", "example to start from: "+strings.Join(Templates(), ", "))
	src := fset.String("sluice-source", "", "a local sluice source folder to build against (adds a go.mod replace)")
	if err := fset.Parse(reorder(args)); err != nil {
		return 2
	}
	if fset.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: sluice init NAME [--template T]")
		return 2
	}
	name := fset.Arg(0)
	if err := initProject(name, *tmpl, *src); err != nil {
		fmt.Fprintf(stderr, "init: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %s from the %q example\nnext: cd %s && go mod tidy && go run . debug\n", name, *tmpl, name)
	return 0
}

// reorder moves flags before positional arguments, so that both
// "init NAME --template T" and "init --template T NAME" work.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func initProject(dir, tmpl, sluiceSource string) error {
	sub, err := fs.Sub(examples.FS, tmpl)
	if err != nil {
		return err
	}
	if _, err := fs.Stat(sub, "main.go"); err != nil {
		return fmt.Errorf("no template %q (have: %s)", tmpl, strings.Join(Templates(), ", "))
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists: choose another name", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, p)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(p, "_test.go") {
			return nil // the example's own tests run in sluice's tree
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return err
	}
	mod := filepath.Base(dir)
	gomod := "module " + mod + "\n\ngo 1.26\n\nrequire " + modulePath + " v0.0.0\n"
	if sluiceSource != "" {
		abs, err := filepath.Abs(sluiceSource)
		if err != nil {
			return err
		}
		gomod += "\nreplace " + modulePath + " => " + abs + "\n"
	}
	return os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
}
