package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

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
	src := fset.String("sluice-source", "", "a local sluice source folder to build against (adds a go.mod replace; default: the version or source this sluice was built from)")
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
	version, replace, err := sluiceModule(sluiceSource)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	mod := filepath.Base(dir)
	gomod := "module " + mod + "\n\ngo 1.26\n\nrequire " + modulePath + " " + version + "\n"
	if replace != "" {
		gomod += "\nreplace " + modulePath + " => " + replace + "\n"
	}
	return os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
}

// sluiceModule decides how the new project gets sluice: from the source
// folder given; else the published version this program was built as
// (go install .../cmd/sluice@vX); else the source folder it was built from
// (go install ./cmd/sluice in a checkout), found by this file's path, which
// the compiler records unless the build used -trimpath.
func sluiceModule(source string) (version, replace string, err error) {
	if source != "" {
		abs, err := filepath.Abs(source)
		if err != nil {
			return "", "", err
		}
		if !isSluiceSource(abs) {
			return "", "", fmt.Errorf("--sluice-source %s: no go.mod of module %s there; give the folder of a sluice checkout", abs, modulePath)
		}
		return "v0.0.0", abs, nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == modulePath && semver.IsValid(bi.Main.Version) &&
		!module.IsPseudoVersion(bi.Main.Version) && semver.Build(bi.Main.Version) == "" {
		// A pseudo-version or +dirty is what go build stamps on a checkout:
		// no proxy has it.
		return bi.Main.Version, "", nil
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // internal/cli/init.go
		if isSluiceSource(root) {
			return "v0.0.0", root, nil
		}
	}
	return "", "", errors.New("this sluice program knows neither its published version nor its source folder: pass --sluice-source DIR, the folder of a sluice checkout")
}

func isSluiceSource(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && modfile.ModulePath(b) == modulePath
}
