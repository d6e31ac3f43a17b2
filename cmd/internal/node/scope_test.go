package node_test

import (
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
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

// A cursor older than the tombstone horizon gets reset: true (deletes it may have
// missed are gone), and the client starts over; a version the server does not serve
// also resets.
func TestHorizonAndSchemaReset(t *testing.T) {
	clock := nodetest.NewClock()
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) { o.Now = clock.Now; c.AccessTTL = 24 * time.Hour * 60 })
	h.Org(1)
	w := h.Login("worker1", "p1")
	_, p := w.Pull("", 100)
	if p.Reset || p.Cursor == "" {
		t.Fatalf("first pull: %+v", p)
	}
	clock.Advance(h.Cfg.TombstoneHoriz - time.Hour)
	if _, p2 := w.Pull(p.Cursor, 100); p2.Reset {
		t.Error("a cursor inside the horizon must not reset")
	}
	clock.Advance(2 * time.Hour)
	if _, p3 := w.Pull(p.Cursor, 100); !p3.Reset || len(p3.Changes) != 0 {
		t.Errorf("a cursor older than the horizon: reset=%v, %d changes", p3.Reset, len(p3.Changes))
	}
	var old nodetest.PullPage
	w.Do("POST", "/v1/sync/pull", map[string]any{"clientId": "p1", "schemaVersion": 0, "cursor": ""}, &old)
	if !old.Reset || len(old.Changes) != 0 {
		t.Errorf("an old schema version: reset=%v, %d changes", old.Reset, len(old.Changes))
	}
}

// A first sync interrupted at any page boundary (the answer to page k lost, so the
// client still holds the cursor of page k-1) resumes without losing or doubling a
// record.
func TestFirstSyncResumesAtEveryPage(t *testing.T) {
	h := nodetest.Start(t, nil)
	h.Org(1)
	w := h.Login("worker1", "seed")
	var ids []string
	for i := 0; i < 45; i++ {
		ids = append(ids, newID(t))
	}
	args := make([]any, len(ids))
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i], args[i] = "incident.report", nodetest.Report(id)
	}
	w.Push(w.Queue(names, args))
	const limit = 10
	full := func(c *nodetest.Client, loseAt int) map[string]int {
		seen := map[string]int{}
		cursor := ""
		for page := 1; ; page++ {
			_, p := c.Pull(cursor, limit)
			if page == loseAt {
				continue // the answer was lost: same cursor again
			}
			for _, ch := range p.Changes {
				seen[ch.ID]++
			}
			cursor = p.Cursor
			if !p.HasMore {
				return seen
			}
		}
	}
	clean := full(h.Login("worker1", "clean"), 0)
	for loseAt := 1; loseAt <= len(clean)/limit+1; loseAt++ {
		got := full(h.Login("worker1", "resume"), loseAt)
		if len(got) != len(clean) {
			t.Errorf("lost at page %d: %d records, want %d", loseAt, len(got), len(clean))
		}
		for id, n := range got {
			if n != 1 || clean[id] != 1 {
				t.Errorf("lost at page %d: %s seen %d times", loseAt, id, n)
			}
		}
	}
	for _, id := range ids {
		if clean[id] != 1 {
			t.Errorf("incident %s missing from the first sync", id)
		}
	}
}

// Ids are made on handsets: a second community reusing an id another community's
// record has gets it refused, and the record stays untouched.
func TestRecordIDsAreClaimedOnce(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.Preload = "on" })
	h.Org(1)
	a, b := h.Login("worker1", "phone-a"), h.Login("workerb", "phone-b")
	id := newID(t)
	if _, r := a.Push(a.Queue([]string{"incident.report"}, []any{nodetest.Report(id)})); r.Results[0].Status != "applied" {
		t.Fatalf("first report: %+v", r.Results)
	}
	other := nodetest.Report(id)
	other["description"] = "overwritten?"
	_, r := b.Push(b.Queue([]string{"incident.report"}, []any{other}))
	if r.Results[0].Status != "rejected" || r.Results[0].Error == nil || r.Results[0].Error.Code == "" {
		t.Errorf("a report reusing another community's id: %+v", r.Results[0])
	}
	var inc struct{ Description, GridID string }
	h.Login("dispatcher", "d").Do("GET", "/v1/incidents/"+id, nil, &inc)
	if inc.Description == "overwritten?" || inc.GridID != nodetest.GridA(1) {
		t.Errorf("the first community's incident changed: %+v", inc)
	}
	hh := map[string]any{"householdId": "hh-shared", "address": "甲"}
	if _, r := a.Push(a.Queue([]string{"household.create"}, []any{hh})); r.Results[0].Status != "applied" {
		t.Fatalf("household: %+v", r.Results)
	}
	hh["address"] = "乙"
	if _, r := b.Push(b.Queue([]string{"household.create"}, []any{hh})); r.Results[0].Status != "rejected" {
		t.Errorf("a household reusing another community's id: %+v", r.Results[0])
	}
}

// A handset's clock is believed only within GRID_MAX_OFFLINE: a clientTime from long
// before cannot keep the unit its author left more than that ago.
func TestBackdatedMutationsCannotKeepOldRights(t *testing.T) {
	clock := nodetest.NewClock()
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
		o.Now = clock.Now
		c.MaxOffline = time.Minute
		c.AccessTTL = time.Hour
	})
	h.Org(2)
	admin := h.Login("admin", "web-admin")
	if st := admin.Do("POST", "/v1/admin/users/worker1/move", map[string]string{"unitId": nodetest.GridA(2)}, nil); st != 200 {
		t.Fatalf("move: %d", st)
	}
	clock.Advance(2 * time.Minute) // the move is now older than MaxOffline
	w := h.Login("worker1", "phone-1")
	longAgo := clock.Now().Add(-30 * 24 * time.Hour)
	id := newID(t)
	if _, r := w.Push([]nodetest.Mutation{{ID: 1, Name: "incident.report", Args: nodetest.Report(id), ClientTime: &longAgo}}); r.Results[0].Status != "applied" {
		t.Fatalf("push: %+v", r.Results)
	}
	var inc struct{ GridID string }
	admin.Do("GET", "/v1/incidents/"+id, nil, &inc)
	if inc.GridID != nodetest.GridA(2) {
		t.Errorf("a backdated report landed in %q; want the current grid %s", inc.GridID, nodetest.GridA(2))
	}
}
