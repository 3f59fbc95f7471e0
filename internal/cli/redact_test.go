package cli

import "testing"

func TestRedactorPolicy(t *testing.T) {
	r := newRedactor(map[string]string{
		"mode":         "incremental",
		"api_key":      "k-123",
		"DB_PASSWORD":  "hunter2",
		"clientSecret": "cs",
		"source_url":   "postgres://app:pa55word@db.internal:5432/prod",
	})
	in := "mode incremental with k-123, hunter2, cs and postgres://app:pa55word@db.internal:5432/prod"
	want := "mode incremental with ***, ***, *** and postgres://app:***@db.internal:5432/prod"
	if got := r.apply(in); got != want {
		t.Errorf("apply:\n got %s\nwant %s", got, want)
	}
}
