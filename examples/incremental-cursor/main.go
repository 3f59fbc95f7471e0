// Command incremental-cursor syncs a paginated API incrementally: it asks
// only for records changed since a cursor, the updated_at of the last record
// it wrote, and checkpoints the cursor after each page. A second sync starts
// from the saved cursor and fetches only what changed since.
//
// So that it runs offline, the program serves the API itself, from a fixed
// set of records, on a local port (see serveFakeAPI); a real connector would
// call its source's URL instead.
//
// Configuration (configuration.json, every value a string):
//
//	page_size     records per request (default 3)
//	fake_records  how many records the built-in API holds (default 7);
//	              raise it between syncs to see new records picked up
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/sdk"
)

// record is what the API returns for one ticket.
type record struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
}

// page is one API response.
type page struct {
	Records []record `json:"records"`
	HasMore bool     `json:"has_more"`
}

func schema(ctx context.Context, cfg sdk.Config) ([]sdk.Table, error) {
	return []sdk.Table{{
		Name:       "ticket",
		PrimaryKey: []string{"id"},
		Columns: []sdk.Column{
			{Name: "id", Type: sdk.Long},
			{Name: "title", Type: sdk.String},
			{Name: "status", Type: sdk.String},
			{Name: "updated_at", Type: sdk.UTCDateTime},
		},
	}}, nil
}

func update(ctx context.Context, cfg sdk.Config, state sdk.State, ops sdk.Ops) error {
	pageSize, err := positiveInt(cfg, "page_size", 3)
	if err != nil {
		return err
	}
	total, err := positiveInt(cfg, "fake_records", 7)
	if err != nil {
		return err
	}
	baseURL, stop, err := serveFakeAPI(total)
	if err != nil {
		return err
	}
	defer stop()

	// The cursor is kept as RFC 3339 text: state is JSON.
	cursor, _ := state["cursor"].(string)
	if cursor == "" {
		sdk.Info("no cursor: fetching every record")
	} else {
		sdk.Info("fetching records updated after the cursor", "cursor", cursor)
	}
	for {
		p, err := fetch(ctx, baseURL, cursor, pageSize)
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			row := map[string]any{"id": r.ID, "title": r.Title, "status": r.Status, "updated_at": r.UpdatedAt}
			if err := ops.Upsert("ticket", row); err != nil {
				return err
			}
			cursor = r.UpdatedAt.UTC().Format(time.RFC3339Nano)
		}
		if len(p.Records) > 0 {
			// The page's rows and the cursor past them commit together: a
			// sync that fails later resumes after this page, not from the
			// start.
			if err := ops.Checkpoint(map[string]any{"cursor": cursor}); err != nil {
				return err
			}
		}
		// An empty page ends the sync too, even if has_more says otherwise:
		// asking again with the same cursor would loop forever.
		if !p.HasMore || len(p.Records) == 0 {
			return nil
		}
	}
}

// fetch gets one page of records updated strictly after cursor. Strictly
// after is safe because this API gives every record a distinct updated_at; if
// yours does not, keep (updated_at, id) as the cursor.
func fetch(ctx context.Context, baseURL, cursor string, limit int) (*page, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("updated_after", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/tickets?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /tickets: %s", resp.Status)
	}
	var p page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, fmt.Errorf("GET /tickets: %w", err)
	}
	sdk.Fine("fetched a page", "records", len(p.Records), "has_more", p.HasMore)
	return &p, nil
}

// positiveInt reads an integer setting; configuration values are strings.
func positiveInt(cfg sdk.Config, key string, def int) (int, error) {
	s, ok := cfg[key]
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("configuration %q must be a whole number of at least 1, like \"%d\"", key, def)
	}
	return n, nil
}

// serveFakeAPI starts the stand-in API on a free local port. Record i was
// last updated i hours after a fixed time, so every run serves the same data.
func serveFakeAPI(total int) (baseURL string, stop func(), err error) {
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	statuses := []string{"open", "pending", "closed"}
	all := make([]record, total)
	for i := range all {
		all[i] = record{
			ID:        int64(i + 1),
			Title:     fmt.Sprintf("Ticket %d", i+1),
			Status:    statuses[i%len(statuses)],
			UpdatedAt: base.Add(time.Duration(i+1) * time.Hour),
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tickets", func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit < 1 {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		}
		var after time.Time
		if s := r.URL.Query().Get("updated_after"); s != "" {
			if after, err = time.Parse(time.RFC3339Nano, s); err != nil {
				http.Error(w, "bad updated_after", http.StatusBadRequest)
				return
			}
		}
		p := page{Records: []record{}}
		for _, rec := range all { // all is in updated_at order
			if !rec.UpdatedAt.After(after) {
				continue
			}
			if len(p.Records) == limit {
				p.HasMore = true
				break
			}
			p.Records = append(p.Records, rec)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func main() {
	sdk.Main(sdk.Connector{Name: "incremental_cursor", Update: update, Schema: schema})
}
