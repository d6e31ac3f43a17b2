package node_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// access is what a route's authorization rule is.
type access int

const (
	public    access = iota // no token needed
	signedIn                // any signed-in user; what they reach is scoped by the record or their home unit
	adminOnly               // the admin role (under /v1/admin)
	unitScope               // a query parameter names a unit of the caller's subtree (scopeParam)
)

// routeRules is the authorization rule of every route. A route missing here fails
// TestAuthorizationMatrix: a new route must say who may call it.
var routeRules = map[string]struct {
	rule       access
	scopeParam string // for unitScope: the query parameter naming the unit
	scopeRole  string // for unitScope: a fixture login allowed the route at its own unit
}{
	"GET /healthz": {rule: public}, "GET /readyz": {rule: public}, "GET /openapi.json": {rule: public}, "GET /metrics": {rule: public},
	"GET /dashboard":      {rule: public},
	"POST /v1/auth/login": {rule: public}, "POST /v1/auth/refresh": {rule: public},
	"POST /v1/auth/logout": {rule: signedIn}, "GET /v1/me": {rule: signedIn},
	"GET /v1/me/preferences": {rule: signedIn}, "PUT /v1/me/preferences": {rule: signedIn},
	"GET /v1/notifications": {rule: signedIn}, "PUT /v1/devices/:deviceId": {rule: signedIn},
	"POST /v1/sync/push": {rule: signedIn}, "POST /v1/sync/pull": {rule: signedIn}, "GET /v1/sync/events": {rule: signedIn},
	"GET /v1/categories": {rule: signedIn}, "GET /v1/incidents/:id": {rule: signedIn}, "GET /v1/complaints": {rule: signedIn},
	"GET /v1/units": {rule: signedIn}, "GET /v1/conflicts": {rule: signedIn}, "GET /v1/households/:id/personal": {rule: signedIn},
	"POST /v1/volunteers": {rule: signedIn}, "POST /v1/teams": {rule: signedIn}, "GET /v1/volunteers/:id/points": {rule: signedIn},
	"PUT /v1/supermarket/:itemId": {rule: signedIn}, "POST /v1/supermarket/redemptions": {rule: signedIn},
	"PUT /v1/attachments/:sha256": {rule: signedIn}, "HEAD /v1/attachments/:sha256": {rule: signedIn},
	"PATCH /v1/attachments/:sha256": {rule: signedIn}, "GET /v1/attachments/:sha256": {rule: signedIn},
	"GET /v1/incidents":             {rule: unitScope, scopeParam: "unit", scopeRole: "dispatcher"},
	"GET /v1/reports/refusals":      {rule: unitScope, scopeParam: "unit", scopeRole: "street"},
	"GET /v1/access-log":            {rule: unitScope, scopeParam: "unit", scopeRole: "discipline"},
	"GET /v1/visits/due":            {rule: unitScope, scopeParam: "unit", scopeRole: "dispatcher"},
	"GET /v1/stats":                 {rule: unitScope, scopeParam: "unit", scopeRole: "street"},
	"GET /v1/stats/events":          {rule: unitScope, scopeParam: "unit", scopeRole: "street"},
	"GET /v1/export/households.csv": {rule: unitScope, scopeParam: "unit", scopeRole: "dispatcher"},
	"GET /v1/export/visits.csv":     {rule: unitScope, scopeParam: "unit", scopeRole: "dispatcher"},
	"GET /v1/export/points.csv":     {rule: unitScope, scopeParam: "community", scopeRole: "dispatcher"},
	"GET /v1/volunteers":            {rule: unitScope, scopeParam: "community", scopeRole: "dispatcher"},
	"GET /v1/supermarket":           {rule: unitScope, scopeParam: "community", scopeRole: "dispatcher"},
}

// The authorization matrix, generated from the route table: every route has a rule
// above; without a token every route but the public ones answers 401; every admin
// route refuses every fixture role but admin; and every route scoped by a unit answers
// a caller at its own unit and refuses the parent unit and a sibling (403 or 404).
// Role rules inside the signed-in routes (who may read a household in clear, answer a
// complaint, stock the supermarket…) are tested with each capability.
func TestAuthorizationMatrix(t *testing.T) {
	h, p := startLifecycle(t, nil)
	logins := map[string]*nodetest.Client{"worker1": p.worker, "dispatcher": p.dispatcher, "handler": p.handler, "street": p.street,
		"district": p.district, "city": p.city, "dispatcherb": p.other, "discipline": p.discipline}
	// The unit of each fixture login, its parent and a sibling at the same level.
	home := map[string][3]string{
		"dispatcher": {nodetest.CommunityA, nodetest.Street, nodetest.CommunityB},
		"street":     {nodetest.Street, nodetest.District, "110105002"},
		"discipline": {nodetest.District, nodetest.City, "110106"},
	}
	param := regexp.MustCompile(`:(\w+)`)
	seen := map[string]bool{}
	for _, r := range h.Node.App.GetRoutes(true) {
		key := r.Method + " " + r.Path
		if r.Method == "HEAD" && !strings.HasPrefix(r.Path, "/v1/attachments") {
			continue // fiber adds HEAD to every GET
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		rule, ok := routeRules[key]
		if !ok && strings.HasPrefix(r.Path, "/v1/admin/") {
			rule.rule, ok = adminOnly, true
		}
		if !ok {
			t.Errorf("route %s has no authorization rule in routeRules", key)
			continue
		}
		path := param.ReplaceAllString(r.Path, "x1")
		if rule.rule != public {
			if st, _ := h.Anon().Raw(r.Method, path, []byte(`{}`), nil); st != 401 {
				t.Errorf("%s without a token: %d, want 401", key, st)
			}
		}
		switch rule.rule {
		case adminOnly:
			for name, c := range logins {
				if st, _ := c.Raw(r.Method, path, []byte(`{}`), nil); st != 403 {
					t.Errorf("%s by %s (not an admin): %d, want 403", key, name, st)
				}
			}
		case unitScope:
			c, units := logins[rule.scopeRole], home[rule.scopeRole]
			q := func(unit string) string { return path + "?" + rule.scopeParam + "=" + unit }
			own := units[0]
			if rule.scopeParam == "community" && own != nodetest.CommunityA {
				t.Fatalf("%s: community-scoped routes are tried by a community role", key)
			}
			if r.Path == "/v1/stats/events" {
				continue // a stream: its scope is checked before it opens, like /v1/stats (TestStatsLiveScopedAndRebuilt)
			}
			if st, body := c.Raw(r.Method, q(own), nil, nil); st != 200 {
				t.Errorf("%s by %s at its own unit %s: %d %.200s", key, rule.scopeRole, own, st, body)
			}
			others := units[1:]
			if rule.scopeParam == "community" {
				others = units[2:] // the parent is no community: 400 invalid, not a scope question
			}
			for _, other := range others {
				if st, _ := c.Raw(r.Method, q(other), nil, nil); st != 403 && st != 404 {
					t.Errorf("%s by %s at %s (outside its subtree): %d, want 403", key, rule.scopeRole, other, st)
				}
			}
		}
	}
	for key := range routeRules {
		if !seen[key] {
			t.Errorf("routeRules names %s, which is not a route", key)
		}
	}
}
