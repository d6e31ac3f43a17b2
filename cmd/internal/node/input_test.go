package node_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// Bad input gets a clear {code, message} and changes nothing.
func TestBadPushesStoreNothing(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.MaxBody = 64 << 10; c.MaxMutations = 50 })
	h.Org(1)
	w := h.Login("worker1", "phone-1")
	id := newID(t)
	good := map[string]any{"id": 1, "name": "incident.report", "args": nodetest.Report(id)}
	push := func(muts ...any) map[string]any {
		return map[string]any{"clientId": "phone-1", "schemaVersion": 1, "mutations": muts}
	}
	big := strings.Repeat("x", 70<<10)
	many := make([]any, 51)
	for i := range many {
		many[i] = map[string]any{"id": i + 1, "name": "incident.report", "args": nodetest.Report(newID(t))}
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"malformed JSON", []byte(`{"clientId": "phone-1", "mutations": [`), 400, "invalid_json"},
		{"empty body", []byte(``), 400, "invalid_json"},
		{"two JSON values", []byte(`{} {}`), 400, "invalid_json"},
		{"invalid UTF-8", []byte("{\"clientId\": \"phone-1\xff\"}"), 400, "invalid_utf8"},
		{"wrong type", []byte(`{"clientId": 5}`), 400, "invalid_json"},
		{"missing clientId", map[string]any{"schemaVersion": 1, "mutations": []any{good}}, 400, "invalid_request"},
		{"missing mutation id", push(map[string]any{"name": "incident.report", "args": nodetest.Report(id)}), 400, "invalid_request"},
		{"missing mutation name", push(map[string]any{"id": 1, "args": nodetest.Report(id)}), 400, "invalid_request"},
		{"args not an object", push(map[string]any{"id": 1, "name": "incident.report", "args": "x"}), 400, "invalid_request"},
		{"ids not consecutive", push(good, map[string]any{"id": 3, "name": "incident.report", "args": nodetest.Report(newID(t))}), 400, "invalid_request"},
		{"unknown mutation", push(map[string]any{"id": 1, "name": "incident.explode", "args": map[string]any{}}), 422, "unknown_mutation"},
		{"unknown schema version", map[string]any{"clientId": "phone-1", "schemaVersion": 2, "mutations": []any{good}}, 422, "unsupported_schema"},
		{"body over the limit", push(map[string]any{"id": 1, "name": "incident.report", "args": map[string]any{"description": big}}), 413, "too_large"},
		{"too many mutations", push(many...), 413, "too_many_mutations"},
		{"operator in a field", push(map[string]any{"id": 1, "name": "incident.report", "args": map[string]any{"incidentId": map[string]any{"$ne": nil}}}), 200, ""},
		{"gap", push(map[string]any{"id": 5, "name": "incident.report", "args": nodetest.Report(newID(t))}), 409, "mutation_gap"},
	} {
		st, body := w.Raw("POST", "/v1/sync/push", tc.body, nil)
		if tc.status == 200 {
			// Bad arguments are a final rejection of that mutation, not of the queue.
			if st != 200 || !bytes.Contains(body, []byte(`"status":"rejected"`)) || !bytes.Contains(body, []byte(`"invalid_args"`)) {
				t.Errorf("%s: %d %s", tc.name, st, body)
			}
			continue
		}
		wantErr(t, tc.name, st, body, tc.status, tc.code)
		if tc.code == "mutation_gap" && !bytes.Contains(body, []byte(`"lastMutationId":1`)) {
			t.Errorf("gap answer must carry lastMutationId: %s", body)
		}
	}
	if n, _ := h.Node.Incidents.Count(context.Background()); n != 0 {
		t.Errorf("bad pushes stored %d incidents", n)
	}
	// The rejected mutation 1 does not block mutation 2.
	st, r := w.Push([]nodetest.Mutation{{ID: 2, Name: "incident.report", Args: nodetest.Report(id)}})
	if st != 200 || r.Results[0].Status != "applied" || r.LastMutationID != 2 {
		t.Errorf("the next mutation after a rejected one: %d %+v", st, r)
	}
	st, body := w.Raw("POST", "/v1/sync/pull", map[string]any{"clientId": "phone-1", "schemaVersion": 1, "cursor": "%%%"}, nil)
	wantErr(t, "bad cursor", st, body, 400, "invalid_cursor")
}

// A report with invalid arguments is rejected with the fields that are wrong.
func TestReportValidation(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "phone-1")
	cases := []struct {
		name  string
		args  map[string]any
		field string
	}{
		{"no id", map[string]any{"category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}}, "incidentId"},
		{"uuid v4", map[string]any{"incidentId": "5b0a8a4e-3f1c-4c1e-9b1a-2c3d4e5f6a7b", "category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}}, "incidentId"},
		{"unknown category", map[string]any{"incidentId": newID(t), "category": "nope", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}}, "category"},
		{"no description", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "location": map[string]float64{"lat": 39, "lng": 116}}, "description"},
		{"long description", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": strings.Repeat("长", 2001), "location": map[string]float64{"lat": 39, "lng": 116}}, "description"},
		{"no location", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": "x"}, "location"},
		{"bad latitude", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 99, "lng": 116}}, "location"},
		{"bad photo hash", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}, "photos": []string{"../../etc/passwd"}}, "photos"},
		{"bad phone", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}, "requester": map[string]string{"name": "张三", "phone": "12345"}}, "requester.phone"},
		{"grid outside", map[string]any{"incidentId": newID(t), "category": "place.sanitation", "description": "x", "location": map[string]float64{"lat": 39, "lng": 116}, "gridId": nodetest.GridB1}, ""},
	}
	names := make([]string, len(cases))
	args := make([]any, len(cases))
	for i, c := range cases {
		names[i], args[i] = "incident.report", c.args
	}
	st, r := w.Push(w.Queue(names, args))
	if st != 200 || len(r.Results) != len(cases) {
		t.Fatalf("push: %d %s", st, w.LastBody)
	}
	for i, c := range cases {
		res := r.Results[i]
		if res.Status != "rejected" || res.Error == nil {
			t.Errorf("%s: %+v", c.name, res)
			continue
		}
		if c.field == "" {
			if res.Error.Code != "out_of_scope" {
				t.Errorf("%s: code %s, want out_of_scope", c.name, res.Error.Code)
			}
			continue
		}
		if _, ok := res.Error.Fields[c.field]; !ok || res.Error.Code != "invalid_args" {
			t.Errorf("%s: %+v, want a problem with %s", c.name, res.Error, c.field)
		}
	}
	if n, _ := h.Node.Incidents.Count(context.Background()); n != 0 {
		t.Errorf("invalid reports stored %d incidents", n)
	}
}
