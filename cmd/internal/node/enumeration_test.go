package node_test

import (
	"testing"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// Ids of another area cannot be told from ids that do not exist: a grid worker of
// community A asking for community B's incident, household or volunteer gets the very
// answer an unknown id gets — status, code and message — so guessing ids reveals
// nothing.
func TestIDEnumerationAcrossScopes(t *testing.T) {
	h, p := startLifecycle(t, nil)
	wb := h.Login("workerb", "wb-enum")
	db := h.Login("dispatcherb", "desk-b-enum")
	inc := report(t, wb, "place.sanitation")
	if st, code := pushOne(t, wb, "household.create", map[string]any{"householdId": "hh-b-enum", "building": "9号楼"}); st != "applied" {
		t.Fatalf("household: %s %s", st, code)
	}
	if st, body := db.Raw("POST", "/v1/volunteers", map[string]any{"volunteerId": "v-b-enum", "communityId": nodetest.CommunityB, "name": "赵志愿"}, nil); st != 201 {
		t.Fatalf("volunteer: %d %s", st, body)
	}
	for _, c := range []struct{ what, theirs, none string }{
		{"incident", "/v1/incidents/" + inc, "/v1/incidents/" + newID(t)},
		{"household in clear", "/v1/households/hh-b-enum/personal?reason=走访核实", "/v1/households/hh-nobody/personal?reason=走访核实"},
		{"volunteer ledger", "/v1/volunteers/v-b-enum/points", "/v1/volunteers/v-nobody/points"},
	} {
		st1, b1 := p.worker.Raw("GET", c.theirs, nil, nil)
		st2, b2 := p.worker.Raw("GET", c.none, nil, nil)
		var e1, e2 errBody
		_ = jsonUnmarshal(b1, &e1)
		_ = jsonUnmarshal(b2, &e2)
		if st1 < 400 || st1 != st2 || e1.Code != e2.Code || e1.Message != e2.Message {
			t.Errorf("%s: another area's id answers %d %s, an unknown id %d %s", c.what, st1, b1, st2, b2)
		}
		// Their own side sees it.
		owner := wb
		if c.what == "volunteer ledger" {
			owner = db
		}
		if st, body := owner.Raw("GET", c.theirs, nil, nil); st != 200 {
			t.Errorf("%s as its own area: %d %s", c.what, st, body)
		}
	}
}
