package node_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

// routedEvents collects the router's decisions about one incident.
func routedEvents(t *testing.T, h *nodetest.Harness, id string) []incident.Routed {
	t.Helper()
	var out []incident.Routed
	for _, ev := range events(t, h, "incident.routed") {
		var r incident.Routed
		if json.Unmarshal(ev.Data, &r) == nil && r.IncidentID == id {
			out = append(out, r)
		}
	}
	return out
}

// The router passes an item up one level at a time until a level that can resolve
// its category holds it (the capability matrix), and queues an item its owner can
// resolve where it is; each pass is in the history.
func TestRouterPassesUpByCategory(t *testing.T) {
	h, p := startLifecycle(t, nil)
	high := report(t, p.worker, "place.illegal_building") // districts handle it (level 4)
	local := report(t, p.worker, "place.sanitation")      // the community can
	var inc incident.Incident
	waitFor(t, "the router to pass the item up to the district", func() bool {
		inc = getIncident(t, p.district, high)
		return inc.UnitID == nodetest.District
	})
	if inc.Level != 4 || inc.Status != incident.Reported || inc.Escalations != 2 {
		t.Errorf("routed item: level %d status %s escalations %d", inc.Level, inc.Status, inc.Escalations)
	}
	var routes []incident.HistoryEntry
	for _, e := range inc.History {
		if e.Action == "route" {
			routes = append(routes, e)
		}
	}
	if len(routes) != 2 || routes[0].Unit != nodetest.Street || routes[1].Unit != nodetest.District || routes[0].By != "system:router" {
		t.Errorf("route history: %+v", routes)
	}
	var got []incident.Routed
	waitFor(t, "the router's decisions", func() bool {
		got = routedEvents(t, h, high)
		return len(got) == 3
	})
	want := []string{incident.RoutedUp, incident.RoutedUp, incident.RoutedQueue}
	for i, r := range got {
		if r.Decision != want[i] || r.Target != 4 {
			t.Errorf("decision %d: %+v", i, r)
		}
	}
	if got[2].UnitID != nodetest.District {
		t.Errorf("queued at %s", got[2].UnitID)
	}
	waitFor(t, "the local item's decision", func() bool { return len(routedEvents(t, h, local)) == 1 })
	if r := routedEvents(t, h, local)[0]; r.Decision != incident.RoutedQueue || r.UnitID != nodetest.CommunityA {
		t.Errorf("local item: %+v", r)
	}
	if inc := getIncident(t, p.dispatcher, local); inc.Version != 1 || inc.UnitID != nodetest.CommunityA {
		t.Errorf("a queued item is not rewritten: version %d unit %s", inc.Version, inc.UnitID)
	}
	// The district can now accept it; the community dispatcher no longer can.
	if st, code := move(t, p.dispatcher, "accept", map[string]any{"incidentId": high}); code != "forbidden" {
		t.Errorf("community accepts a district item: %s %s", st, code)
	}
	mustMove(t, p.district, "accept", map[string]any{"incidentId": high})
}

// A report of the same category within 50 m and a day of an open item is flagged as
// its likely duplicate; farther away, another category or a closed item is not; the
// router remembers open items across a restart.
func TestDuplicateFlagging(t *testing.T) {
	h := nodetest.StartEmbedded(t, t.TempDir(), nil)
	h.Org(1)
	w := h.Login("worker1", "w1")
	d := h.Login("dispatcher", "desk")
	at := func(lat, lng float64, category string) string {
		id := newID(t)
		args := nodetest.Report(id)
		args["category"], args["location"] = category, map[string]float64{"lat": lat, "lng": lng}
		mustMove(t, w, "report", args)
		return id
	}
	routed := func(id string) incident.Incident {
		t.Helper()
		waitFor(t, "the router's decision", func() bool { return len(routedEvents(t, h, id)) > 0 })
		return getIncident(t, d, id)
	}
	first := at(39.90000, 116.40000, "place.sanitation")
	if inc := routed(first); len(inc.LikelyDuplicateOf) != 0 {
		t.Fatalf("the first report flagged: %v", inc.LikelyDuplicateOf)
	}
	near := at(39.90030, 116.40000, "place.sanitation") // ~33 m north
	if inc := routed(near); len(inc.LikelyDuplicateOf) != 1 || inc.LikelyDuplicateOf[0] != first {
		t.Errorf("a report 33 m away: %v, want [%s]", inc.LikelyDuplicateOf, first)
	}
	if inc := routed(at(39.90000, 116.40070, "place.sanitation")); len(inc.LikelyDuplicateOf) != 0 { // ~60 m east
		t.Errorf("a report 60 m away flagged: %v", inc.LikelyDuplicateOf)
	}
	if inc := routed(at(39.90001, 116.40001, "event.noise")); len(inc.LikelyDuplicateOf) != 0 {
		t.Errorf("another category flagged: %v", inc.LikelyDuplicateOf)
	}
	// After a restart the router still knows the open items.
	h.Restart(nil)
	w = h.Login("worker1", "w1-after")
	d = h.Login("dispatcher", "desk-after")
	if inc := routed(at(39.90010, 116.40010, "place.sanitation")); len(inc.LikelyDuplicateOf) != 2 || inc.LikelyDuplicateOf[0] != first {
		t.Errorf("after a restart: %v, want [%s %s]", inc.LikelyDuplicateOf, first, near)
	}
	// A refused item is no longer open.
	mustMove(t, d, "refuse", map[string]any{"incidentId": first, "reason": "已核实为误报"})
	mustMove(t, d, "refuse", map[string]any{"incidentId": near, "reason": "已核实为误报"})
	waitFor(t, "the router to see the refusals", func() bool { return len(eventsAbout(t, h, near, "incident.refused")) == 1 })
	time.Sleep(200 * time.Millisecond)
	if inc := routed(at(39.90000, 116.40000, "place.sanitation")); len(inc.LikelyDuplicateOf) != 1 {
		t.Errorf("next to refused items: %v, want only the open one", inc.LikelyDuplicateOf)
	}
}
