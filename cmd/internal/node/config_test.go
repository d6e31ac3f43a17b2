package node_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/schemas"
)

// rulesWith returns the shipped rules with the categories' version set and a new
// sub-category of "place" (with its capability row) when add is not "".
func rulesWith(t *testing.T, version int, add string, row []int) map[string]any {
	t.Helper()
	var cats, caps map[string]any
	for name, dst := range map[string]*map[string]any{"categories.json": &cats, "capabilities.json": &caps} {
		data, err := schemas.Files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			t.Fatal(err)
		}
	}
	cats["version"] = version
	if add != "" {
		for _, c := range cats["categories"].([]any) {
			top := c.(map[string]any)
			if top["code"] == "place" {
				top["subcategories"] = append(top["subcategories"].([]any), map[string]any{"code": add,
					"names": map[string]any{"zh": "共享单车乱停放", "en": "Shared bikes parked badly"}, "defaultLevel": 2,
					"special": true, "serviceCode": "L99", "department": "城管"})
			}
		}
		caps["matrix"].(map[string]any)[add] = row
	}
	return map[string]any{"categories": cats, "capabilities": caps}
}

// An admin replaces the categories and capability matrix at run time: the new
// category is listed, reported, routed and given its deadline; bad or stale rules are
// refused and change nothing; the change survives a restart.
func TestRulesChangeWithoutRelease(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(2)
	admin, worker, dispatcher := h.Login("admin", "adm"), h.Login("worker1", "w1"), h.Login("dispatcher", "d1")
	categories := func(c *nodetest.Client) (int, map[string]bool) {
		var r struct {
			Version    int
			Categories []struct {
				Code          string
				Subcategories []struct{ Code string }
			}
		}
		if st := c.Do("GET", "/v1/categories", nil, &r); st != 200 {
			t.Fatalf("categories: %d", st)
		}
		codes := map[string]bool{}
		for _, c := range r.Categories {
			for _, s := range c.Subcategories {
				codes[s.Code] = true
			}
		}
		return r.Version, codes
	}
	const code = "place.bikes"
	for _, c := range []struct {
		name string
		by   *nodetest.Client
		body any
		st   int
		code string
	}{
		{"not an admin", dispatcher, rulesWith(t, 2, code, []int{0, 1, 1, 1, 1}), 403, "forbidden"},
		{"same version", admin, rulesWith(t, 1, code, []int{0, 1, 1, 1, 1}), 409, "stale_version"},
		{"matrix disagrees with defaultLevel", admin, rulesWith(t, 2, code, []int{0, 0, 1, 1, 1}), 422, "invalid_rules"},
		{"no capability row", admin, func() any {
			r := rulesWith(t, 2, code, nil)
			delete(r["capabilities"].(map[string]any)["matrix"].(map[string]any), code)
			return r
		}(), 422, "invalid_rules"},
		{"a category dropped", admin, func() any {
			r := rulesWith(t, 2, "", nil)
			tops := r["categories"].(map[string]any)["categories"].([]any)
			r["categories"].(map[string]any)["categories"] = tops[1:]
			return r
		}(), 422, "invalid_rules"},
		{"only one document", admin, map[string]any{"categories": rulesWith(t, 2, "", nil)["categories"]}, 400, "invalid_rules"},
		{"not JSON", admin, "{", 400, "invalid_json"},
		{"operator injection", admin, map[string]any{"categories": map[string]any{"$where": "1"}, "capabilities": map[string]any{}}, 422, "invalid_rules"},
	} {
		var st int
		var body []byte
		if s, ok := c.body.(string); ok {
			st, body = c.by.Raw("PUT", "/v1/admin/rules", []byte(s), nil)
		} else {
			st, body = c.by.Raw("PUT", "/v1/admin/rules", c.body, nil)
		}
		if st != c.st || !strings.Contains(string(body), c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, body, c.st, c.code)
		}
	}
	if v, codes := categories(worker); v != 1 || codes[code] {
		t.Fatalf("refused rules changed the categories: version %d", v)
	}
	var out struct{ Version, Categories int }
	if st := admin.Do("PUT", "/v1/admin/rules", rulesWith(t, 2, code, []int{0, 1, 1, 1, 1}), &out); st != 200 || out.Version != 2 {
		t.Fatalf("put rules: %d %s", st, admin.LastBody)
	}
	if v, codes := categories(worker); v != 2 || !codes[code] {
		t.Fatalf("after the change: version %d, has %s: %v", v, code, codes[code])
	}
	id := report(t, worker, code)
	mustMove(t, dispatcher, "accept", map[string]any{"incidentId": id})
	inc := getIncident(t, dispatcher, id)
	if !inc.Special || inc.DueAt == nil {
		t.Errorf("an item of the new special category: special %v due %v", inc.Special, inc.DueAt)
	}
	var got map[string]json.RawMessage
	if st := admin.Do("GET", "/v1/admin/rules", nil, &got); st != 200 || !strings.Contains(string(got["categories"]), code) {
		t.Errorf("GET rules: %d", st)
	}

	h.Restart(nil)
	worker = h.Login("worker1", "w1b")
	if v, codes := categories(worker); v != 2 || !codes[code] {
		t.Errorf("after a restart: version %d, has %s: %v", v, code, codes[code])
	}
}

