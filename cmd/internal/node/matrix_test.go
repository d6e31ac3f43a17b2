package node_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// access is what a route's authorization rule is.
type access int

const (
	public    access = iota // no token needed
	signedIn                // any signed-in user; what they reach is scoped by the record or their home unit
	adminOnly               // the admin role (under /v1/admin)
	unitScope               // a query parameter names a unit of the caller's subtree (scopeParam)
)

// Roles that may call a unit-scoped route (nil: every signed-in role).
var (
	reportRoles = []string{org.RoleDiscipline, org.RoleLeader, org.RoleSupervisor, org.RoleAdmin}
	exportRoles = append([]string{org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader, org.RoleAdmin}, org.GridRoles...)
	pointsRoles = append([]string{org.RoleDispatcher, org.RoleSupervisor, org.RoleLeader, org.RoleAdmin, org.RoleHandler}, org.GridRoles...)
)

// routeRules is the authorization rule of every route. A route missing here fails
// TestAuthorizationMatrix: a new route must say who may call it.
var routeRules = map[string]struct {
	rule       access
	scopeParam string   // for unitScope: the query parameter naming the unit
	roles      []string // for unitScope: the roles allowed (nil: any signed-in user)
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
	"GET /v1/incidents":             {rule: unitScope, scopeParam: "unit"},
	"GET /v1/reports/refusals":      {rule: unitScope, scopeParam: "unit", roles: reportRoles},
	"GET /v1/access-log":            {rule: unitScope, scopeParam: "unit", roles: []string{org.RoleDiscipline}},
	"GET /v1/visits/due":            {rule: unitScope, scopeParam: "unit"},
	"GET /v1/stats":                 {rule: unitScope, scopeParam: "unit"},
	"GET /v1/stats/events":          {rule: unitScope, scopeParam: "unit"},
	"GET /v1/export/households.csv": {rule: unitScope, scopeParam: "unit", roles: exportRoles},
	"GET /v1/export/visits.csv":     {rule: unitScope, scopeParam: "unit", roles: exportRoles},
	"GET /v1/export/points.csv":     {rule: unitScope, scopeParam: "community", roles: pointsRoles},
	"GET /v1/volunteers":            {rule: unitScope, scopeParam: "community", roles: pointsRoles},
	"GET /v1/supermarket":           {rule: unitScope, scopeParam: "community", roles: pointsRoles},
}

// The authorization matrix, generated from the route table: every route has a rule
// above; without a token every route but the public ones answers 401; every admin
// route refuses every fixture role but admin; and every route scoped by a unit is
// called by every fixture login (nine, from a grid worker to the city and the admin)
// at every unit of the tree around it — its own unit, its parent and the levels
// above, a sibling, its children and grandchildren, units that do not exist: 200
// exactly when the role may call the route and the unit is in the caller's subtree
// (403 otherwise; 404 from the figures for a unit that does not exist). A caller above
// a grid also finds an item reported in that grid in its incident list (a city's
// code is no prefix of its districts': found by this test). Role rules inside the
// signed-in routes (who may read a household in clear, answer a complaint, stock the
// supermarket…) are tested with each capability.
func TestAuthorizationMatrix(t *testing.T) {
	h, p := startLifecycle(t, nil)
	admin := h.Login("admin", "adm")
	type caller struct {
		c     *nodetest.Client
		home  string
		roles []string
	}
	callers := map[string]caller{}
	for _, u := range nodetest.Users(2) {
		if u.Login == "worker2" || u.Login == "workerb" {
			continue // like worker1
		}
		c := map[string]*nodetest.Client{"worker1": p.worker, "dispatcher": p.dispatcher, "handler": p.handler, "street": p.street,
			"district": p.district, "city": p.city, "dispatcherb": p.other, "discipline": p.discipline, "admin": admin}[u.Login]
		callers[u.Login] = caller{c, u.Unit, u.Roles}
	}
	exists := []string{nodetest.City, nodetest.District, nodetest.Street, nodetest.CommunityA, nodetest.CommunityB,
		nodetest.GridA(1), nodetest.GridB1}
	absent := []string{"110105002", "110106", "110105001003", "110105001001009"}
	item := report(t, p.worker, "place.sanitation") // in grid A1
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
			for name, c := range callers {
				if name == "admin" {
					continue
				}
				if st, _ := c.c.Raw(r.Method, path, []byte(`{}`), nil); st != 403 {
					t.Errorf("%s by %s (not an admin): %d, want 403", key, name, st)
				}
			}
		case unitScope:
			if r.Path == "/v1/stats/events" {
				continue // a stream: its scope is checked before it opens, like /v1/stats (TestStatsLiveScopedAndRebuilt)
			}
			units := append(slices.Clone(exists), absent...)
			if rule.scopeParam == "community" {
				units = []string{nodetest.CommunityA, nodetest.CommunityB, "110105001003"} // anything else is 400: not a community
			}
			for name, who := range callers {
				roleOK := rule.roles == nil || slices.ContainsFunc(who.roles, func(r string) bool { return slices.Contains(rule.roles, r) })
				for _, unit := range units {
					inScope := org.Contains(who.home, unit) || (rule.scopeParam == "community" && unit == org.CommunityOf(who.home))
					want := 403
					switch {
					case roleOK && inScope && r.Path == "/v1/stats" && slices.Contains(absent, unit):
						want = 404
					case roleOK && inScope:
						want = 200
					}
					st, body := who.c.Raw(r.Method, path+"?"+rule.scopeParam+"="+unit, nil, nil)
					if st != want {
						t.Errorf("%s?%s=%s by %s (%v at %s): %d, want %d %.160s", key, rule.scopeParam, unit, name, who.roles, who.home, st, want, body)
					}
				}
			}
		}
	}
	for key := range routeRules {
		if !seen[key] {
			t.Errorf("routeRules names %s, which is not a route", key)
		}
	}
	// Child scope with data: everyone whose subtree holds grid A1 finds the item in
	// the list of its own unit; the others do not.
	for name, who := range callers {
		var page struct{ Items []struct{ ID string } }
		if st := who.c.Do("GET", "/v1/incidents", nil, &page); st != 200 {
			t.Errorf("%s lists its unit: %d", name, st)
			continue
		}
		found := slices.ContainsFunc(page.Items, func(it struct{ ID string }) bool { return it.ID == item })
		if want := org.Contains(who.home, nodetest.GridA(1)); found != want {
			t.Errorf("%s (at %s) lists the item of grid A1: %v, want %v", name, who.home, found, want)
		}
	}
}
