package engine_test

import (
	"testing"

	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

func TestNormalize(t *testing.T) {
	cases := map[string]string{
		"id":                  "id",
		"camelCase":           "camel_case",
		"PascalCase":          "pascal_case",
		"OrderID":             "order_id",
		"HTTPServer":          "http_server",
		"getHTTPResponseCode": "get_http_response_code",
		"userID2":             "user_id2",
		"CO2Level":            "co2_level",
		"already_snake":       "already_snake",
		"SCREAMING_SNAKE":     "screaming_snake",
		"first name":          "first_name",
		"  padded  ":          "padded",
		"Column With  Spaces": "column_with_spaces",
		"price ($)":           "price",
		"a--b..c":             "a_b_c",
		"foo_Bar":             "foo_bar",
		"e-mail":              "e_mail",
		"1st":                 "_1st",
		"2024 total":          "_2024_total",
		"_id":                 "_id",
		"__id":                "_id",
		"_ID":                 "_id",
		"Straße":              "straße",
		"ÄpfelBirnen":         "äpfel_birnen",
		"名前":                  "名前",
		"order":               "order",
		"GROUP":               "group",
		"select":              "select",
		"sluice_x":            "sluice_x",
	}
	for in, want := range cases {
		got, err := engine.Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
		// Normalising is idempotent.
		if again, err := engine.Normalize(got); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
	for _, bad := range []string{"", "_", "___", "$%", "  ", "_sluice_id", "_sluice_deleted", "_Sluice_X", "__sluice_x", "_sluice"} {
		if got, err := engine.Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}

func TestReservedWordsAsNames(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, []contract.Table{
			{Name: "Order", PrimaryKey: []string{"Select"}, Columns: []contract.Column{{Name: "Select", Type: contract.Long}, {Name: "group", Type: contract.String}}},
		}, func(r *syncRun) error {
			return each(
				func() error {
					return r.e.Upsert("Order", row{"Select": 1, "group": "g", "from": "f", "Where Clause": true})
				},
				func() error { return r.e.Upsert("group", row{"table": 1, "Order ID": "x"}) },
				func() error { return r.e.Update("Order", row{"Select": 1, "from": "f2"}) },
			)
		})
		w.expectRows(`SELECT "select", "group", "from", where_clause FROM {order}`, "1|g|f2|true")
		w.expectRows(`SELECT "table", order_id FROM {group}`, "1|x")
	})
}

func TestNameCollisions(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		cases := []struct {
			name     string
			declared []contract.Table
			ops      func(o contract.Ops) error
			want     []string
		}{
			{"tables", nil, func(o contract.Ops) error {
				return each(
					func() error { return o.Upsert("userEvents", row{"a": 1}) },
					func() error { return o.Upsert("user_events", row{"a": 1}) },
				)
			}, []string{"operation 2", `"userEvents"`, `"user_events"`, `"user_events"`}},
			{"declared table", []contract.Table{{Name: "UserEvents"}}, func(o contract.Ops) error {
				return o.Upsert("user_events", row{"a": 1})
			}, []string{"operation 1", `"UserEvents"`, `"user_events"`}},
			{"columns in one row", nil, func(o contract.Ops) error {
				return o.Upsert("t", row{"userId": 1, "user_id": 2})
			}, []string{"operation 1", `"userId"`, `"user_id"`}},
			{"columns across rows", nil, func(o contract.Ops) error {
				return each(
					func() error { return o.Upsert("t", row{"userId": 1}) },
					func() error { return o.Checkpoint(nil) },
					func() error { return o.Upsert("t", row{"USER_ID": 2}) },
				)
			}, []string{"operation 3", `"userId"`, `"USER_ID"`}},
			{"declared column", []contract.Table{{Name: "t", Columns: []contract.Column{{Name: "userId", Type: contract.Long}}}}, func(o contract.Ops) error {
				return o.Upsert("t", row{"user_id": 1})
			}, []string{"operation 1", `"userId"`, `"user_id"`}},
			{"declared key column", []contract.Table{{Name: "t", PrimaryKey: []string{"OrderID"}}}, func(o contract.Ops) error {
				return each(
					func() error { return o.Upsert("t", row{"OrderID": 1}) },
					func() error { return o.Upsert("t", row{"order_id": 2}) },
				)
			}, []string{"operation 2", `"OrderID"`, `"order_id"`}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				err := w.sync(engine.Options{}, c.declared, func(r *syncRun) error { return c.ops(r.e) })
				wantErr(t, err, append([]string{"normalise"}, c.want...)...)
			})
		}
		// Declared schemas.
		for name, declared := range map[string][]contract.Table{
			"declared tables":  {{Name: "userEvents"}, {Name: "user_events"}},
			"declared columns": {{Name: "t", Columns: []contract.Column{{Name: "userId", Type: contract.Long}, {Name: "user_id", Type: contract.Long}}}},
		} {
			t.Run(name, func(t *testing.T) {
				w := newWarehouse(t, k)
				err := w.sync(engine.Options{}, declared, func(r *syncRun) error { return nil })
				wantErr(t, err, "schema", "both normalise")
			})
		}
	})
}

// A table in the warehouse from an earlier sync: the first spelling used in
// this sync claims its columns, and another spelling is still a collision.
func TestNameCollisionsWithWarehouseTable(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		for name, ops := range map[string][]row{
			"stored spelling first": {{"user_id": 1, "a": 1}, {"userId": 2, "a": 2}},
			"other spelling first":  {{"userId": 1, "a": 1}, {"user_id": 2, "a": 2}},
		} {
			t.Run(name, func(t *testing.T) {
				w := newWarehouse(t, k)
				w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
					return r.e.Upsert("t", row{"user_id": 0, "a": 0})
				})
				err := w.sync(engine.Options{}, nil, func(r *syncRun) error {
					return each(
						func() error { return r.e.Upsert("t", ops[0]) },
						func() error { return r.e.Upsert("t", ops[1]) },
					)
				})
				wantErr(t, err, "operation 2", `"userId"`, `"user_id"`, "normalise")
				w.expectRows(`SELECT user_id FROM {t}`, "0")
			})
		}
		t.Run("declared", func(t *testing.T) {
			w := newWarehouse(t, k)
			w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
				return r.e.Upsert("t", row{"user_id": 0})
			})
			declared := []contract.Table{{Name: "t", Columns: []contract.Column{{Name: "userId", Type: contract.Long}}}}
			err := w.sync(engine.Options{}, declared, func(r *syncRun) error {
				return each(
					func() error { return r.e.Upsert("t", row{"userId": 1}) },
					func() error { return r.e.Upsert("t", row{"user_id": 2}) },
				)
			})
			wantErr(t, err, "operation 2", `"userId"`, `"user_id"`, "normalise")
		})
	})
}

func TestNormalizeAcronymPlural(t *testing.T) {
	for in, want := range map[string]string{"IDs": "ids", "userIDs": "user_ids", "URLsSeen": "urls_seen", "HTTPServer": "http_server", "Iso": "iso"} {
		got, err := engine.Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