// Visit plans and love-point rates change at run time: the due list and the points an
// activity earns follow at once; a bad document is refused; the change survives a
// restart.
func TestConfigDocsWithoutRelease(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	admin, w, d := h.Login("admin", "adm-c"), h.Login("worker1", "w-c"), h.Login("dispatcher", "d-c")
	if st, code := pushOne(t, w, "household.create", map[string]any{"householdId": "hh-c1", "building": "1号楼", "tags": []string{"elderly_alone"}}); st != "applied" {
		t.Fatalf("create: %s %s", st, code)
	}
	every := func(c *nodetest.Client) int {
		var l dueList
		if st := c.Do("GET", "/v1/visits/due", nil, &l); st != 200 || len(l.Visits) != 1 {
			t.Fatalf("due: %d %s", st, c.LastBody)
		}
		return l.Visits[0].EveryDays
	}
	if got := every(w); got != 7 {
		t.Fatalf("shipped plan: every %d days", got)
	}
	for _, c := range []struct {
		by   *nodetest.Client
		doc  string
		body string
		st   int
	}{
		{admin, "visits", `{"plans": {"elderly_alone": 0}}`, 422},
		{admin, "visits", `{"plans": {"dragons": 3}}`, 422},
		{admin, "visits", `{"plans": `, 400},
		{admin, "nope", `{}`, 404},
		{admin, "points", `{"perHour": -1}`, 422},
		{d, "visits", `{"plans": {"elderly_alone": 3}}`, 403},
	} {
		if st, body := c.by.Raw("PUT", "/v1/admin/config/"+c.doc, []byte(c.body), nil); st != c.st {
			t.Errorf("PUT %s %s by %s: %d %s, want %d", c.doc, c.body, c.by.Device, st, body, c.st)
		}
	}
	if got := every(w); got != 7 {
		t.Errorf("refused documents changed the plan: every %d days", got)
	}
	if st, body := admin.Raw("PUT", "/v1/admin/config/visits", []byte(`{"version": 2, "plans": {"elderly_alone": 3, "disabled": 14}}`), nil); st != 200 {
		t.Fatalf("put visits: %d %s", st, body)
	}
	if st, body := admin.Raw("PUT", "/v1/admin/config/points", []byte(`{"perHour": 10, "kinds": {"elderly_care": 20}}`), nil); st != 200 {
		t.Fatalf("put points: %d %s", st, body)
	}
	if got := every(w); got != 3 {
		t.Errorf("after the change: every %d days", got)
	}
	if st, _ := d.Raw("POST", "/v1/volunteers", map[string]any{"volunteerId": "v-c", "communityId": nodetest.CommunityA, "name": "赵志愿"}, nil); st != 201 {
		t.Fatalf("register: %d", st)
	}
	start := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	if st, code := pushOne(t, w, "volunteer.recordActivity", map[string]any{"activityId": newID(t), "title": "助老", "kind": "elderly_care",
		"startedAt": start, "endedAt": start.Add(2 * time.Hour), "participants": []any{map[string]any{"volunteerId": "v-c", "hours": 2}}}); st != "applied" {
		t.Fatalf("activity: %s %s", st, code)
	}
	var vs struct{ Volunteers []struct{ Balance int } }
	if d.Do("GET", "/v1/volunteers", nil, &vs); len(vs.Volunteers) != 1 || vs.Volunteers[0].Balance != 40 {
		t.Errorf("2 hours at the new rate of 20: %+v", vs.Volunteers)
	}
	h.Restart(nil)
	w = h.Login("worker1", "w-c2")
	if got := every(w); got != 3 {
		t.Errorf("after a restart: every %d days", got)
	}
	var doc map[string]any
	if st := h.Login("admin", "adm-c2").Do("GET", "/v1/admin/config/visits", nil, &doc); st != 200 || doc["version"] != float64(2) {
		t.Errorf("GET visits: %d %v", st, doc)
	}
}
