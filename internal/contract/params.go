package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ParamType says what a parameter holds, and so how its configuration
// value, always a string, is checked.
type ParamType uint8

const (
	ParamString      ParamType = iota // one line of text
	ParamText                         // text that may span lines
	ParamInt                          // a 64-bit integer: "42"
	ParamDouble                       // a number: "0.5", "1e3"
	ParamBoolean                      // "true" or "false" (also 1, 0, t, f)
	ParamSelect                       // one of Choices
	ParamMultiSelect                  // some of Choices, comma-separated: "FR,DE"
	ParamSecret                       // a password or token: masked in every output
	ParamKeyValue                     // a JSON object of strings: {"X-Team": "data"}
)

var paramTypeNames = [...]string{
	ParamString: "string", ParamText: "text", ParamInt: "int", ParamDouble: "double",
	ParamBoolean: "boolean", ParamSelect: "select", ParamMultiSelect: "multi-select",
	ParamSecret: "secret", ParamKeyValue: "key-value list",
}

func (t ParamType) String() string {
	if int(t) < len(paramTypeNames) {
		return paramTypeNames[t]
	}
	return fmt.Sprintf("ParamType(%d)", uint8(t))
}

// Param declares one configuration key.
type Param struct {
	Name      string // the key in configuration.json
	Label     string // what a person calls it; shown by describe and in errors
	Type      ParamType
	Choices   []string // Select and MultiSelect only
	Mandatory bool
	// Default fills a missing or empty value. It is checked like any value.
	Default string
}

// Params is a connector's declared configuration.
type Params []Param

// name is how errors refer to a parameter: by key, with the label a person
// sees in a form.
func (p Param) name() string {
	if p.Label == "" || p.Label == p.Name {
		return fmt.Sprintf("parameter %q", p.Name)
	}
	return fmt.Sprintf("parameter %q (%s)", p.Name, p.Label)
}

// Validate checks cfg against the declaration and returns a copy with
// defaults filled in. Keys that are not declared are kept as they are. Every
// problem is reported, each naming its parameter; a secret's value never
// appears in an error.
func (ps Params) Validate(cfg Config) (Config, error) {
	if err := ps.validateDecl(); err != nil {
		return nil, err
	}
	out := make(Config, len(cfg)+len(ps))
	for k, v := range cfg {
		out[k] = v
	}
	var errs []error
	for _, p := range ps {
		v := out[p.Name]
		if v == "" && p.Default != "" {
			v = p.Default
			out[p.Name] = v
		}
		if v == "" {
			if p.Mandatory {
				errs = append(errs, fmt.Errorf("%s is mandatory: set %q in the configuration", p.name(), p.Name))
			}
			continue
		}
		if err := p.check(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (ps Params) validateDecl() error {
	seen := map[string]bool{}
	for i, p := range ps {
		switch {
		case p.Name == "":
			return fmt.Errorf("parameters: parameter %d has no name", i+1)
		case seen[p.Name]:
			return fmt.Errorf("parameters: two parameters are named %q", p.Name)
		case int(p.Type) >= len(paramTypeNames):
			return fmt.Errorf("parameters: %s has an unknown type %d", p.name(), p.Type)
		case (p.Type == ParamSelect || p.Type == ParamMultiSelect) && len(p.Choices) == 0:
			return fmt.Errorf("parameters: %s is a %s without choices", p.name(), p.Type)
		case p.Type == ParamMultiSelect && slices.ContainsFunc(p.Choices, func(c string) bool { return strings.Contains(c, ",") }):
			return fmt.Errorf("parameters: %s: a multi-select choice cannot contain a comma, which separates the values", p.name())
		}
		seen[p.Name] = true
	}
	return nil
}

func (p Param) check(v string) error {
	switch p.Type {
	case ParamInt:
		if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case ParamDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", v)
		}
	case ParamBoolean:
		if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%q is not a boolean: use true or false", v)
		}
	case ParamSelect:
		if !slices.Contains(p.Choices, v) {
			return fmt.Errorf("%q is not one of the choices: %s", v, strings.Join(p.Choices, ", "))
		}
	case ParamMultiSelect:
		for _, s := range splitList(v) {
			if !slices.Contains(p.Choices, s) {
				return fmt.Errorf("%q is not one of the choices: %s", s, strings.Join(p.Choices, ", "))
			}
		}
	case ParamKeyValue:
		if _, err := parseKeyValues(v); err != nil {
			return err
		}
	}
	return nil
}

// Secrets returns the values of cfg's secret parameters, for the runtime to
// mask whatever the key is called.
func (ps Params) Secrets(cfg Config) []string {
	var out []string
	for _, p := range ps {
		if v := cfg[p.Name]; p.Type == ParamSecret && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// The accessors below read a configuration value as its parameter type. On
// a configuration that Params.Validate accepted they fail only for a key
// that is not declared with that type.

// Int reads an int parameter.
func (c Config) Int(key string) (int64, error) {
	i, err := strconv.ParseInt(strings.TrimSpace(c[key]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %q: %q is not an integer", key, c[key])
	}
	return i, nil
}

// Float reads a double parameter.
func (c Config) Float(key string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(c[key]), 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %q: %q is not a number", key, c[key])
	}
	return f, nil
}

// Bool reads a boolean parameter.
func (c Config) Bool(key string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(c[key]))
	if err != nil {
		return false, fmt.Errorf("parameter %q: %q is not a boolean", key, c[key])
	}
	return b, nil
}

// List reads a multi-select parameter: its values, in the order given.
func (c Config) List(key string) []string { return splitList(c[key]) }

// KeyValues reads a key-value list parameter.
func (c Config) KeyValues(key string) (map[string]string, error) {
	kv, err := parseKeyValues(c[key])
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", key, err)
	}
	return kv, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseKeyValues(v string) (map[string]string, error) {
	if strings.TrimSpace(v) == "" {
		return map[string]string{}, nil
	}
	var kv map[string]string
	if err := json.Unmarshal([]byte(v), &kv); err != nil || kv == nil {
		// The value is not quoted back: key-value lists often hold headers
		// with tokens in them.
		return nil, errors.New(`not a key-value list: write a JSON object of strings, like {"name": "value"}`)
	}
	return kv, nil
}
