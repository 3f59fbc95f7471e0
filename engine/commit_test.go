package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

func TestHashKey(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{BatchRows: 2}, nil, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("events", row{"kind": "click", "n": 1, "at": nil}) },
				func() error { return o.Upsert("events", row{"n": 1, "kind": "click"}) }, // same values, other order, no nil
				func() error { return o.Upsert("events", row{"kind": "view", "n": 2}) },
				func() error { return o.Checkpoint(nil) },
				func() error { return o.Upsert("events", row{"kind": "click", "n": int32(1)}) }, // same value, narrower Go type
				func() error { return o.Upsert("events", row{"kind": "scroll", "n": 3, "extra": "e"}) },
				func() error { return o.Delete("events", row{"n": 2, "kind": "view"}) }, // by whole row
			)
		})
		w.expectRows(`SELECT kind, n, extra, _sluice_deleted, length(_sluice_id) FROM {events} ORDER BY kind`,
			"click|1|NULL|false|32", "scroll|3|e|false|32", "view|2|NULL|true|32")
		ids := w.rowsText(`SELECT _sluice_id FROM {events} ORDER BY kind`)
		// A later sync computes the same ids, and can name rows by them.
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("events", row{"kind": "click", "n": 1}) },
				func() error { return o.Upsert("events", row{"extra": "e", "n": 3, "kind": "scroll"}) },
				func() error { return o.Update("events", row{destination.ColumnID: ids[1], "extra": "E"}) },
				func() error { return o.Delete("events", row{destination.ColumnID: ids[0]}) },
				func() error { return o.Upsert("events", row{"kind": "view", "n": 2}) }, // revives
			)
		})
		w.expectRows(`SELECT kind, n, extra, _sluice_deleted FROM {events} ORDER BY kind`,
			"click|1|NULL|true", "scroll|3|E|false", "view|2|NULL|false")
		if got := w.rowsText(`SELECT _sluice_id FROM {events} ORDER BY kind`); got[0] != ids[0] || got[1] != ids[1] || got[2] != ids[2] {
			t.Errorf("ids changed: %v, then %v", ids, got)
		}
		// Widening a column does not change the ids of rows sent again.
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("events", row{"kind": "other", "n": "many"}) },
				func() error { return r.e.Upsert("events", row{"kind": "view", "n": 2}) },
			)
		})
		w.expectRows(`SELECT count(*) FROM {events}`, "4")

		// An update must name the row by _sluice_id.
		err := w.sync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Update("events", row{"kind": "click", "n": 5})
		})
		wantErr(t, err, "operation 1", `"events"`, "_sluice_id")
	})
}

func TestBinaryValueIsCopied(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		buf := []byte("first")
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			if err := r.e.Upsert("blobs", row{"id": 1, "b": buf}); err != nil {
				return err
			}
			copy(buf, "XXXXX") // a connector reusing its buffer
			return r.e.Upsert("blobs", row{"id": 2, "b": buf})
		})
		w.expectRows(`SELECT id, b FROM {blobs} ORDER BY id`, "1|0x6669727374", "2|0x5858585858")
	})
}

func TestCheckpointIsACommit(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		errBoom := errors.New("boom")
		err := w.sync(engine.Options{BatchRows: 2}, itemsTable, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("items", row{"id": 1, "name": "a"}) },
				func() error { return o.Upsert("items", row{"id": 2, "name": "b"}) },
				func() error { return o.Upsert("items", row{"id": 3, "name": "c"}) },
				func() error { return o.Checkpoint(map[string]any{"cursor": 3}) },
				// After the checkpoint: staged batches, a new table, a new
				// column, a widening, all lost with the failure.
				func() error { return o.Upsert("items", row{"id": 4, "name": "d"}) },
				func() error { return o.Upsert("items", row{"id": 5, "name": "e"}) },
				func() error { return o.Delete("items", row{"id": 1}) },
				func() error { return o.Truncate("items") },
				func() error { return o.Upsert("other", row{"x": 1}) },
				func() error { return o.Upsert("items", row{"id": 6, "extra": 1}) },
				func() error { return errBoom },
			)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("err %v", err)
		}
		w.expectRows(`SELECT id, name, _sluice_deleted FROM {items} ORDER BY id`, "1|a|false", "2|b|false", "3|c|false")
		if got := w.tables(); len(got) != 4 || got[3] != "items" {
			t.Errorf("tables %v", got)
		}
		if _, ok := w.columnTypes("items")["extra"]; ok {
			t.Errorf("column extra was created")
		}
		if s := w.state(); s != `{"cursor":3}` {
			t.Errorf("state %s", s)
		}
		// The next sync resumes from that state, and Finish commits its tail
		// with the last checkpointed state.
		w.mustSync(engine.Options{}, itemsTable, func(r *syncRun) error {
			o := r.e
			return each(
				func() error { return o.Upsert("items", row{"id": 4, "name": "d"}) },
				func() error { return o.Checkpoint(map[string]any{"cursor": 4}) },
				func() error { return o.Upsert("items", row{"id": 5, "name": "e"}) },
			)
		})
		w.expectRows(`SELECT id, name FROM {items} ORDER BY id`, "1|a", "2|b", "3|c", "4|d", "5|e")
		if s := w.state(); s != `{"cursor":4}` {
			t.Errorf("state %s", s)
		}
	})
}

