package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/riverqueue/river/rivertype"
)

// route is one API endpoint. The table is the one list of endpoints: the
// mux is built from it, and a test checks it against openapi.json.
type route struct {
	method, path string
	h            func(*Server, http.ResponseWriter, *http.Request) error
}

var routes = []route{
	{"GET", "/api/info", (*Server).getInfo},
	{"GET", "/api/destinations", (*Server).listDestinations},
	{"POST", "/api/destinations", (*Server).createDestination},
	{"GET", "/api/destinations/{name}", (*Server).getDestination},
	{"PATCH", "/api/destinations/{name}", (*Server).updateDestination},
	{"DELETE", "/api/destinations/{name}", (*Server).deleteDestination},
	{"GET", "/api/connections", (*Server).listConnections},
	{"POST", "/api/connections", (*Server).createConnection},
	{"GET", "/api/connections/{name}", (*Server).getConnection},
	{"PATCH", "/api/connections/{name}", (*Server).updateConnection},
	{"DELETE", "/api/connections/{name}", (*Server).deleteConnection},
	{"POST", "/api/connections/{name}/pause", (*Server).pauseConnection},
	{"POST", "/api/connections/{name}/resume", (*Server).resumeConnection},
	{"POST", "/api/connections/{name}/sync", (*Server).syncConnection},
	{"POST", "/api/connections/{name}/resync", (*Server).resyncConnection},
	{"GET", "/api/connections/{name}/state", (*Server).getState},
	{"PUT", "/api/connections/{name}/state", (*Server).putState},
	{"GET", "/api/connections/{name}/runs", (*Server).listConnectionRuns},
	{"GET", "/api/runs/{id}", (*Server).getRun},
	{"GET", "/api/runs/{id}/logs", (*Server).getRunLogs},
	{"GET", "/api/binaries", (*Server).listBinaries},
	{"POST", "/api/deploy", (*Server).deploy},
}

// Limits of what a request may send.
const (
	maxJSONBody   = 1 << 20
	maxBinarySize = 1 << 30
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := rt.h
		mux.Handle(rt.method+" "+rt.path, s.authed(func(w http.ResponseWriter, r *http.Request) {
			if err := h(s, w, r); err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	// The API's description and the page hold no data: they are served
	// without a key (the page asks for one, and sends it with each call).
	mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	mux.Handle("/api/", s.authed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path + " (see /api/openapi.json)"})
	}))
	mux.Handle("/", webHandler())
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// authed requires a valid API key. Every failure is the same 401: whether
// the key is unknown, wrong or revoked is not said.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		valid := false
		if ok && key != "" {
			var err error
			valid, err = s.st.verifyAPIKey(r.Context(), strings.TrimSpace(key))
			if err != nil {
				s.log.Error("verify API key", "error", err)
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
				return
			}
		}
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
			return
		}
		h(w, r)
	})
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// notFound is a 404 naming what is missing.
type notFound struct{ what string }

func (e *notFound) Error() string { return e.what + " not found" }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fieldError
	var nf *notFound
	var ce *conflictError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field})
	case errors.As(err, &nf):
		writeJSON(w, http.StatusNotFound, errorBody{Error: nf.Error()})
	case errors.As(err, &ce):
		writeJSON(w, http.StatusConflict, errorBody{Error: ce.Error()})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)})
	case errors.Is(err, errKeyMismatch):
		s.log.Error("API", "method", r.Method, "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "a stored secret does not open with this server's key: start the server with the key the store was created with"})
	default:
		// Internal errors are logged, not shown: they may name internals.
		s.log.Error("API", "method", r.Method, "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error (see the server's log)"})
	}
}

// decode reads a JSON body into v, strictly: an unknown field or a value
// of the wrong type is a 400 naming the field.
//
// The body is read as JSON whatever its Content-Type says (curl -d sends
// form-urlencoded): every call carries the API key in a header, which a
// cross-site form cannot set, so the type guards nothing.
func decode(r *http.Request, w http.ResponseWriter, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &te):
			return badField(te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return badField("body", "not valid JSON at byte %d: %v", se.Offset, err)
		case errors.Is(err, io.EOF):
			return badField("body", "is empty: send a JSON object")
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return badField(f, "unknown field")
		}
		return badField("body", "%v", err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a number"
}

