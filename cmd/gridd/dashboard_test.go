package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gridkeeper/gridkeeper/services/stats"
)

// chromium finds the headless browser (Debian's `chromium`, which `make test`
// installs when it is missing). Without one the test fails: it proves the page works.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run `make test-deps` (apt-get install chromium)")
	return ""
}

// The dashboard in a real browser against `go run ./cmd/gridd`'s demo city: log in as
// the district leader, see the source text's 469 of 476, drill down street →
// community → grid by the ranking and the map, come back by the breadcrumbs, and see
// the figures move by themselves when an item is closed on a handset. Screenshots are
// saved as the test's artifacts (go test -artifacts -outputdir DIR).
func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	base, stop := startGridd(t, t.TempDir(), nil)
	defer stop()
	out := t.ArtifactDir()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1440, 1100), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()

	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(expr string) string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // the first start projects the demo year
		for {
			got := text(sel)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s shows %q, want %q", sel, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(out, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KB)", path, len(png)/1024)
	}

	start := time.Now()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login"), "district"),
		chromedp.SendKeys(chromedp.CSS("#password"), "gridkeeper"),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#main")),
	); err != nil {
		t.Fatalf("log in: %v", err)
	}
	waitText("#headline-resolved", "469 / 476")
	t.Logf("logged in and showing 469 / 476 after %v", time.Since(start).Round(time.Millisecond))
	if got := text("#unit-name"); got != "城关区" {
		t.Errorf("unit: %q", got)
	}
	// The period is the server's default, shown in the date fields.
	if from, to := stats.DefaultPeriod(time.Now()); eval(`document.getElementById('from').value + ' ' + document.getElementById('to').value`) != from+" "+to {
		t.Errorf("period fields: %s, want %s to %s", eval(`document.getElementById('from').value + ' ' + document.getElementById('to').value`), from, to)
	}
	if got := text("#headline-closure"); got != "99.4%" {
		t.Errorf("closure rate: %q", got)
	}
	// The charts drew (ECharts served by gridd) and the map has the five grids.
	canvases := eval(`String(document.querySelectorAll('#trend-chart canvas, #category-chart canvas').length)`)
	grids := eval(`String(document.querySelectorAll('#map path').length)`)
	if canvases != "2" || grids != "5" {
		t.Errorf("charts %s, grids on the map %s", canvases, grids)
	}
	shot("dashboard-district.png")

	// Drill down: the street from the ranking, the community, then grid 3 on the map.
	for _, step := range []struct{ click, unit string }{
		{"#ranking tbody tr[data-unit='990102001']", "南关街道"},
		{"#ranking tbody tr[data-unit='990102001001']", "大同社区"},
		{"#map path[data-unit='990102001001003']", "大同社区第3网格"},
	} {
		click(step.click)
		waitText("#unit-name", step.unit)
	}
	rankingHidden := eval(`String(document.getElementById('ranking-empty').classList.contains('hidden'))`)
	gridReported := text("#headline-resolved")
	if rankingHidden != "false" || !strings.Contains(gridReported, " / ") {
		t.Errorf("grid view: no-children note hidden %s, headline %q", rankingHidden, gridReported)
	}
	t.Logf("grid 3: %s", gridReported)
	shot("dashboard-grid.png")

	// Back to the district by the breadcrumbs.
	click("#crumbs a[data-unit='990102']")
	waitText("#headline-resolved", "469 / 476")

	// Live: an open item is closed on handsets; the page follows without a reload.
	dispatcher := demoLogin(t, base, "dispatcher")
	var list struct {
		Items []struct{ ID, GridID string }
	}
	if st := call(t, "GET", base+"/v1/incidents?status=accepted", dispatcher.token, nil, &list); st != 200 || len(list.Items) == 0 {
		t.Fatalf("open accepted items: %d %+v", st, list)
	}
	id, grid := list.Items[0].ID, list.Items[0].GridID
	login := "worker" + grid[len(grid)-1:]
	worker := demoLogin(t, base, login)
	dispatcher.must("assign", id, "assigneeId", login)
	worker.must("start", id)
	worker.must("resolve", id, "result", "已处置")
	moved := time.Now()
	dispatcher.must("verify", id)
	waitText("#headline-resolved", "470 / 476")
	t.Logf("the page showed 470 / 476 %v after the item closed", time.Since(moved).Round(time.Millisecond))

	// English.
	click("#lang")
	waitText("header h1", "Grid management · Dashboard")
	shot("dashboard-district-en.png")
}
