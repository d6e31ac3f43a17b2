package mobileapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The dashboard is served whole by gridd: the page, its script and style, and Apache
// ECharts exactly as `make web` copied it from the version the lockfile pins; nothing
// in the page points anywhere else, and the browser is told so (CSP).
func TestDashboardAssets(t *testing.T) {
	app := New(Deps{Metrics: prometheus.NewRegistry()}, Options{MaxBody: 1 << 20})
	get := func(path string) (int, map[string]string, []byte) {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		h := map[string]string{}
		for k := range resp.Header {
			h[k] = resp.Header.Get(k)
		}
		return resp.StatusCode, h, body
	}
	if st, h, _ := get("/dashboard"); st != 301 || h["Location"] != "/dashboard/" {
		t.Errorf("/dashboard: %d %v", st, h)
	}
	st, h, page := get("/dashboard/")
	if st != 200 || !strings.Contains(string(page), "<script src=\"app.js\"") ||
		!strings.Contains(h["Content-Security-Policy"], "default-src 'self'") || !strings.Contains(h["Content-Security-Policy"], "connect-src 'self'") {
		t.Fatalf("/dashboard/: %d %v %.200s", st, h, page)
	}
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		_, _, body := get("/dashboard/" + name)
		for _, external := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(string(body), external) {
				t.Errorf("%s refers to %q: everything must come from gridd", name, external)
			}
		}
	}
	st, _, lib := get("/dashboard/echarts.min.js")
	sum := sha256.Sum256(lib)
	want, err := os.ReadFile("dashboard/assets/echarts.min.js.sha256")
	if st != 200 || err != nil || !strings.HasPrefix(string(want), hex.EncodeToString(sum[:])+" ") {
		t.Errorf("echarts.min.js: %d, sha256 %x, recorded %q (%v): run make web", st, sum, want, err)
	}
	var pkg struct{ Dependencies map[string]string }
	var lock struct {
		Packages map[string]struct{ Version, Integrity string }
	}
	p, _ := os.ReadFile("dashboard/package.json")
	l, _ := os.ReadFile("dashboard/package-lock.json")
	if json.Unmarshal(p, &pkg) != nil || json.Unmarshal(l, &lock) != nil {
		t.Fatal("package.json or package-lock.json unreadable")
	}
	e := lock.Packages["node_modules/echarts"]
	if pkg.Dependencies["echarts"] == "" || e.Version != pkg.Dependencies["echarts"] || !strings.HasPrefix(e.Integrity, "sha512-") {
		t.Errorf("echarts pinned %q, locked %+v", pkg.Dependencies["echarts"], e)
	}
	if !strings.Contains(string(lib), "Licensed to the Apache Software Foundation") {
		t.Errorf("echarts.min.js is not the Apache ECharts build")
	}
	if st, _, _ := get("/dashboard/../server.go"); st == 200 {
		t.Errorf("path traversal out of the assets: %d", st)
	}
}
