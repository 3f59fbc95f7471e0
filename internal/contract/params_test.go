package contract

import (
	"reflect"
	"strings"
	"testing"
)

var testParams = Params{
	{Name: "host", Label: "Host", Mandatory: true},
	{Name: "page_size", Label: "Page size", Type: ParamInt, Default: "100"},
	{Name: "ratio", Type: ParamDouble},
	{Name: "verbose", Type: ParamBoolean, Default: "false"},
	{Name: "mode", Type: ParamSelect, Choices: []string{"full", "incremental"}, Default: "full"},
	{Name: "regions", Type: ParamMultiSelect, Choices: []string{"FR", "DE", "IT"}},
	{Name: "pass", Label: "Password", Type: ParamSecret, Mandatory: true},
	{Name: "headers", Type: ParamKeyValue},
	{Name: "notes", Type: ParamText},
}

func TestParamsValidate(t *testing.T) {
	in := Config{"host": "db", "pass": "hunter2", "regions": "FR, IT", "headers": `{"X-Team": "data"}`, "other": "kept"}
	cfg, err := testParams.Validate(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{"host": "db", "pass": "hunter2", "regions": "FR, IT", "headers": `{"X-Team": "data"}`, "other": "kept",
		"page_size": "100", "verbose": "false", "mode": "full"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Validate = %v, want %v", cfg, want)
	}
	if _, ok := in["page_size"]; ok {
		t.Errorf("Validate changed its argument")
	}
	if n, err := cfg.Int("page_size"); n != 100 || err != nil {
		t.Errorf("Int = %d, %v", n, err)
	}
	if b, err := cfg.Bool("verbose"); b || err != nil {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if l := cfg.List("regions"); !reflect.DeepEqual(l, []string{"FR", "IT"}) {
		t.Errorf("List = %q", l)
	}
	if kv, err := cfg.KeyValues("headers"); err != nil || kv["X-Team"] != "data" {
		t.Errorf("KeyValues = %v, %v", kv, err)
	}
	if _, err := cfg.Int("host"); err == nil || !strings.Contains(err.Error(), `parameter "host"`) {
		t.Errorf("Int of a string: %v", err)
	}
	if got := testParams.Secrets(cfg); !reflect.DeepEqual(got, []string{"hunter2"}) {
		t.Errorf("Secrets = %q", got)
	}
}

func TestParamsValidateErrors(t *testing.T) {
	_, err := testParams.Validate(Config{
		"page_size": "ten", "ratio": "1/2", "verbose": "yes", "mode": "sometimes",
		"regions": "FR,ES", "headers": "X-Team=data", "pass": "",
	})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`parameter "host" (Host) is mandatory: set "host" in the configuration`,
		`parameter "pass" (Password) is mandatory`,
		`parameter "page_size" (Page size): "ten" is not an integer`,
		`parameter "ratio": "1/2" is not a number`,
		`parameter "verbose": "yes" is not a boolean`,
		`parameter "mode": "sometimes" is not one of the choices: full, incremental`,
		`parameter "regions": "ES" is not one of the choices: FR, DE, IT`,
		`parameter "headers": not a key-value list`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "X-Team=data") {
		t.Errorf("a key-value list's value is shown:\n%s", msg)
	}

	// A bad default is the connector's bug, reported as any bad value.
	if _, err := (Params{{Name: "n", Type: ParamInt, Default: "many"}}).Validate(nil); err == nil || !strings.Contains(err.Error(), `parameter "n": "many" is not an integer`) {
		t.Errorf("bad default: %v", err)
	}
	for _, ps := range []Params{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "s", Type: ParamSelect}},
		{{Name: "m", Type: ParamMultiSelect, Choices: []string{"a,b"}}},
		{{Name: "x", Type: 99}},
	} {
		if _, err := ps.Validate(Config{}); err == nil || !strings.HasPrefix(err.Error(), "parameters: ") {
			t.Errorf("declaration %v: %v", ps, err)
		}
	}
}
