package mobileapi

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Every route the server registers is documented in schemas/openapi.yaml, with its
// method, and the document is served at /openapi.json.
func TestEveryRouteIsDocumented(t *testing.T) {
	app := New(Deps{Metrics: prometheus.NewRegistry()}, Options{MaxBody: 1 << 20})
	resp, err := app.Test(httptest.NewRequest("GET", "/openapi.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("/openapi.json: %d %.200s", resp.StatusCode, body)
	}
	param := regexp.MustCompile(`:(\w+)`)
	seen := 0
	for _, r := range app.GetRoutes(true) {
		if r.Method == "HEAD" && r.Path != "/v1/attachments/:sha256" {
			continue // fiber adds HEAD to every GET
		}
		path := param.ReplaceAllString(r.Path, "{$1}")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s %s is not in openapi.yaml", r.Method, path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s: openapi.yaml documents the path but not the method", r.Method, path)
		}
		seen++
	}
	if seen < 15 {
		t.Errorf("only %d routes checked", seen)
	}
}
