package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedata/sluice/destination"
	"github.com/sluicedata/sluice/engine"
	"github.com/sluicedata/sluice/internal/contract"
)

// redactor masks secrets from the configuration in anything sluice prints or
// stores. A value is a secret when its key's name says so (see secretKey);
// a URL's password is a secret under any key. Masking every value would mask
// harmless words such as a mode name wherever they occur in a message.
type redactor struct{ secrets []string }

// secretWords mark a configuration key as holding a secret.
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

func newRedactor(cfg contract.Config) redactor {
	var r redactor
	for k, v := range cfg {
		if v != "" && secretKey(k) {
			r.secrets = append(r.secrets, v)
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				r.secrets = append(r.secrets, p)
			}
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

func (r *redactor) apply(s string) string {
	for _, v := range r.secrets {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

// logHandler sends connector logs to the console and to the warehouse's
// _sluice_log table, under a rate limit: a log call per row must not flood
// either.
type logHandler struct {
	*logSink
	attrs []slog.Attr
}

// logSink is what a handler and the handlers derived from it by WithAttrs
// share: one buffer, flushed at each commit, and one rate limit.
type logSink struct {
	console io.Writer
	dest    destination.Destination
	verbose bool
	redact  *redactor

	mu      sync.Mutex
	buf     []destination.LogRecord
	tokens  float64
	last    time.Time
	dropped int64
}

const (
	logBurst     = 200  // records let through at once
	logPerSecond = 50.0 // sustained rate
	logFlushAt   = 100  // records buffered before a warehouse write
)

func newLogHandler(console io.Writer, dest destination.Destination, verbose bool, r *redactor) *logHandler {
	return &logHandler{logSink: &logSink{console: console, dest: dest, verbose: verbose, redact: r, tokens: logBurst, last: time.Now()}}
}

// install makes h slog's default for the run and returns the undo.
func (h *logHandler) install() func() {
	prev := slog.Default()
	slog.SetDefault(slog.New(h))
	return func() { slog.SetDefault(prev) }
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.verbose || l >= contract.LevelInfo
}

func (h *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	rec.Attrs(write)
	msg := h.redact.apply(b.String())
	level := contract.LevelName(rec.Level)

	h.mu.Lock()
	now := time.Now()
	h.tokens = min(logBurst, h.tokens+now.Sub(h.last).Seconds()*logPerSecond)
	h.last = now
	if h.tokens < 1 {
		h.dropped++
		h.mu.Unlock()
		return nil
	}
	h.tokens--
	if h.dropped > 0 {
		note := fmt.Sprintf("%d log records dropped by the rate limit (%d/s, bursts of %d)", h.dropped, int(logPerSecond), logBurst)
		h.dropped = 0
		h.emit(now, "WARNING", note)
	}
	h.emit(rec.Time, level, msg)
	full := len(h.buf) >= logFlushAt
	h.mu.Unlock()
	if full {
		h.flush(ctx)
	}
	return nil
}

// emit prints and buffers one record; h.mu is held.
func (h *logSink) emit(t time.Time, level, msg string) {
	if t.IsZero() {
		t = time.Now()
	}
	fmt.Fprintf(h.console, "%s %-7s %s\n", t.Format("15:04:05.000"), level, msg)
	h.buf = append(h.buf, destination.LogRecord{Time: t, Level: level, Message: msg})
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{logSink: h.logSink, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

// flush writes buffered records to the warehouse. A failure to store logs is
// reported on the console but does not fail the sync.
func (h *logSink) flush(ctx context.Context) {
	h.mu.Lock()
	recs := h.buf
	h.buf = nil
	h.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := h.dest.Log(ctx, recs); err != nil {
		fmt.Fprintf(h.console, "warning: could not store %d log records in the warehouse: %v\n", len(recs), err)
	}
}

func (h *logHandler) close(ctx context.Context) {
	h.mu.Lock()
	if h.dropped > 0 {
		h.emit(time.Now(), "WARNING", fmt.Sprintf("%d log records dropped by the rate limit", h.dropped))
		h.dropped = 0
	}
	h.mu.Unlock()
	h.flush(ctx)
}

// progress prints a live line (operations, rate) on a terminal during long
// runs.
type progress struct {
	done    chan struct{}
	stopped atomic.Bool
	wg      sync.WaitGroup
}

func startProgress(w io.Writer, eng *engine.Engine) *progress {
	p := &progress{done: make(chan struct{})}
	if !isTerminal(w) {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		start := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		printed := false
		for {
			select {
			case <-p.done:
				if printed {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-tick.C:
				ops := eng.Ops()
				el := time.Since(start)
				fmt.Fprintf(w, "\r\033[K%d operations, %.0f ops/s, %s", ops, float64(ops)/el.Seconds(), el.Round(time.Second))
				printed = true
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	if p.stopped.CompareAndSwap(false, true) {
		close(p.done)
		p.wg.Wait()
	}
}
