package server

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sluicedata/sluice/engine"
)

// NameRule is the one rule every destination and connection name follows.
// A connection's name is also its schema in the destination, so the rule is
// that of an unquoted SQL identifier that every destination accepts as is.
// It is also the form sluice normalises names to (engine.Normalize), so the
// schema a connector's run writes is the connection's name as given.
const NameRule = "1 to 63 characters: lowercase letters and digits, words joined by single underscores, starting with a letter (not pg_...)"

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// validName checks a name against NameRule.
func validName(s string) bool {
	if len(s) > 63 || !nameRE.MatchString(s) || strings.HasPrefix(s, "pg_") || s == "information_schema" {
		return false
	}
	n, err := engine.Normalize(s)
	return err == nil && n == s
}

// tableNameRE is a table name as the engine normalises them.
var tableNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// fieldError is a 400: a request field that is wrong, and how.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// schedule is when a connection runs: every interval, on a cron
// expression, or only when triggered ("manual").
type schedule struct {
	interval time.Duration
	cron     cron.Schedule
}

// MinInterval is the shortest interval schedule.
const MinInterval = time.Second

// parseSchedule reads "15m", "1h30m", "manual", or a cron expression in
// the standard five fields ("*/15 * * * *"), a descriptor ("@hourly",
// "@every 15m"), optionally prefixed by "CRON_TZ=Europe/Paris " (else UTC).
func parseSchedule(s string) (schedule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return schedule{}, fmt.Errorf(`is empty: give an interval ("15m"), a cron expression ("0 * * * *") or "manual"`)
	case s == "manual":
		return schedule{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < MinInterval {
			return schedule{}, fmt.Errorf("interval %s is shorter than %s", d, MinInterval)
		}
		return schedule{interval: d}, nil
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.Contains(s, " ") {
		return schedule{}, fmt.Errorf(`%q is not an interval: write it like "15m", "2h" or "1h30m"`, s)
	}
	c, err := cron.ParseStandard(s)
	if err != nil {
		return schedule{}, fmt.Errorf("%q is not an interval nor a cron expression: %v", s, err)
	}
	return schedule{cron: c}, nil
}

func (s schedule) manual() bool { return s.interval == 0 && s.cron == nil }

// next is the first run time after last; ok is false for "manual".
func (s schedule) next(last time.Time) (t time.Time, ok bool) {
	switch {
	case s.interval > 0:
		return last.Add(s.interval), true
	case s.cron != nil:
		return s.cron.Next(last.UTC()), true
	}
	return time.Time{}, false
}

// checkDestinationURL validates a destination URL without connecting. The
// connector program opens it, with the destinations it links; the server
// accepts the schemes sluice ships.
func checkDestinationURL(raw string) (scheme string, err error) {
	if raw == "" {
		return "", badField("url", `is required, like "postgres://user:password@host:5432/db" or "duckdb:/var/lib/sluice/warehouse.db"`)
	}
	u, perr := url.Parse(raw)
	if perr != nil {
		// The parser's message quotes the URL, password and all.
		return "", badField("url", "is not a valid URL")
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		if u.Host == "" {
			return "", badField("url", "has no host: write postgres://user:password@host:5432/database")
		}
		return "postgres", nil
	case "duckdb":
		path := u.Opaque
		if path == "" {
			path = u.Path
		}
		// The connector runs in a temporary folder: a relative path
		// would land there and vanish.
		if !strings.HasPrefix(path, "/") {
			return "", badField("url", "a DuckDB destination needs an absolute path, like duckdb:/var/lib/sluice/warehouse.db")
		}
		return "duckdb", nil
	case "":
		return "", badField("url", `has no scheme: start it with "postgres://" or "duckdb:"`)
	}
	return "", badField("url", "unknown scheme %q: use postgres or duckdb", u.Scheme)
}

// maskURL hides a URL's password, for the API.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return strings.Replace(u.String(), "xxxxx", Mask, 1)
}

// Mask replaces a secret in what the API returns. Sent back in an update,
// it keeps the stored value.
const Mask = "********"

// secretWords mark a configuration key as holding a secret; the same rule
// as sluice debug's log redaction.
var secretWords = []string{"password", "passwd", "pwd", "secret", "token", "key", "credential", "auth", "private", "session", "cookie", "signature"}

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// maskConfig returns cfg with secret values masked: values of secret keys,
// and passwords inside URL values.
func maskConfig(cfg map[string]string) map[string]string {
	out := make(map[string]string, len(cfg))
	for k, v := range cfg {
		switch {
		case secretKey(k) && v != "":
			out[k] = Mask
		default:
			out[k] = maskURL(v)
		}
	}
	return out
}

// secretValues lists what must never appear in a log line or an error kept
// by the server.
func secretValues(cfg map[string]string, destURL string) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 {
			out = append(out, v)
		}
	}
	for k, v := range cfg {
		if secretKey(k) {
			add(v)
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p)
			}
		}
	}
	if u, err := url.Parse(destURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	return out
}

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}