func TestFinishWithoutCheckpointKeepsStartState(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": 1})
		})
		if s := w.state(); s != `{}` {
			t.Errorf("state %s", s)
		}
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error { return r.e.Checkpoint(map[string]any{"a": "b"}) })
		w.mustSync(engine.Options{}, nil, func(r *syncRun) error {
			return r.e.Upsert("t", row{"id": 2})
		})
		if s := w.state(); s != `{"a":"b"}` {
			t.Errorf("state %s", s)
		}
		w.expectRows(`SELECT id FROM {t} ORDER BY id`, "1", "2")
	})
}

func TestOnCommit(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		var got []string
		prev := "h0"
		opts := engine.Options{PrevHash: prev, OnCommit: func(state []byte) (string, error) {
			got = append(got, string(state))
			return "h" + string(state), nil
		}}
		w.mustSync(opts, nil, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("t", row{"id": 1}) },
				func() error { return r.e.Checkpoint(map[string]int{"n": 1}) },
				func() error { return r.e.Checkpoint(map[string]int{"n": 2}) },
				func() error { return r.e.Upsert("t", row{"id": 2}) },
			)
		})
		if len(got) != 3 || got[0] != `{"n":1}` || got[1] != `{"n":2}` || got[2] != `{"n":2}` {
			t.Errorf("OnCommit states %v", got)
		}
		dest, err := openDest(w)
		if err != nil {
			t.Fatal(err)
		}
		defer dest.Close()
		rec, err := dest.ReadState(context.Background())
		if err != nil || rec == nil {
			t.Fatalf("read state: %v", err)
		}
		if rec.PrevHash != `h{"n":2}` {
			t.Errorf("prev hash %q", rec.PrevHash)
		}
		// An OnCommit failure fails the sync, after the commit.
		dest.Close()
		err = w.sync(engine.Options{OnCommit: func([]byte) (string, error) { return "", errors.New("disk full") }}, nil, func(r *syncRun) error {
			return each(
				func() error { return r.e.Upsert("t", row{"id": 3}) },
				func() error { return r.e.Checkpoint(map[string]int{"n": 3}) },
			)
		})
		wantErr(t, err, "disk full")
		if s := w.state(); s != `{"n":3}` {
			t.Errorf("state %s", s)
		}
	})
}

func TestBadInput(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		cases := []struct {
			name     string
			declared []contract.Table
			ops      func(o contract.Ops) error
			want     []string
		}{
			{"no key value", itemsTable, func(o contract.Ops) error {
				return o.Upsert("items", row{"name": "a"})
			}, []string{"operation 3", `"items"`, `"id"`, "primary key"}},
			{"nil key value", itemsTable, func(o contract.Ops) error {
				return o.Delete("items", row{"id": nil})
			}, []string{"operation 3", "delete", `"items"`, `"id"`}},
			{"bad declared value", itemsTable, func(o contract.Ops) error {
				return o.Update("items", row{"id": 1, "qty": "many"})
			}, []string{"operation 3", "update", `"items"`, `"qty"`, `"many"`, "INT"}},
			{"state not an object", itemsTable, func(o contract.Ops) error {
				return o.Checkpoint([]int{1})
			}, []string{"operation 3", "checkpoint", "JSON object"}},
			{"state not JSON", itemsTable, func(o contract.Ops) error {
				return o.Checkpoint(map[string]any{"f": func() {}})
			}, []string{"operation 3", "checkpoint", "JSON"}},
			{"bad table name", itemsTable, func(o contract.Ops) error {
				return o.Upsert("$$", row{"id": 1})
			}, []string{"operation 3", `"$$"`}},
			{"reserved column", itemsTable, func(o contract.Ops) error {
				return o.Upsert("items", row{"id": 1, "_sluice_deleted": true})
			}, []string{"operation 3", "_sluice_deleted", "reserved"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				err := w.sync(engine.Options{}, c.declared, func(r *syncRun) error {
					err := each(
						func() error { return r.e.Upsert("items", row{"id": 1, "name": "a"}) },
						func() error { return r.e.Checkpoint(map[string]any{"ok": true}) },
						func() error { return c.ops(r.e) },
					)
					if err == nil {
						t.Fatal("no error from the bad operation")
					}
					// The engine stays failed.
					if err2 := r.e.Upsert("items", row{"id": 2}); err2 == nil || err2.Error() != err.Error() {
						t.Errorf("after the error: %v", err2)
					}
					return err
				})
				wantErr(t, err, c.want...)
				w.expectRows(`SELECT id, name FROM {items}`, "1|a")
				if s := w.state(); s != `{"ok":true}` {
					t.Errorf("state %s", s)
				}
			})
		}
	})
}

