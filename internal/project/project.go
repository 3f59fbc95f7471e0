// Package project reads and writes a project's settings file, sluice.json
// in the project folder, and resolves the names saved in it.
//
// The file is a JSON object. This package owns its "stores" key and keeps
// every other top-level key's value as it is (re-indented; numbers keep
// their spelling), for the other parts of sluice that keep settings there:
//
//	{
//	  "stores": {
//	    "lake": {
//	      "root": "s3://bucket/raw",
//	      "endpoint": "http://127.0.0.1:7070",
//	      "region": "us-east-1",
//	      "path_style": true,
//	      "access_key_env": "LAKE_ACCESS_KEY_ID",
//	      "secret_key_env": "LAKE_SECRET_ACCESS_KEY"
//	    }
//	  }
//	}
//
// Credentials are never written: a store names the environment variables
// that hold them.
//
// The "destination" key, also this package's, is the warehouse `sluice
// debug` and `sluice run` sync into when neither --destination nor
// SLUICE_DESTINATION names one: a URL without a password, or an object
// whose password_env names the environment variable holding the password:
//
//	"destination": {
//	  "url": "postgres://loader@db:5432/dw?sslmode=disable",
//	  "password_env": "DW_PASSWORD"
//	}
package project

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/sluicedata/sluice/filestore"
)

// FileName is the settings file's name in the project folder.
const FileName = "sluice.json"

// Store is a saved file store.
type Store struct {
	// Root is a folder (relative to the project folder, or absolute), a
	// file:// URL or an s3://bucket/prefix URL.
	Root      string `json:"root"`
	Endpoint  string `json:"endpoint,omitempty"`
	Region    string `json:"region,omitempty"`
	PathStyle bool   `json:"path_style,omitempty"`
	// AccessKeyEnv and SecretKeyEnv name the environment variables that
	// hold the credentials; empty means the usual AWS variables.
	AccessKeyEnv string `json:"access_key_env,omitempty"`
	SecretKeyEnv string `json:"secret_key_env,omitempty"`
}

// Destination is the project's saved destination.
type Destination struct {
	// URL is a destination URL without a password.
	URL string `json:"url"`
	// PasswordEnv names the environment variable that holds the URL's
	// password; empty for a destination without one.
	PasswordEnv string `json:"password_env,omitempty"`
}

// File is a project's settings file.
type File struct {
	// Path is where the file is read from and saved to.
	Path   string
	Stores map[string]Store
	// Destination is the saved destination, nil for none.
	Destination *Destination
	// rest holds the other top-level keys, untouched.
	rest map[string]json.RawMessage
}

// Load reads dir's settings file; a missing file is an empty one.
func Load(dir string) (*File, error) {
	p := filepath.Join(dir, FileName)
	f := &File{Path: p, Stores: map[string]Store{}, rest: map[string]json.RawMessage{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f.rest); err != nil || dec.More() || f.rest == nil {
		return nil, fmt.Errorf("%s: not a JSON object (%v); fix or remove the file", p, describe(err, b))
	}
	if raw, ok := f.rest["stores"]; ok {
		if err := json.Unmarshal(raw, &f.Stores); err != nil {
			return nil, fmt.Errorf(`%s: "stores" must be an object of stores, each {"root": ...}: %v`, p, err)
		}
		if f.Stores == nil {
			f.Stores = map[string]Store{}
		}
		for name, s := range f.Stores {
			if err := checkStore(name, s); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		delete(f.rest, "stores")
	}
	if raw, ok := f.rest["destination"]; ok {
		d, err := parseDestination(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f.Destination = d
		delete(f.rest, "destination")
	}
	return f, nil
}

// parseDestination reads the "destination" key: a URL string or an
// object {"url": ..., "password_env": ...}.
func parseDestination(raw json.RawMessage) (*Destination, error) {
	var d Destination
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d.URL = s
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			// The error would quote the value, which may hold a secret.
			return nil, errors.New(`"destination" must be a URL or {"url": "postgres://user@host:5432/db", "password_env": "VARIABLE"} (no other keys)`)
		}
	}
	if err := checkDestination(d); err != nil {
		return nil, err
	}
	return &d, nil
}

func checkDestination(d Destination) error {
	if d.URL == "" {
		return errors.New(`"destination" has no url`)
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return errors.New(`"destination": url is not a valid URL`)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return errors.New(`"destination": the url holds a password, and sluice.json must not: remove it from the url, put it in an environment variable and name that variable in "password_env"`)
		}
	}
	if d.PasswordEnv != "" {
		if !envName.MatchString(d.PasswordEnv) {
			return errors.New(`"destination": password_env must be the NAME of an environment variable (upper case letters, digits and _), not its value`)
		}
		if u.User == nil || u.User.Username() == "" {
			return errors.New(`"destination": password_env is set but the url names no user: write it as scheme://user@host/...`)
		}
	}
	return nil
}

