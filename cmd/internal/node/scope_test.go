package node_test

import (
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
)

// A worker moved to another grid: its next pull streams the new grid in and tells it
// to purge the old one (no reset), and what it queued before the move is judged by the
// grid it had then.
func TestReassignmentMovesTheScope(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(2)
	w1 := h.Login("worker1", "phone-1")
	w2 := h.Login("worker2", "phone-2")
	x, y := newID(t), newID(t)
	w1.Push(w1.Queue([]string{"incident.report"}, []any{nodetest.Report(x)}))
	w2.Push(w2.Queue([]string{"incident.report"}, []any{nodetest.Report(y)}))
	seen := map[string]bool{}
	cursor := ""
	for {
		_, p := w1.Pull(cursor, 100)
		for _, c := range p.Changes {
			seen[c.ID] = true
		}
		cursor = p.Cursor
		if !p.HasMore {
			break
		}
	}
	if !seen[x] || seen[y] {
		t.Fatalf("before the move worker1 sees its grid only: x=%v y=%v", seen[x], seen[y])
	}
	queuedBefore := time.Now().Add(-time.Second)

	admin := h.Login("admin", "web-admin")
	if st := admin.Do("POST", "/v1/admin/users/worker1/move", map[string]string{"unitId": nodetest.GridA(2)}, nil); st != 200 {
		t.Fatalf("move: %d %s", st, admin.LastBody)
	}
	st, p := w1.Pull(cursor, 100)
	if st != 200 || p.Reset {
		t.Fatalf("pull after the move: %d reset=%v", st, p.Reset)
	}
	scopes := map[string]string{}
	for _, s := range p.Scopes {
		scopes[s.Scope] = s.Status
	}
	if scopes["grid:"+nodetest.GridA(2)] != "active" || scopes["grid:"+nodetest.GridA(1)] != "removed" {
		t.Errorf("scopes after the move: %v", scopes)
	}
	got := map[string]bool{}
	for {
		for _, c := range p.Changes {
			got[c.ID] = true
		}
		if !p.HasMore {
			break
		}
		_, p = w1.Pull(p.Cursor, 100)
	}
	if !got[y] || got[x] {
		t.Errorf("after the move worker1 pulls grid A2 (y=%v) and not A1 (x=%v)", got[y], got[x])
	}

	// A report queued before the move lands in the old grid; one made after, in the new.
	before, after := newID(t), newID(t)
	st, r := w1.Push([]nodetest.Mutation{
		{ID: 2, Name: "incident.report", Args: nodetest.Report(before), ClientTime: &queuedBefore},
		{ID: 3, Name: "incident.report", Args: nodetest.Report(after)},
	})
	if st != 200 || r.Results[0].Status != "applied" || r.Results[1].Status != "applied" {
		t.Fatalf("push after the move: %d %+v", st, r)
	}
	for id, grid := range map[string]string{before: nodetest.GridA(1), after: nodetest.GridA(2)} {
		var inc struct{ GridID string }
		admin.Do("GET", "/v1/incidents/"+id, nil, &inc)
		if inc.GridID != grid {
			t.Errorf("incident %s in grid %q, want %s", id, inc.GridID, grid)
		}
	}
	// Moving is for admins of both units only.
	disp := h.Login("dispatcherb", "web-b")
	st, body := disp.Raw("POST", "/v1/admin/users/worker2/move", map[string]string{"unitId": nodetest.GridB1}, nil)
	wantErr(t, "a dispatcher moving a worker", st, body, 403, "forbidden")
	st, body = admin.Raw("POST", "/v1/admin/users/nobody/move", map[string]string{"unitId": nodetest.GridB1}, nil)
	wantErr(t, "moving an unknown user", st, body, 404, "not_found")
	st, body = admin.Raw("POST", "/v1/admin/users/worker2/move", map[string]string{"unitId": "110105001001099"}, nil)
	wantErr(t, "moving to a unit that does not exist", st, body, 409, "no_unit")
}
