package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/nats-io/nats.go/jetstream"
)

// events reads every event of the given types from the event stream.
func events(t *testing.T, h *nodetest.Harness, types ...string) []command.Event {
	t.Helper()
	ctx := context.Background()
	s, err := h.Node.JS.Stream(ctx, h.Node.Names.EvtStream())
	if err != nil {
		t.Fatal(err)
	}
	var filters []string
	for _, typ := range types {
		filters = append(filters, h.Node.Names.EvtSubject(typ, ">"))
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		t.Fatal(err)
	}
	var out []command.Event
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var ev command.Event
			if json.Unmarshal(m.Data(), &ev) == nil {
				out = append(out, ev)
			}
		}
		if n == 0 {
			return out
		}
	}
}

// eventsAbout counts, by type, the events of one incident among types.
func eventsAbout(t *testing.T, h *nodetest.Harness, id string, types ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ev := range events(t, h, types...) {
		var x struct {
			ID       string `json:"id"`
			Incident struct {
				ID string `json:"id"`
			} `json:"incident"`
		}
		if json.Unmarshal(ev.Data, &x) == nil && (x.ID == id || x.Incident.ID == id) {
			out[ev.Type]++
		}
	}
	return out
}

func historyActions(inc incident.Incident) []string {
	var out []string
	for _, h := range inc.History {
		out = append(out, h.Action)
	}
	return out
}

// A deadline is a JetStream message schedule in the broker: it fires after a restart
// of gridd (and of the embedded broker with it). An urgent item not accepted in time
// is passed up at once (特事特办).
func TestDeadlineFiresAfterRestart(t *testing.T) {
	h := nodetest.StartEmbedded(t, t.TempDir(), func(c *node.Config, _ *node.Options) { c.UrgentAccept = 8 * time.Second })
	h.Org(1)
	w := h.Login("worker1", "w1")
	id := newID(t)
	args := nodetest.Report(id)
	args["urgent"] = true
	mustMove(t, w, "report", args)
	start := time.Now()
	h.Restart(nil)
	st := h.Login("street", "st")
	if inc := getIncident(t, st, id); inc.Overdue || inc.UnitID != nodetest.CommunityA {
		t.Fatalf("the deadline fired before the restart was done (%v): %+v", time.Since(start), inc)
	}

	var inc incident.Incident
	waitFor(t, "the urgent item to be passed up on its missed deadline", func() bool {
		inc = getIncident(t, st, id)
		return inc.UnitID == nodetest.Street
	})
	acts := historyActions(inc)
	if inc.Status != incident.Reported || inc.Level != 3 || inc.AcceptBy == nil || len(acts) < 3 || acts[1] != "overdue" || acts[2] != "escalate" {
		t.Errorf("after the deadline: %s level %d acceptBy %v history %v", inc.Status, inc.Level, inc.AcceptBy, acts)
	}
	if n := eventsAbout(t, h, id, "incident.overdue")["incident.overdue"]; n != 1 {
		t.Errorf("overdue events: %d, want 1", n)
	}
}

// Resolving cancels an item's deadline; an item left alone gets its due-soon warning,
// then goes overdue at its due time: escalated for supervision (the parent unit is
// told) without losing its owner.
func TestDeadlineCancelledByResolving(t *testing.T) {
	h := nodetest.Start(t, func(c *node.Config, _ *node.Options) { c.DueWarning = time.Second })
	h.Org(1)
	w := h.Login("worker1", "w1")
	d := h.Login("dispatcher", "desk")
	hd := h.Login("handler", "h1")
	st := h.Login("street", "st")
	var ids []string
	for i := 0; i < 2; i++ {
		id := newID(t)
		mustMove(t, w, "report", nodetest.Report(id))
		ref := map[string]any{"incidentId": id}
		mustMove(t, d, "accept", ref)
		mustMove(t, d, "assign", map[string]any{"incidentId": id, "assigneeId": "handler"})
		mustMove(t, hd, "requestDelay", map[string]any{"incidentId": id, "reason": "等待配件", "dueAt": time.Now().Add(240 * time.Hour)})
		ids = append(ids, id)
	}
	done, left := ids[0], ids[1]
	// The short deadline is set only now, so a slow machine cannot let it pass before
	// the first item is resolved.
	due := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	for _, id := range ids {
		mustMove(t, st, "approveDelay", map[string]any{"incidentId": id, "approved": true, "dueAt": due})
	}
	mustMove(t, hd, "resolve", map[string]any{"incidentId": done, "result": "已更换"})
	waitFor(t, "the unresolved item to go overdue", func() bool { return getIncident(t, d, left).Overdue })
	inc := getIncident(t, d, left)
	acts := historyActions(inc)
	if inc.UnitID != nodetest.CommunityA || inc.Status != incident.Delayed || acts[len(acts)-1] != "overdue" {
		t.Errorf("overdue item: unit %s status %s history %v", inc.UnitID, inc.Status, acts)
	}
	if got := eventsAbout(t, h, left, "incident.dueSoon", "incident.overdue"); got["incident.dueSoon"] != 1 || got["incident.overdue"] != 1 {
		t.Errorf("events of the overdue item: %v", got)
	}
	time.Sleep(time.Second) // the resolved item's deadline has passed too
	if inc := getIncident(t, d, done); inc.Overdue || inc.Status != incident.Resolved {
		t.Errorf("resolved item: overdue %v status %s", inc.Overdue, inc.Status)
	}
	if got := eventsAbout(t, h, done, "incident.dueSoon", "incident.overdue"); len(got) != 0 {
		t.Errorf("events of the resolved item: %v", got)
	}
	// The street (supervision) can take the overdue item over.
	mustMove(t, st, "start", map[string]any{"incidentId": left, "note": "督办"})
}
