package node_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

var update = flag.Bool("update", false, "rewrite the golden files of the wire format")

var (
	rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	// Values that differ on every run: replaced by their name in the golden files.
	volatile = map[string]bool{"accessToken": true, "refreshToken": true, "cursor": true, "deviceId": false}
)

// normalize replaces what differs between runs (times, tokens, cursors) so the rest of
// the wire format can be compared byte for byte.
func normalize(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			out[k] = normalize(val, k)
		}
		return out
	case []any:
		for i := range x {
			x[i] = normalize(x[i], key)
		}
		return x
	case string:
		if volatile[key] {
			return "<" + key + ">"
		}
		if rfc3339.MatchString(x) {
			return "<time>"
		}
	}
	return v
}

// golden compares an answer with testdata/wire/<name>.json (written with -update).
func golden(t *testing.T, name string, status int, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %s", name, body)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"status": status, "body": normalize(v, "")})
	got := buf.Bytes()
	path := filepath.Join("testdata", "wire", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run go test -run TestWireFormat -update to create it)", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the wire format changed (run with -update if on purpose)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The wire format of each handset call, as golden files: a change to a field name or
// shape shows up as a diff here.
func TestWireFormat(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	anon := h.Anon()
	st, body := anon.Raw("POST", "/v1/auth/login", map[string]string{"login": "worker1", "password": nodetest.Password, "deviceId": "phone-g", "platform": "android", "appVersion": "1.0"}, nil)
	golden(t, "login", st, body)
	w := h.Login("worker1", "phone-g")
	st, body = w.Raw("GET", "/v1/me", nil, nil)
	golden(t, "me", st, body)
	st, body = w.Raw("GET", "/v1/categories", nil, nil)
	golden(t, "categories", st, body)
	const id = "019ac4a2-7b3e-7c41-9e2f-5a1b2c3d4e5f"
	report := map[string]any{"incidentId": id, "category": "thing.manhole", "description": "井盖缺失",
		"location": map[string]float64{"lat": 39.9, "lng": 116.4}, "requester": map[string]string{"name": "张三", "phone": "13812345678"}}
	push := func(muts ...any) map[string]any {
		return map[string]any{"clientId": "phone-g", "schemaVersion": 1, "mutations": muts}
	}
	st, body = w.Raw("POST", "/v1/sync/push", push(map[string]any{"id": 1, "name": "incident.report", "args": report}), nil)
	golden(t, "push-applied", st, body)
	st, body = w.Raw("POST", "/v1/sync/push", push(map[string]any{"id": 2, "name": "incident.accept", "args": map[string]string{"incidentId": id}}), nil)
	golden(t, "push-rejected", st, body)
	st, body = w.Raw("POST", "/v1/sync/push", push(map[string]any{"id": 7, "name": "incident.report", "args": report}), nil)
	golden(t, "push-gap", st, body)
	st, body = w.Raw("POST", "/v1/sync/push", push(map[string]any{"id": 3, "name": "incident.fly", "args": map[string]any{}}), nil)
	golden(t, "push-unknown", st, body)
	st, body = w.Raw("POST", "/v1/sync/push", []byte(`{"clientId":`), nil)
	golden(t, "push-malformed", st, body)
	st, body = w.Raw("POST", "/v1/sync/pull", map[string]any{"clientId": "phone-g", "schemaVersion": 1, "cursor": "", "limit": 500}, nil)
	// The units of the org arrive in stream order, which depends on which partition
	// applied first: sort the changes so the file is stable.
	var page map[string]any
	_ = json.Unmarshal(body, &page)
	changes, _ := page["changes"].([]any)
	sort.Slice(changes, func(i, j int) bool {
		a, b := changes[i].(map[string]any), changes[j].(map[string]any)
		return a["collection"].(string)+a["id"].(string) < b["collection"].(string)+b["id"].(string)
	})
	body, _ = json.Marshal(page)
	golden(t, "pull-first", st, body)
	st, body = w.Raw("GET", "/v1/incidents/"+id, nil, nil)
	golden(t, "incident", st, body)
	st, body = anon.Raw("GET", "/v1/me", nil, nil)
	golden(t, "unauthorized", st, body)
}
