package node_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/household"
	"github.com/gridkeeper/gridkeeper/services/notify"
)

type dueList struct {
	Visits []household.DueVisit
}

func dueOf(l dueList, id string) *household.DueVisit {
	for i := range l.Visits {
		if l.Visits[i].HouseholdID == id {
			return &l.Visits[i]
		}
	}
	return nil
}

// Visits on a plan per tag, logged offline, due across holidays and make-up workdays:
// weekly for the elderly living alone, monthly for the disabled; a due day that is not
// a working day moves to the end of the next one. Overdue visits are listed per grid
// and announced on a working morning to the grid's worker. Bad visits change nothing.
func TestVisitsDueAndOverdue(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-09-24 10:00").Sub(clock.Now())) // a Thursday
	h, _ := startLifecycle(t, clock)
	w := h.Login("worker1", "phone-v")
	grid := nodetest.GridA(1)
	for id, tags := range map[string]map[string]any{
		"hh-alone":    {"tags": []string{"elderly_alone"}},
		"hh-disabled": {"members": []any{map[string]any{"residentId": "r-d", "name": "刘某", "tags": []string{"disabled"}}}},
		"hh-makeup":   {"tags": []string{"disabled"}},
		"hh-none":     {"tags": []string{"party_member"}},
	} {
		args := map[string]any{"householdId": id, "building": "5号楼", "room": "101"}
		for k, v := range tags {
			args[k] = v
		}
		if st, code := pushOne(t, w, "household.create", args); st != "applied" {
			t.Fatalf("create %s: %s %s", id, st, code)
		}
	}
	visit := func(c *nodetest.Client, args map[string]any) (string, string) {
		if _, ok := args["visitId"]; !ok {
			args["visitId"] = newID(t)
		}
		return pushOne(t, c, "visit.log", args)
	}
	// Logged offline: made on Thursday morning and on the 10th, sent now.
	if st, code := visit(w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:30"), "kind": "routine",
		"note": "老人身体尚好", "location": map[string]float64{"lat": 38.04, "lng": 114.51}}); st != "applied" {
		t.Fatalf("visit: %s %s", st, code)
	}
	if st, code := visit(w, map[string]any{"householdId": "hh-makeup", "visitedAt": shanghai("2026-09-10 15:00")}); st != "applied" {
		t.Fatalf("visit: %s %s", st, code)
	}
	// A visit logged late that is older than the last one leaves the household as is.
	if st, code := visit(w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-20 09:00")}); st != "applied" {
		t.Fatalf("older visit: %s %s", st, code)
	}
	other := h.Login("workerb", "phone-vb")
	handler := h.Login("handler", "phone-vh")
	for _, c := range []struct {
		by   *nodetest.Client
		args map[string]any
		want string
	}{
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-25 10:00")}, "invalid_args"}, // the future
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2025-09-01 10:00")}, "invalid_args"}, // over a year ago
		{w, map[string]any{"householdId": "hh-alone"}, "invalid_args"},
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00"), "kind": "party"}, "invalid_args"},
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00"), "note": strings.Repeat("长", 2001)}, "invalid_args"},
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00"), "residentIds": []string{"r-d"}}, "invalid_args"},
		{w, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00"), "location": map[string]float64{"lat": 91, "lng": 0}}, "invalid_args"},
		{w, map[string]any{"householdId": "hh-nope", "visitedAt": shanghai("2026-09-24 09:00")}, "not_found"},
		{w, map[string]any{"householdId": "$ne", "visitedAt": shanghai("2026-09-24 09:00")}, "invalid_args"},
		{other, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00")}, "not_found"},
		{handler, map[string]any{"householdId": "hh-alone", "visitedAt": shanghai("2026-09-24 09:00")}, "forbidden"},
	} {
		if st, code := visit(c.by, c.args); st != "rejected" || code != c.want {
			t.Errorf("%s logs %v: %s %s, want %s", c.by.Device, c.args, st, code, c.want)
		}
	}
	if got := pulledHousehold(t, w, "hh-alone"); got.LastVisitAt == nil || !got.LastVisitAt.Equal(shanghai("2026-09-24 09:30")) {
		t.Fatalf("last visit on the phone: %v", got.LastVisitAt)
	}
	var l dueList
	if st := w.Do("GET", "/v1/visits/due?unit="+grid, nil, &l); st != 200 {
		t.Fatalf("due: %d %s", st, w.LastBody)
	}
	for id, want := range map[string]time.Time{
		// +7 days is 1 October, National Day: due by the end of Thursday 8 October.
		"hh-alone": shanghai("2026-10-09 00:00"),
		// Created 24 September, never visited, +30 days is Saturday 24 October: due by
		// the end of Monday 26 October.
		"hh-disabled": shanghai("2026-10-27 00:00"),
		// Visited 10 September, +30 days is Saturday 10 October, a make-up workday.
		"hh-makeup": shanghai("2026-10-11 00:00"),
	} {
		d := dueOf(l, id)
		if d == nil || !d.DueAt.Equal(want) || d.Overdue {
			t.Errorf("%s: %+v, want due %v", id, d, want)
		}
	}
	if dueOf(l, "hh-none") != nil || len(l.Visits) != 3 || l.Visits[0].HouseholdID != "hh-alone" {
		t.Errorf("due list: %+v", l.Visits)
	}
	if st, _ := other.Raw("GET", "/v1/visits/due?unit="+grid, nil, nil); st != 403 {
		t.Errorf("another community's worker lists the grid: %d", st)
	}
	if st, _ := w.Raw("GET", "/v1/visits/due?overdue=maybe", nil, nil); st != 400 {
		t.Errorf("overdue=maybe: %d", st)
	}

	clock.Advance(shanghai("2026-10-08 23:00").Sub(clock.Now()))
	w = h.Login("worker1", "phone-v2")
	w.Do("GET", "/v1/visits/due?overdue=true&unit="+grid, nil, &l)
	if len(l.Visits) != 0 {
		t.Errorf("overdue on the evening of the 8th: %+v", l.Visits)
	}
	// Friday 9 October 08:00: the morning announcement.
	clock.Advance(shanghai("2026-10-09 08:00").Sub(clock.Now()) + 30*time.Second)
	w = h.Login("worker1", "phone-v3")
	w.Do("GET", "/v1/visits/due?overdue=true&unit="+grid, nil, &l)
	if len(l.Visits) != 1 || l.Visits[0].HouseholdID != "hh-alone" || !l.Visits[0].Overdue {
		t.Fatalf("overdue on the 9th: %+v", l.Visits)
	}
	if err := household.ScheduleReminder(t.Context(), h.Node.JS, h.Node.Names, "2026-10-09", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the overdue-visit announcement", func() bool { return len(events(t, h, household.OverdueEvent)) == 1 })
	waitFor(t, "worker1 told of the overdue visit", func() bool {
		return slices.ContainsFunc(inbox(t, w), func(n notify.Notification) bool {
			return n.Kind == "visitOverdue" && strings.Contains(n.Body.Zh, "1户")
		})
	})
	// A visit logged now clears it.
	if st, code := visit(w, map[string]any{"householdId": "hh-alone", "visitedAt": clock.Now().Add(-time.Minute), "residentIds": []string{}}); st != "applied" {
		t.Fatalf("visit: %s %s", st, code)
	}
	w.Do("GET", "/v1/visits/due?overdue=true&unit="+grid, nil, &l)
	if len(l.Visits) != 0 {
		t.Errorf("overdue after the visit: %+v", l.Visits)
	}
}
