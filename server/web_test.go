package server

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Chromium: SLUICE_CHROMIUM, else Debian's.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("SLUICE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestWebPage clicks through the page in headless Chromium: it signs in
// with a key, sees the connection, triggers a run and sees its rows per
// table and the chart, pauses and resumes, re-syncs a table, and reads a
// run's logs.
func TestWebPage(t *testing.T) {
	t.Parallel()
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("Chromium not found (set SLUICE_CHROMIUM, or run .ci/install-chromium): the page's end-to-end test needs it")
	}
	h := startServer(t, testConfig(t.TempDir()))
	h.duckDest("local")
	h.deploy("webconn", "local", map[string]string{"rows": "3"}, "manual")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// A safety net against a hung browser, not an assertion on speed.
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	row := `#connections tbody tr[data-name="webconn"]`
	button := func(action string) string { return row + ` button[data-action="` + action + `"]` }
	fail := func(what string, err error) {
		t.Helper()
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			fail(what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("read "+sel, err)
		}
		return v
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	step("open the page and sign in",
		chromedp.Navigate(h.web.URL+"/"),
		chromedp.WaitVisible(css(`#key-input`)),
		chromedp.SendKeys(css(`#key-input`), h.key),
		chromedp.Click(css(`#key-save`)),
		chromedp.WaitVisible(css(row)),
	)
	status, err := chromedp.Run(ctx, chromedp.AttributeValue(css(row), "data-status"))
	if err != nil || status.Value != "never_run" {
		t.Errorf("status shown: %+v %v", status, err)
	}

	step("trigger a run and open the connection",
		chromedp.Click(css(button("sync"))),
		chromedp.Click(css(row+` td.name`)),
		chromedp.WaitVisible(css(`#runs tbody tr[data-status="succeeded"]`)),
	)
	items := text(`#runs tbody tr[data-status="succeeded"] div[data-table="items"]`)
	events := text(`#runs tbody tr[data-status="succeeded"] div[data-table="events"]`)
	step("see the run in the chart", chromedp.WaitVisible(css(`#chart svg rect.succeeded`)))
	if items != "items: 3 rows" || events != "events: 1 rows" {
		t.Errorf("rows per table shown: %q, %q", items, events)
	}

	step("pause",
		chromedp.Click(css(button("pause"))),
		chromedp.WaitVisible(css(row+`[data-status="paused"]`)),
	)
	if c := h.connection("webconn"); !c.Paused {
		t.Errorf("the page's pause did not pause: %+v", c)
	}
	step("resume",
		chromedp.Click(css(button("resume"))),
		chromedp.WaitVisible(css(row+`[data-status="succeeded"]`)),
	)
	if c := h.connection("webconn"); c.Paused {
		t.Errorf("the page's resume did not resume: %+v", c)
	}

	step("re-sync a table",
		chromedp.Click(css(button("resync"))),
		chromedp.WaitVisible(css(`#resync-tables`)),
		chromedp.SendKeys(css(`#resync-tables`), "items"),
		chromedp.Click(css(`#resync-start`)),
		chromedp.WaitVisible(css(`#runs tbody tr[data-status="succeeded"]:nth-child(2)`)),
	)
	runs := h.runs("webconn")
	if len(runs) != 2 || runs[0].Trigger != "resync" {
		t.Fatalf("runs after the page's re-sync: %+v", runs)
	}

	step("open the re-sync run's logs",
		chromedp.Click(css(`#runs tbody tr[data-run="`+strconv.FormatInt(runs[0].ID, 10)+`"]`)),
		chromedp.WaitVisible(css(`#logs`)),
		chromedp.Poll[chromedp.Void](`document.querySelector("#log-lines").textContent.includes("re-sync of tables")`),
	)
	logs := text(`#log-lines`)
	if !strings.Contains(logs, "re-sync of tables [items]") {
		t.Errorf("logs shown:\n%s", logs)
	}

	step("forget the key",
		chromedp.Click(css(`#sign-out`)),
		chromedp.WaitVisible(css(`#key-input`)),
	)
}
