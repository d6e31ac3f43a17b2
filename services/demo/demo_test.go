package demo

import (
	"testing"

	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/schemas"
)

func calendar(t *testing.T) *workday.Calendar {
	t.Helper()
	c, err := schemas.Calendar()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The demo has the figures of the source text, and the same ids every time (seeding
// again must find the same records).
func TestDemoCityFiguresAndDeterminism(t *testing.T) {
	a, b := build(calendar(t)), build(calendar(t))
	if len(a.incidents) != Incidents || a.incidents[7].ID != b.incidents[7].ID || a.households[100].ID != b.households[100].ID {
		t.Fatal("the demo city must be the same on every build")
	}
	closed, onTime := 0, 0
	for _, inc := range a.incidents {
		if inc.Status == "closed" {
			closed++
			if !inc.Overdue {
				onTime++
			}
		}
	}
	if closed != Resolved {
		t.Errorf("closed: %d, want %d", closed, Resolved)
	}
	if onTime < closed*8/10 || onTime == closed {
		t.Errorf("on time: %d of %d: a plausible year has some late items, most on time", onTime, closed)
	}
	residents, floating, ids := 0, 0, map[string]bool{}
	for _, h := range a.households {
		residents += len(h.Members)
		for _, m := range h.Members {
			if m.Floating {
				floating++
			}
		}
		ids[h.ID] = true
	}
	if len(a.households) != Households || len(ids) != Households || residents != Residents || floating != Floating {
		t.Errorf("households %d (%d ids), residents %d, floating %d", len(a.households), len(ids), residents, floating)
	}
	served := 0
	for _, x := range a.activities {
		served += x.Served
	}
	if len(a.teams) != Teams || len(a.activities) != Activities || served != Served || len(a.organisations) != Organisations {
		t.Errorf("teams %d, activities %d, served %d, organisations %d", len(a.teams), len(a.activities), served, len(a.organisations))
	}
	buildingLeaders := 0
	for _, u := range a.users {
		if u.Roles[0] == "building_leader" {
			buildingLeaders++
		}
	}
	if buildingLeaders != Buildings {
		t.Errorf("building leaders: %d, want %d", buildingLeaders, Buildings)
	}
}
