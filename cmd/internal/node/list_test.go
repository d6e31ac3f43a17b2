package node_test

import (
	"net/url"
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

// The dispatcher's list: the caller's subtree only, filters, sort, paging with a
// cursor, personal data masked, and clear errors for bad queries.
func TestIncidentList(t *testing.T) {
	h, p := startLifecycle(t, nil)
	wb := h.Login("workerb", "wb")
	var mine []string
	for i := 0; i < 5; i++ {
		mine = append(mine, report(t, p.worker, "place.sanitation"))
	}
	noise := report(t, p.worker, "event.noise")
	other := report(t, wb, "place.sanitation") // community B
	mustMove(t, p.dispatcher, "accept", map[string]any{"incidentId": mine[0]})
	list := func(c *nodetest.Client, q url.Values) (int, incident.ListPage) {
		var page incident.ListPage
		st := c.Do("GET", "/v1/incidents?"+q.Encode(), nil, &page)
		return st, page
	}
	ids := func(p incident.ListPage) map[string]bool {
		out := map[string]bool{}
		for _, i := range p.Items {
			out[i.ID] = true
		}
		return out
	}
	// Scope: the community's dispatcher sees its 6, not community B's.
	st, all := list(p.dispatcher, url.Values{"limit": {"100"}})
	if st != 200 || len(all.Items) != 6 || ids(all)[other] {
		t.Fatalf("dispatcher's list: %d, %d items, other community's included: %v", st, len(all.Items), ids(all)[other])
	}
	if r := all.Items[0].Requester; r != nil && r.Phone != "138****5678" {
		t.Errorf("requester phone not masked: %+v", r)
	}
	// The street sees both communities; and may narrow to one.
	if _, page := list(p.street, url.Values{"limit": {"100"}}); len(page.Items) != 7 {
		t.Errorf("street sees %d, want 7", len(page.Items))
	}
	if _, page := list(p.street, url.Values{"unit": {nodetest.CommunityB}}); len(page.Items) != 1 || !ids(page)[other] {
		t.Errorf("street narrowed to B: %d items", len(page.Items))
	}
	// Filters.
	if _, page := list(p.dispatcher, url.Values{"status": {"accepted"}}); len(page.Items) != 1 || page.Items[0].ID != mine[0] {
		t.Errorf("status=accepted: %+v", ids(page))
	}
	if _, page := list(p.dispatcher, url.Values{"category": {"event"}}); len(page.Items) != 1 || page.Items[0].ID != noise {
		t.Errorf("category=event: %+v", ids(page))
	}
	if _, page := list(p.dispatcher, url.Values{"category": {"place.sanitation"}, "overdue": {"false"}, "level": {"2"}}); len(page.Items) != 5 {
		t.Errorf("category+overdue+level: %d items", len(page.Items))
	}
	// Paging, oldest first: every item exactly once, in order.
	seen := map[string]int{}
	var order []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"4"}, "sort": {"createdAt"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		st, page := list(p.dispatcher, q)
		if st != 200 || pages > 3 {
			t.Fatalf("page %d: %d", pages, st)
		}
		for _, i := range page.Items {
			seen[i.ID]++
			order = append(order, i.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 6 || order[0] != mine[0] || order[5] != noise {
		t.Errorf("paging: %d distinct, order %v", len(seen), order)
	}
	// Out of scope and bad queries.
	if st, _ := list(p.dispatcher, url.Values{"unit": {nodetest.CommunityB}}); st != 403 {
		t.Errorf("another community's list: %d, want 403", st)
	}
	for _, q := range []url.Values{{"status": {"open"}}, {"level": {"9"}}, {"level": {"x"}}, {"limit": {"1000"}}, {"sort": {"name"}},
		{"overdue": {"maybe"}}, {"cursor": {"!!"}}, {"unit": {"12"}}, {"category": {"$ne"}}, {"unit": {`^.*`}}} {
		if st, _ := list(p.dispatcher, q); st != 400 {
			t.Errorf("%v: %d, want 400", q, st)
		}
	}
	if st, _ := h.Anon().Raw("GET", "/v1/incidents", nil, nil); st != 401 {
		t.Errorf("anonymous list: %d", st)
	}
}