func TestBadSchema(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		cases := []struct {
			name     string
			declared []contract.Table
			want     []string
		}{
			{"duplicate table", []contract.Table{{Name: "a"}, {Name: "a"}}, []string{"table 2", `"a"`, "twice"}},
			{"unknown type", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c", Type: contract.Type(99)}}}}, []string{`"a"`, `"c"`, "unknown type"}},
			{"unspecified type", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c"}}}}, []string{`"a"`, `"c"`, "type"}},
			{"decimal without precision", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c", Type: contract.Decimal}}}}, []string{`"a"`, `"c"`, "DECIMAL", "precision"}},
			{"decimal scale over precision", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c", Type: contract.Decimal, Precision: 4, Scale: 5}}}}, []string{`"c"`, "DECIMAL"}},
			{"decimal too wide", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c", Type: contract.Decimal, Precision: 39, Scale: 0}}}}, []string{`"c"`, "DECIMAL"}},
			{"duplicate column", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "c", Type: contract.Long}, {Name: "c", Type: contract.Long}}}}, []string{`"c"`}},
			{"duplicate key", []contract.Table{{Name: "a", PrimaryKey: []string{"k", "K"}}}, []string{`"K"`, "twice"}},
			{"bad table name", []contract.Table{{Name: "!!"}}, []string{`"!!"`}},
			{"reserved column", []contract.Table{{Name: "a", Columns: []contract.Column{{Name: "_sluice_synced", Type: contract.Long}}}}, []string{"_sluice_synced", "reserved"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := newWarehouse(t, k)
				called := false
				err := w.sync(engine.Options{}, c.declared, func(r *syncRun) error { called = true; return nil })
				wantErr(t, err, append([]string{"schema"}, c.want...)...)
				if called {
					t.Errorf("the sync went on after a bad schema")
				}
			})
		}
	})
}

func TestContextCancelled(t *testing.T) {
	eachDest(t, func(t *testing.T, k kind) {
		w := newWarehouse(t, k)
		ctx, cancel := context.WithCancel(context.Background())
		err := w.syncCtx(ctx, engine.Options{BatchRows: 1}, itemsTable, func(r *syncRun) error {
			err := each(
				func() error { return r.e.Upsert("items", row{"id": 1, "name": "a"}) },
				func() error { return r.e.Checkpoint(map[string]any{"n": 1}) },
				func() error { return r.e.Upsert("items", row{"id": 2, "name": "b"}) },
				func() error { cancel(); return nil },
				func() error { return r.e.Upsert("items", row{"id": 3, "name": "c"}) },
			)
			if err == nil {
				t.Error("no error after cancel")
			}
			return err
		})
		wantErr(t, err, "cancel")
		w.expectRows(`SELECT id, name FROM {items}`, "1|a")
		if s := w.state(); s != `{"n":1}` {
			t.Errorf("state %s", s)
		}
		// Cancelled before Finish: nothing after the checkpoint is committed.
		ctx, cancel = context.WithCancel(context.Background())
		err = w.syncCtx(ctx, engine.Options{}, itemsTable, func(r *syncRun) error {
			defer cancel()
			return r.e.Upsert("items", row{"id": 4, "name": "d"})
		})
		wantErr(t, err, "cancel")
		w.expectRows(`SELECT id, name FROM {items}`, "1|a")
	})
}

func openDest(w *warehouse) (destination.Destination, error) {
	return w.openDest(context.Background())
}