// Info is what GET /api/info returns: `sluice deploy` builds for GOOS and
// GOARCH.
type Info struct {
	Version  string `json:"version"`
	GOOS     string `json:"goos"`
	GOARCH   string `json:"goarch"`
	Store    string `json:"store"`
	NameRule string `json:"name_rule"`
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) error {
	st := "sqlite"
	if s.st.postgres {
		st = "postgres"
	}
	writeJSON(w, http.StatusOK, Info{Version: version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Store: st, NameRule: NameRule})
	return nil
}

// Destinations.

func (s *Server) destView(d destRow) (Destination, error) {
	u, err := s.seal.open(purposeDestURL, d.urlSealed)
	if err != nil {
		return Destination{}, err
	}
	return Destination{Name: d.name, URL: maskURL(string(u)), Scheme: d.scheme, CreatedAt: parseTime(d.created), UpdatedAt: parseTime(d.updated)}, nil
}

func (s *Server) listDestinations(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.st.listDests(r.Context())
	if err != nil {
		return err
	}
	out := []Destination{}
	for _, d := range ds {
		v, err := s.destView(d)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"destinations": out})
	return nil
}

type destRequest struct {
	Name *string `json:"name"`
	URL  *string `json:"url"`
}

func (s *Server) createDestination(w http.ResponseWriter, r *http.Request) error {
	var req destRequest
	if err := decode(r, w, &req); err != nil {
		return err
	}
	if req.Name == nil || !validName(*req.Name) {
		return badField("name", "must be %s", NameRule)
	}
	url := ""
	if req.URL != nil {
		url = *req.URL
	}
	scheme, err := checkDestinationURL(url)
	if err != nil {
		return err
	}
	now := formatTime(time.Now())
	_, err = s.st.insertID(r.Context(), `INSERT INTO sluice_destinations (name, url_sealed, scheme, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		*req.Name, s.seal.seal(purposeDestURL, []byte(url)), scheme, now, now)
	if isUnique(err) {
		return &conflictError{fmt.Sprintf("a destination named %q exists: pick another name, or PATCH it", *req.Name)}
	}
	if err != nil {
		return err
	}
	return s.respondDest(w, r, *req.Name, http.StatusCreated)
}

func (s *Server) respondDest(w http.ResponseWriter, r *http.Request, name string, status int) error {
	d, err := s.st.destByName(r.Context(), name)
	if errors.Is(err, errNotFound) {
		return &notFound{fmt.Sprintf("destination %q", name)}
	}
	if err != nil {
		return err
	}
	v, err := s.destView(d)
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) getDestination(w http.ResponseWriter, r *http.Request) error {
	return s.respondDest(w, r, r.PathValue("name"), http.StatusOK)
}

func (s *Server) updateDestination(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	d, err := s.st.destByName(r.Context(), name)
	if errors.Is(err, errNotFound) {
		return &notFound{fmt.Sprintf("destination %q", name)}
	}
	if err != nil {
		return err
	}
	var req destRequest
	if err := decode(r, w, &req); err != nil {
		return err
	}
	if req.Name != nil && *req.Name != name {
		return badField("name", "a destination cannot be renamed: create a new one")
	}
	if req.URL != nil {
		old, err := s.seal.open(purposeDestURL, d.urlSealed)
		if err != nil {
			return err
		}
		// The masked URL sent back unchanged keeps the password.
		if *req.URL != maskURL(string(old)) {
			scheme, err := checkDestinationURL(*req.URL)
			if err != nil {
				return err
			}
			if _, err := s.st.exec(r.Context(), `UPDATE sluice_destinations SET url_sealed = ?, scheme = ?, updated_at = ? WHERE id = ?`,
				s.seal.seal(purposeDestURL, []byte(*req.URL)), scheme, formatTime(time.Now()), d.id); err != nil {
				return err
			}
		}
	}
	return s.respondDest(w, r, name, http.StatusOK)
}

func (s *Server) deleteDestination(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	d, err := s.st.destByName(r.Context(), name)
	if errors.Is(err, errNotFound) {
		return &notFound{fmt.Sprintf("destination %q", name)}
	}
	if err != nil {
		return err
	}
	var n int
	if err := s.st.queryRow(r.Context(), `SELECT COUNT(*) FROM sluice_connections WHERE destination_id = ?`, d.id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &conflictError{fmt.Sprintf("destination %q is used by %d connection(s): delete them or move them to another destination first", name, n)}
	}
	if _, err := s.st.exec(r.Context(), `DELETE FROM sluice_destinations WHERE id = ?`, d.id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Connections.

// DefaultSchedule is a new connection's schedule when none is given.
const DefaultSchedule = "6h"

func (s *Server) connView(ctx context.Context, c connRow, jobs map[int64]*rivertype.JobRow) (Connection, error) {
	cfgJSON, err := s.seal.open(purposeConfig, c.configSealed)
	if err != nil {
		return Connection{}, err
	}
	var cfg map[string]string
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return Connection{}, err
	}
	v := Connection{
		Name: c.name, Destination: c.destName, Schedule: c.schedule, Paused: c.paused,
		Configuration: maskConfig(cfg), Binary: c.binary(), DeployedAt: nullTime(c.deployed),
		ResyncPending: c.pendingResync(), CreatedAt: parseTime(c.created), UpdatedAt: parseTime(c.updated),
	}
	if v.LastRun, err = s.st.lastRun(ctx, c.id); err != nil {
		return Connection{}, err
	}
	if t, ok := nextRun(&c); ok {
		t = t.UTC()
		v.NextRunAt = &t
	}
	job := jobs[c.id]
	// River marks a job completed shortly after its work returns: a
	// running job whose run has already ended is done.
	if job != nil && job.State == rivertype.JobStateRunning && v.LastRun != nil && v.LastRun.Status != RunRunning &&
		job.AttemptedAt != nil && !v.LastRun.StartedAt.Before(job.AttemptedAt.Truncate(time.Millisecond)) {
		job = nil
	}
	switch {
	case v.Binary == nil:
		v.Status = "not_deployed"
	case v.LastRun != nil && v.LastRun.Status == RunRunning:
		v.Status = "running"
	case job != nil && job.State == rivertype.JobStateRunning:
		v.Status = "running"
	case c.paused:
		v.Status = "paused"
	case job != nil && job.State == rivertype.JobStateRetryable:
		v.Status = "retrying"
	case job != nil:
		v.Status = "queued"
	case v.LastRun == nil:
		v.Status = "never_run"
	default:
		v.Status = v.LastRun.Status
	}
	return v, nil
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.st.listConns(r.Context())
	if err != nil {
		return err
	}
	jobs, err := s.pendingJobs(r.Context())
	if err != nil {
		return err
	}
	out := []Connection{}
	for _, c := range cs {
		v, err := s.connView(r.Context(), c, jobs)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"connections": out})
	return nil
}

func (s *Server) conn(ctx context.Context, name string) (connRow, error) {
	c, err := s.st.connByName(ctx, name)
	if errors.Is(err, errNotFound) {
		return c, &notFound{fmt.Sprintf("connection %q", name)}
	}
	return c, err
}

func (s *Server) respondConn(w http.ResponseWriter, r *http.Request, name string, status int) error {
	c, err := s.conn(r.Context(), name)
	if err != nil {
		return err
	}
	jobs, err := s.pendingJobs(r.Context())
	if err != nil {
		return err
	}
	v, err := s.connView(r.Context(), c, jobs)
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) error {
	return s.respondConn(w, r, r.PathValue("name"), http.StatusOK)
}

// connRequest is the body of a create or update; nil fields are left as
// they are (or take their defaults on create).
type connRequest struct {
	Name          *string                    `json:"name"`
	Destination   *string                    `json:"destination"`
	Schedule      *string                    `json:"schedule"`
	Paused        *bool                      `json:"paused"`
	Configuration map[string]json.RawMessage `json:"configuration"`
}

// checkConfiguration turns a request's configuration into a JSON object of
// strings; a value equal to Mask keeps old's value for that key.
func checkConfiguration(raw map[string]json.RawMessage, old map[string]string) ([]byte, error) {
	cfg := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || strings.TrimSpace(string(v)) == "null" {
			// The value is not echoed: it may be a secret.
			return nil, badField("configuration."+k, "must be a string (every configuration value is a string)")
		}
		if s == Mask {
			o, ok := old[k]
			if !ok {
				return nil, badField("configuration."+k, "is the mask %q but there is no stored value to keep", Mask)
			}
			s = o
		}
		cfg[k] = s
	}
	return json.Marshal(cfg)
}

func (s *Server) checkSchedule(p *string) (string, error) {
	if p == nil {
		return DefaultSchedule, nil
	}
	if _, err := parseSchedule(*p); err != nil {
		return "", badField("schedule", "%v", err)
	}
	return strings.TrimSpace(*p), nil
}

func (s *Server) destID(ctx context.Context, name *string) (int64, error) {
	if name == nil || *name == "" {
		return 0, badField("destination", "is required: the name of a destination (GET /api/destinations lists them)")
	}
	d, err := s.st.destByName(ctx, *name)
	if errors.Is(err, errNotFound) {
		return 0, badField("destination", "no destination named %q: create it first (POST /api/destinations)", *name)
	}
	return d.id, err
}

func (s *Server) createConnection(w http.ResponseWriter, r *http.Request) error {
	var req connRequest
	if err := decode(r, w, &req); err != nil {
		return err
	}
	if req.Name == nil || !validName(*req.Name) {
		return badField("name", "must be %s", NameRule)
	}
	destID, err := s.destID(r.Context(), req.Destination)
	if err != nil {
		return err
	}
	sched, err := s.checkSchedule(req.Schedule)
	if err != nil {
		return err
	}
	cfg, err := checkConfiguration(req.Configuration, nil)
	if err != nil {
		return err
	}
	paused := req.Paused != nil && *req.Paused
	if err := s.insertConn(r.Context(), *req.Name, destID, sched, paused, cfg, nil); err != nil {
		return err
	}
	return s.respondConn(w, r, *req.Name, http.StatusCreated)
}

func (s *Server) insertConn(ctx context.Context, name string, destID int64, sched string, paused bool, cfg []byte, binaryID *int64) error {
	now := formatTime(time.Now())
	var bin, deployed any
	if binaryID != nil {
		bin, deployed = *binaryID, now
	}
	_, err := s.st.insertID(ctx, `INSERT INTO sluice_connections (name, destination_id, binary_id, schedule, paused, config_sealed, created_at, updated_at, deployed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, name, destID, bin, sched, boolInt(paused), s.seal.seal(purposeConfig, cfg), now, now, deployed)
	if isUnique(err) {
		return &conflictError{fmt.Sprintf("a connection named %q exists: pick another name, or PATCH it", name)}
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) oldConfig(c *connRow) (map[string]string, error) {
	b, err := s.seal.open(purposeConfig, c.configSealed)
	if err != nil {
		return nil, err
	}
	var cfg map[string]string
	return cfg, json.Unmarshal(b, &cfg)
}

func (s *Server) updateConnection(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	c, err := s.conn(r.Context(), name)
	if err != nil {
		return err
	}
	var req connRequest
	if err := decode(r, w, &req); err != nil {
		return err
	}
	if req.Name != nil && *req.Name != name {
		return badField("name", "a connection cannot be renamed (its name is its schema in the destination): create a new one")
	}
	sets := []string{}
	args := []any{}
	if req.Destination != nil {
		id, err := s.destID(r.Context(), req.Destination)
		if err != nil {
			return err
		}
		sets, args = append(sets, "destination_id = ?"), append(args, id)
	}
	if req.Schedule != nil {
		sched, err := s.checkSchedule(req.Schedule)
		if err != nil {
			return err
		}
		sets, args = append(sets, "schedule = ?"), append(args, sched)
	}
	if req.Paused != nil {
		sets, args = append(sets, "paused = ?"), append(args, boolInt(*req.Paused))
	}
	if req.Configuration != nil {
		old, err := s.oldConfig(&c)
		if err != nil {
			return err
		}
		cfg, err := checkConfiguration(req.Configuration, old)
		if err != nil {
			return err
		}
		sets, args = append(sets, "config_sealed = ?"), append(args, s.seal.seal(purposeConfig, cfg))
	}
	if len(sets) > 0 {
		sets, args = append(sets, "updated_at = ?"), append(args, formatTime(time.Now()), c.id)
		if _, err := s.st.exec(r.Context(), `UPDATE sluice_connections SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return err
		}
	}
	return s.respondConn(w, r, name, http.StatusOK)
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.conn(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	unlock, _, ok, err := s.locks.tryLock(r.Context(), lockClassConnection, c.id)
	if err != nil {
		return err
	}
	if !ok {
		return &conflictError{fmt.Sprintf("connection %q is running a sync: pause it, wait for the run to end, then delete it", c.name)}
	}
	defer unlock()
	if err := s.st.deleteConn(r.Context(), c.id); err != nil {
		return err
	}
	if err := s.st.dropUnusedBinaries(r.Context()); err != nil {
		s.log.Warn("drop unused binaries", "error", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, paused bool) error {
	c, err := s.conn(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if _, err := s.st.exec(r.Context(), `UPDATE sluice_connections SET paused = ?, updated_at = ? WHERE id = ?`, boolInt(paused), formatTime(time.Now()), c.id); err != nil {
		return err
	}
	return s.respondConn(w, r, c.name, http.StatusOK)
}

func (s *Server) pauseConnection(w http.ResponseWriter, r *http.Request) error {
	return s.setPaused(w, r, true)
}

func (s *Server) resumeConnection(w http.ResponseWriter, r *http.Request) error {
	return s.setPaused(w, r, false)
}

// TriggerResult is the answer to a sync or re-sync request.
type TriggerResult struct {
	// Queued is true when a new run was queued; false when the request
	// joined a run already queued, or asked for one more run after the
	// one in progress.
	Queued  bool   `json:"queued"`
	Message string `json:"message"`
}

// triggerTries and triggerPause bound how long a trigger waits for River
// to mark a finished job done (see trigger).
const (
	triggerTries = 40
	triggerPause = 50 * time.Millisecond
)

// trigger queues a run of c. A trigger while a run is queued joins it; one
// while a run is in progress queues one more run after it (several such
// triggers queue one). Runs of a connection never overlap: the queued run
// waits for the connection's lock.
func (s *Server) trigger(ctx context.Context, c *connRow, why string) (TriggerResult, error) {
	if c.paused {
		return TriggerResult{}, &conflictError{fmt.Sprintf("connection %q is paused: resume it first", c.name)}
	}
	if !c.binaryID.Valid {
		return TriggerResult{}, &conflictError{fmt.Sprintf("connection %q has no code: deploy it with `sluice deploy`", c.name)}
	}
	// The job found in the way may end between the two looks: then look
	// again.
	for range triggerTries {
		queued, err := s.enqueueSync(ctx, c.id, why, false)
		if err != nil {
			return TriggerResult{}, err
		}
		if queued {
			return TriggerResult{Queued: true, Message: "sync queued"}, nil
		}
		jobs, err := s.pendingJobs(ctx)
		if err != nil {
			return TriggerResult{}, err
		}
		j := jobs[c.id]
		if j == nil {
			continue
		}
		if j.State != rivertype.JobStateRunning {
			return TriggerResult{Message: "a sync is already queued"}, nil
		}
		queued, err = s.enqueueSync(ctx, c.id, why, true)
		if err != nil {
			return TriggerResult{}, err
		}
		if queued {
			return TriggerResult{Queued: true, Message: "a sync is running: another one starts when it ends"}, nil
		}
		// Both slots are taken. A job waiting in either runs after the
		// running one. If both are running, one of them has ended its run
		// but River has not marked it done yet (it completes jobs in
		// batches): the trigger must not join it, so look again shortly.
		waiting, err := s.waitingJob(ctx, c.id)
		if err != nil {
			return TriggerResult{}, err
		}
		if waiting {
			return TriggerResult{Message: "a sync is running and another is queued after it"}, nil
		}
		select {
		case <-ctx.Done():
			return TriggerResult{}, ctx.Err()
		case <-time.After(triggerPause):
		}
	}
	return TriggerResult{}, fmt.Errorf("queue a sync of %q: the queue kept changing for %d tries; try again", c.name, triggerTries)
}

func (s *Server) syncConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.conn(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	res, err := s.trigger(r.Context(), &c, "manual")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, res)
	return nil
}

func (s *Server) resyncConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := s.conn(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	var req struct {
		Tables   []string `json:"tables"`
		Truncate bool     `json:"truncate"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, w, &req); err != nil {
			return err
		}
	}
	rs := Resync{All: len(req.Tables) == 0, Truncate: req.Truncate && len(req.Tables) == 0}
	for i, t := range req.Tables {
		if !tableNameRE.MatchString(t) {
			return badField(fmt.Sprintf("tables[%d]", i), "%q is not a table name as the destination has them (lowercase letters, digits and underscores)", t)
		}
		if !slices.Contains(rs.Tables, t) {
			rs.Tables = append(rs.Tables, t)
		}
	}
	if c.paused {
		return &conflictError{fmt.Sprintf("connection %q is paused: resume it first", c.name)}
	}
	b, _ := json.Marshal(rs)
	if _, err := s.st.exec(r.Context(), `UPDATE sluice_connections SET resync = ? WHERE id = ?`, string(b), c.id); err != nil {
		return err
	}
	res, err := s.trigger(r.Context(), &c, "resync")
	if err != nil {
		return err
	}
	res.Message = "re-sync requested; " + res.Message
	writeJSON(w, http.StatusAccepted, res)
	return nil
}

func (s *Server) connAndDest(ctx context.Context, name string) (connRow, destRow, error) {
	c, err := s.conn(ctx, name)
	if err != nil {
		return c, destRow{}, err
	}
	d, err := s.st.destByID(ctx, c.destID)
	return c, d, err
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) error {
	c, d, err := s.connAndDest(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	v, err := s.readState(r.Context(), &c, &d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) putState(w http.ResponseWriter, r *http.Request) error {
	c, d, err := s.connAndDest(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	var req struct {
		State json.RawMessage `json:"state"`
	}
	if err := decode(r, w, &req); err != nil {
		return err
	}
	var obj map[string]any
	if json.Unmarshal(req.State, &obj) != nil || obj == nil {
		return badField("state", "must be a JSON object (the connector's state), like {\"cursor\": \"2024-01-01\"}")
	}
	if err := s.setState(r.Context(), &c, &d, req.State); err != nil {
		return err
	}
	v, err := s.readState(r.Context(), &c, &d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// Runs.

func queryInt(r *http.Request, name string, def, min, max int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, badField(name, "must be a whole number from %d to %d", min, max)
	}
	return n, nil
}

func (s *Server) listConnectionRuns(w http.ResponseWriter, r *http.Request) error {
	c, err := s.conn(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	before, err := queryInt(r, "before", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	runs, err := s.st.listRuns(r.Context(), c.id, before, int(limit))
	if err != nil {
		return err
	}
	body := map[string]any{"runs": runs}
	if len(runs) == int(limit) {
		body["next_before"] = runs[len(runs)-1].ID
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) runFromPath(r *http.Request) (Run, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return Run{}, badField("id", "must be a run id (a positive whole number)")
	}
	run, err := s.st.runByID(r.Context(), id)
	if errors.Is(err, errNotFound) {
		return run, &notFound{fmt.Sprintf("run %d", id)}
	}
	return run, err
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// LogPage is a page of a run's log.
type LogPage struct {
	Lines []LogLine `json:"lines"`
	// NextAfter is the after= of the next page.
	NextAfter int `json:"next_after"`
	// Done is true when the run has ended and this page reaches its end.
	Done bool `json:"done"`
}

func (s *Server) getRunLogs(w http.ResponseWriter, r *http.Request) error {
	run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	after, err := queryInt(r, "after", 0, 0, 1<<31)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 1000, 1, 5000)
	if err != nil {
		return err
	}
	lines, err := s.st.readLogs(r.Context(), run.ID, int(after), int(limit))
	if err != nil {
		return err
	}
	p := LogPage{Lines: lines, NextAfter: int(after)}
	if len(lines) > 0 {
		p.NextAfter = lines[len(lines)-1].Seq
	}
	p.Done = run.Status != RunRunning && len(lines) < int(limit)
	writeJSON(w, http.StatusOK, p)
	return nil
}

// BinaryUse is an uploaded build and the connections running it.
type BinaryUse struct {
	Binary
	Connections []string `json:"connections"`
}

func (s *Server) listBinaries(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.st.db.QueryContext(r.Context(), `SELECT b.sha256, b.size, b.goos, b.goarch, b.uploaded_at, c.name
		FROM sluice_binaries b JOIN sluice_connections c ON c.binary_id = b.id WHERE b.complete = 1 ORDER BY b.uploaded_at DESC, c.name`)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []*BinaryUse{}
	for rows.Next() {
		var b Binary
		var up, conn string
		if err := rows.Scan(&b.SHA256, &b.Size, &b.GOOS, &b.GOARCH, &up, &conn); err != nil {
			return err
		}
		b.UploadedAt = parseTime(up)
		if n := len(out); n > 0 && out[n-1].SHA256 == b.SHA256 {
			out[n-1].Connections = append(out[n-1].Connections, conn)
			continue
		}
		out = append(out, &BinaryUse{Binary: b, Connections: []string{conn}})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"binaries": out})
	return nil
}

// DeployRequest is the first part ("metadata") of POST /api/deploy; the
// second ("binary") is the connector program.
type DeployRequest struct {
	Connection  string `json:"connection"`
	Destination string `json:"destination"`
	// Configuration replaces the stored one when set; nil keeps it.
	Configuration map[string]json.RawMessage `json:"configuration,omitempty"`
	// Schedule is set when given; a new connection otherwise gets
	// DefaultSchedule.
	Schedule *string `json:"schedule,omitempty"`
	GOOS     string  `json:"goos"`
	GOARCH   string  `json:"goarch"`
	// SHA256, when given, is checked against what arrived.
	SHA256 string `json:"sha256,omitempty"`
}

// DeployResult is the answer to a deploy.
type DeployResult struct {
	Created    bool       `json:"created"`
	Connection Connection `json:"connection"`
}

// deploy creates or updates a connection with a new build. The build is
// streamed into the store as it arrives; the connection changes only once
// the whole build is in, so a cut upload leaves the old one running. The
// state, in the destination, is not touched.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	mr, err := r.MultipartReader()
	if err != nil {
		return badField("body", "send multipart/form-data with a \"metadata\" part (JSON) then a \"binary\" part")
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "metadata" {
		return badField("metadata", "the first part must be \"metadata\", a JSON object")
	}
	var req DeployRequest
	dec := json.NewDecoder(io.LimitReader(part, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badField("metadata", "not a valid deploy request: %v", err)
	}
	if !validName(req.Connection) {
		return badField("connection", "must be %s", NameRule)
	}
	if req.GOOS != runtime.GOOS || req.GOARCH != runtime.GOARCH {
		return badField("goos", "the build is for %s/%s but the server runs %s/%s: build with GOOS=%s GOARCH=%s", req.GOOS, req.GOARCH, runtime.GOOS, runtime.GOARCH, runtime.GOOS, runtime.GOARCH)
	}
	existing, err := s.st.connByName(ctx, req.Connection)
	exists := err == nil
	if err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	var destID int64
	if req.Destination != "" || !exists {
		if destID, err = s.destID(ctx, &req.Destination); err != nil {
			return err
		}
	}
	var sched string
	if req.Schedule != nil || !exists {
		if sched, err = s.checkSchedule(req.Schedule); err != nil {
			return err
		}
	}
	var cfg []byte
	if req.Configuration != nil || !exists {
		var old map[string]string
		if exists {
			if old, err = s.oldConfig(&existing); err != nil {
				return err
			}
		}
		if cfg, err = checkConfiguration(req.Configuration, old); err != nil {
			return err
		}
	}
	part, err = mr.NextPart()
	if err != nil || part.FormName() != "binary" {
		return badField("binary", "the second part must be \"binary\", the connector program")
	}
	encoding := ""
	switch ct := part.Header.Get("Content-Type"); ct {
	case EncodingZstd:
		encoding = "zstd"
	case "", "application/octet-stream":
	default:
		return badField("binary", "Content-Type %q: send the program as application/octet-stream, or compressed as %s", ct, EncodingZstd)
	}
	binID, sha, err := s.storeBinary(ctx, part, req.GOOS, req.GOARCH, encoding)
	if err != nil {
		return err
	}
	// A body cut short ends the part early too: only the closing boundary
	// proves the build arrived whole.
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		s.st.dropUnusedBinaries(ctx)
		return badField("binary", "the upload did not end properly (no closing boundary): deploy again")
	}
	if req.SHA256 != "" && !strings.EqualFold(req.SHA256, sha) {
		s.st.dropUnusedBinaries(ctx)
		return badField("sha256", "the upload's SHA-256 is %s, not %s: the upload was damaged, deploy again", sha, req.SHA256)
	}
	if exists {
		sets := []string{"binary_id = ?", "deployed_at = ?", "updated_at = ?"}
		now := formatTime(time.Now())
		args := []any{binID, now, now}
		if destID != 0 {
			sets, args = append(sets, "destination_id = ?"), append(args, destID)
		}
		if sched != "" {
			sets, args = append(sets, "schedule = ?"), append(args, sched)
		}
		if cfg != nil {
			sets, args = append(sets, "config_sealed = ?"), append(args, s.seal.seal(purposeConfig, cfg))
		}
		args = append(args, existing.id)
		if _, err := s.st.exec(ctx, `UPDATE sluice_connections SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return err
		}
	} else if err := s.insertConn(ctx, req.Connection, destID, sched, false, cfg, &binID); err != nil {
		return err
	}
	if err := s.st.dropUnusedBinaries(ctx); err != nil {
		s.log.Warn("drop unused binaries", "error", err)
	}
	c, err := s.st.connByName(ctx, req.Connection)
	if err != nil {
		return err
	}
	jobs, err := s.pendingJobs(ctx)
	if err != nil {
		return err
	}
	v, err := s.connView(ctx, c, jobs)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, DeployResult{Created: !exists, Connection: v})
	return nil
}

// EncodingZstd is the binary part's Content-Type for a zstd-compressed
// build (what `sluice deploy` sends: programs shrink to about a third).
const EncodingZstd = "application/zstd"

// storeBinary streams a build into the store, one chunk at a time, as it
// arrives (compressed or not: chunks are stored as sent). The build's
// SHA-256 and size are those of the program itself, which a compressed
// upload is decompressed for, on the way through.
func (s *Server) storeBinary(ctx context.Context, r io.Reader, goos, goarch, encoding string) (int64, string, error) {
	id, err := s.st.beginBinary(ctx, goos, goarch, encoding)
	if err != nil {
		return 0, "", err
	}
	fail := func(err error) (int64, string, error) {
		s.st.dropBinary(context.WithoutCancel(ctx), id)
		return 0, "", err
	}
	h := sha256.New()
	var size int64
	hashing := writerFunc(func(p []byte) (int, error) {
		size += int64(len(p))
		if size > maxBinarySize {
			return 0, badField("binary", "is larger than %d bytes", maxBinarySize)
		}
		return h.Write(p)
	})
	var plain io.Writer = hashing
	var pw *io.PipeWriter
	decoded := make(chan error, 1)
	if encoding == "zstd" {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		go func() {
			err := decompress(hashing, pr)
			pr.CloseWithError(err)
			decoded <- err
		}()
		plain = pw
	}
	buf := make([]byte, chunkSize)
	var stored int64
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			stored += int64(n)
			if _, err := plain.Write(buf[:n]); err != nil {
				if pw != nil {
					err = <-decoded
				}
				var fe *fieldError
				if errors.As(err, &fe) {
					return fail(err)
				}
				return fail(badField("binary", "is not a valid zstd stream: %v", err))
			}
			if err := s.st.addChunk(ctx, id, seq, buf[:n]); err != nil {
				if pw != nil {
					pw.CloseWithError(err)
					<-decoded
				}
				return fail(err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			if pw != nil {
				pw.CloseWithError(rerr)
				<-decoded
			}
			return fail(badField("binary", "the upload broke off: %v", rerr))
		}
	}
	if pw != nil {
		pw.Close()
		if err := <-decoded; err != nil {
			return fail(badField("binary", "is not a valid zstd stream: %v", err))
		}
	}
	if size == 0 {
		return fail(badField("binary", "is empty"))
	}
	sha := hex.EncodeToString(h.Sum(nil))
	id, err = s.st.finishBinary(ctx, id, sha, size, stored)
	return id, sha, err
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// decompress writes the zstd stream r decodes to into w. The decoder's
// window is bounded, so a hostile stream cannot ask for unbounded memory.
func decompress(w io.Writer, r io.Reader) error {
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	defer dec.Close()
	_, err = io.Copy(w, dec)
	return err
}