// DestinationURL is the saved destination's URL with its password taken
// from the environment; ok is false when the file saves none. The error
// names the variable, never a value.
func (f *File) DestinationURL() (dest string, ok bool, err error) {
	d := f.Destination
	if d == nil {
		return "", false, nil
	}
	if d.PasswordEnv == "" {
		return d.URL, true, nil
	}
	pw, set := os.LookupEnv(d.PasswordEnv)
	if !set || pw == "" {
		return "", true, fmt.Errorf("%s: the destination's password_env names %s, which is not set: export it, or give the destination with --destination", f.Path, d.PasswordEnv)
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return "", true, fmt.Errorf("%s: the destination url is not a valid URL", f.Path)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), true, nil
}

func describe(err error, b []byte) string {
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
			return fmt.Sprintf("line %d: %v", line, err)
		}
		return err.Error()
	}
	return "more after the object"
}

// Save writes the file, through a temporary file renamed over it, so that
// a failure never leaves half a file.
func (f *File) Save() error {
	out := make(map[string]json.RawMessage, len(f.rest)+1)
	for k, v := range f.rest {
		out[k] = v
	}
	if len(f.Stores) > 0 {
		b, err := json.Marshal(f.Stores)
		if err != nil {
			return err
		}
		out["stores"] = b
	}
	if d := f.Destination; d != nil {
		if err := checkDestination(*d); err != nil {
			return err
		}
		var v any = d
		if d.PasswordEnv == "" {
			v = d.URL
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out["destination"] = b
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+FileName+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.Path)
}

var (
	storeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	// Environment variable names are upper case here: a secret pasted
	// where its variable's name belongs (a mistake that would write it
	// into the file) almost always has lower-case letters or symbols.
	envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

func checkStore(name string, s Store) error {
	if !storeName.MatchString(name) {
		return fmt.Errorf("store name %q: use a letter, then letters, digits, _ or -", name)
	}
	if s.Root == "" {
		return fmt.Errorf("store %s has no root", name)
	}
	if _, err := filestore.ParseRoot(s.Root); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	for _, e := range []struct{ flag, v string }{{"access_key_env", s.AccessKeyEnv}, {"secret_key_env", s.SecretKeyEnv}} {
		if e.v != "" && !envName.MatchString(e.v) {
			return fmt.Errorf("store %s: %s must be the NAME of an environment variable (upper case letters, digits and _), not its value", name, e.flag)
		}
	}
	return nil
}

// AddStore saves a store under name; a name already saved is an error.
func (f *File) AddStore(name string, s Store) error {
	if err := checkStore(name, s); err != nil {
		return err
	}
	if _, ok := f.Stores[name]; ok {
		return fmt.Errorf("a store named %s is already saved in %s: remove it first", name, f.Path)
	}
	f.Stores[name] = s
	return nil
}

// RemoveStore forgets a saved store.
func (f *File) RemoveStore(name string) error {
	if _, ok := f.Stores[name]; !ok {
		return f.noStore(name)
	}
	delete(f.Stores, name)
	return nil
}

// StoreNames returns the saved stores' names, sorted.
func (f *File) StoreNames() []string {
	names := make([]string, 0, len(f.Stores))
	for n := range f.Stores {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f *File) noStore(name string) error {
	if len(f.Stores) == 0 {
		return fmt.Errorf("no store named %s: %s saves none", name, f.Path)
	}
	return fmt.Errorf("no store named %s in %s (saved: %s)", name, f.Path, strings.Join(f.StoreNames(), ", "))
}

// Resolved is a root argument made ready for filestore.Open.
type Resolved struct {
	Root    string
	Options filestore.Options
	// Store is the saved store's name, empty for a root given as is.
	Store string
}

// Resolve turns a root argument into a store root with its options:
//
//   - @NAME is always the saved store NAME;
//   - a bare NAME (no /, no scheme) that is a saved store's name is that
//     store, unless the project folder also holds a file or folder of that
//     name: that is an error asking for @NAME or ./NAME;
//   - anything else is a root as is (a folder, file:// or s3:// URL).
//
// A saved store's settings come first, then the non-empty fields of flags
// (the command line's --endpoint and so on) replace them. Its credentials
// are read from the environment variables it names, which must be set.
func (f *File) Resolve(arg string, flags filestore.Options) (Resolved, error) {
	name, explicit := strings.CutPrefix(arg, "@")
	if !explicit {
		if strings.ContainsAny(arg, `/\:`) || strings.HasPrefix(arg, ".") {
			return Resolved{Root: arg, Options: flags}, nil
		}
		if _, ok := f.Stores[arg]; !ok {
			return Resolved{Root: arg, Options: flags}, nil
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(f.Path), arg)); err == nil {
			return Resolved{}, fmt.Errorf("%q is both a store saved in %s and a folder here: write @%s for the store or ./%s for the folder", arg, f.Path, arg, arg)
		}
	}
	s, ok := f.Stores[name]
	if !ok {
		return Resolved{}, f.noStore(name)
	}
	root := s.Root
	if !strings.Contains(root, "://") && !filepath.IsAbs(root) {
		root = filepath.Join(filepath.Dir(f.Path), root)
	}
	opts := filestore.Options{Endpoint: s.Endpoint, Region: s.Region, PathStyle: s.PathStyle}
	for _, c := range []struct {
		env, what string
		dst       *string
	}{{s.AccessKeyEnv, "access key ID", &opts.AccessKeyID}, {s.SecretKeyEnv, "secret access key", &opts.SecretAccessKey}} {
		if c.env == "" {
			continue
		}
		v := os.Getenv(c.env)
		if v == "" {
			return Resolved{}, fmt.Errorf("store %s: the environment variable %s (its %s) is not set", name, c.env, c.what)
		}
		*c.dst = v
	}
	if flags.Endpoint != "" {
		opts.Endpoint = flags.Endpoint
	}
	if flags.Region != "" {
		opts.Region = flags.Region
	}
	if flags.PathStyle {
		opts.PathStyle = true
	}
	if flags.AccessKeyID != "" {
		opts.AccessKeyID = flags.AccessKeyID
	}
	if flags.SecretAccessKey != "" {
		opts.SecretAccessKey = flags.SecretAccessKey
	}
	if flags.SessionToken != "" {
		opts.SessionToken = flags.SessionToken
	}
	if flags.PartSize != 0 {
		opts.PartSize = flags.PartSize
	}
	return Resolved{Root: root, Options: opts, Store: name}, nil
}

// ResolveRoot loads dir's settings file and resolves arg (see
// File.Resolve).
func ResolveRoot(dir, arg string, flags filestore.Options) (Resolved, error) {
	f, err := Load(dir)
	if err != nil {
		return Resolved{}, err
	}
	return f.Resolve(arg, flags)
}
