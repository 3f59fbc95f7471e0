package files

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicedata/sluice/filetable"
	"github.com/sluicedata/sluice/internal/contract"
)

// syncState is the connector's state: per table, its key and what was read
// of each file.
type syncState struct {
	Tables map[string]*tableState `json:"tables"`
}

// tableState is one table's part of the state.
type tableState struct {
	// Key is the table's primary key: (_file, _line) for an appended
	// table. It tells, once a table is gone from the store, whether its
	// rows can be deleted by file.
	Key   []string              `json:"key"`
	Files map[string]*fileState `json:"files"`
}

// fileState is one file as the last checkpoint left it.
type fileState struct {
	Size  int64  `json:"size"`
	MTime string `json:"mtime"`
	ETag  string `json:"etag,omitempty"`
	// Rows is how many of the file's rows are committed: all of them
	// when Done, else the rows before the checkpoint inside the file.
	Rows int64 `json:"rows"`
	// Lines is the highest _line that may be live in the warehouse for
	// this file, from this version or an earlier, longer one: rows
	// beyond the version read last are soft-deleted up to it.
	Lines int64 `json:"lines"`
	Done  bool  `json:"done"`
}

// readState reads the state a sync starts from; an empty state is a first
// sync.
func readState(s contract.State) (*syncState, error) {
	st := &syncState{Tables: map[string]*tableState{}}
	if len(s) == 0 {
		return st, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf(`state: not the files connector's state ({"tables": {TABLE: {"key": [...], "files": {FILE: {"size": ..., ...}}}}}): %w; fix it, or run sluice reset to sync from scratch`, err)
	}
	if st.Tables == nil {
		st.Tables = map[string]*tableState{}
	}
	for table, ts := range st.Tables {
		if ts == nil {
			return nil, fmt.Errorf("state: table %q has no entry; run sluice reset to sync from scratch", table)
		}
		if ts.Files == nil {
			ts.Files = map[string]*fileState{}
		}
		for key, f := range ts.Files {
			if f == nil || f.Rows < 0 || f.Lines < f.Rows {
				return nil, fmt.Errorf("state: table %q file %q: the entry is damaged (rows and lines must be counts, lines at least rows); run sluice reset to sync from scratch", table, key)
			}
		}
	}
	return st, nil
}

// table returns the table's entry, creating it with the key.
func (s *syncState) table(name string, key []string) *tableState {
	ts := s.Tables[name]
	if ts == nil {
		ts = &tableState{Files: map[string]*fileState{}}
		s.Tables[name] = ts
	}
	ts.Key = key
	return ts
}

// mtime is how the state writes a modification time.
func mtime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// same reports whether f is the file the entry describes.
func (e *fileState) same(f filetable.File) bool {
	return e.Size == f.Size && e.MTime == mtime(f.ModTime) && e.ETag == f.ETag
}
