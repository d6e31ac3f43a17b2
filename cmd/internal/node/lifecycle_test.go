package node_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/incident"
)

// move pushes one incident mutation and returns its outcome status and error code.
func move(t *testing.T, c *nodetest.Client, action string, args map[string]any) (string, string) {
	t.Helper()
	return pushOne(t, c, "incident."+action, args)
}

// must pushes a move that has to apply.
func mustMove(t *testing.T, c *nodetest.Client, action string, args map[string]any) {
	t.Helper()
	if st, code := move(t, c, action, args); st != "applied" {
		t.Fatalf("%s by %s: %s %s", action, c.Device, st, code)
	}
}

func getIncident(t *testing.T, c *nodetest.Client, id string) incident.Incident {
	t.Helper()
	var inc incident.Incident
	if st := c.Do("GET", "/v1/incidents/"+id, nil, &inc); st != 200 {
		t.Fatalf("get %s: %d %s", id, st, c.LastBody)
	}
	return inc
}

func shanghai(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, workday.Location())
	if err != nil {
		panic(err)
	}
	return t
}

// lifecycleCast is the fixture's people, logged in.
type lifecycleCast struct {
	worker, dispatcher, handler, street, district, city, other, discipline *nodetest.Client
}

func startLifecycle(t *testing.T, clock *nodetest.Clock) (*nodetest.Harness, lifecycleCast) {
	h := nodetest.Start(t, func(c *node.Config, o *node.Options) {
		if clock != nil {
			o.Now = clock.Now
		}
	})
	h.Org(2)
	return h, lifecycleCast{
		worker: h.Login("worker1", "w1"), dispatcher: h.Login("dispatcher", "desk-a"), handler: h.Login("handler", "h1"),
		street: h.Login("street", "st"), district: h.Login("district", "dt"), city: h.Login("city", "ct"),
		other: h.Login("dispatcherb", "desk-b"), discipline: h.Login("discipline", "dsc"),
	}
}

func report(t *testing.T, c *nodetest.Client, category string) string {
	t.Helper()
	id := newID(t)
	args := nodetest.Report(id)
	args["category"] = category
	args["requester"] = map[string]any{"name": "王女士", "phone": "13812345678"}
	mustMove(t, c, "report", args)
	return id
}

// A report walked through every move of DESIGN §3 by the people who make them, with
// the deadline from the working-day calendar: accepted Friday 2026-02-13 15:00, a
// normal item is due Saturday 2026-02-14 15:00 (a make-up workday).
func TestLifecycleWalk(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-02-13 15:00").Sub(clock.Now()))
	_, p := startLifecycle(t, clock)
	id := report(t, p.worker, "place.sanitation")
	ref := map[string]any{"incidentId": id}
	with := func(kv ...any) map[string]any {
		m := map[string]any{"incidentId": id}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	mustMove(t, p.dispatcher, "accept", ref)
	inc := getIncident(t, p.dispatcher, id)
	if inc.Status != incident.Accepted || inc.FirstOwnerID != "dispatcher" || inc.DueAt == nil || !inc.DueAt.Equal(shanghai("2026-02-14 15:00")) {
		t.Fatalf("after accept: %s owner %q due %v", inc.Status, inc.FirstOwnerID, inc.DueAt)
	}
	mustMove(t, p.dispatcher, "assign", with("assigneeId", "handler"))
	mustMove(t, p.handler, "start", ref)
	mustMove(t, p.handler, "requestDelay", with("reason", "需协调物业公司", "dueAt", shanghai("2026-02-27 18:00")))
	if inc = getIncident(t, p.dispatcher, id); inc.PendingDelay == nil || inc.PendingDelay.RequesterContact != "138****5678" {
		t.Fatalf("pending delay (contact masked): %+v", inc.PendingDelay)
	}
	if st, code := move(t, p.handler, "approveDelay", with("approved", true)); code != "forbidden" {
		t.Errorf("a handler approves its own delay: %s %s", st, code)
	}
	if st, code := move(t, p.street, "approveDelay", ref); code != "invalid_args" {
		t.Errorf("approveDelay without approved: %s %s", st, code)
	}
	mustMove(t, p.street, "approveDelay", with("approved", true))
	inc = getIncident(t, p.dispatcher, id)
	if inc.Status != incident.Delayed || len(inc.Delays) != 1 || !inc.DueAt.Equal(shanghai("2026-02-27 18:00")) {
		t.Fatalf("after approveDelay: %s %+v due %v", inc.Status, inc.Delays, inc.DueAt)
	}
	d := inc.Delays[0]
	if d.ApprovedBy != "street" || d.RequestedBy != "handler" || !strings.Contains(d.Notice.Zh, "需协调物业公司") ||
		!strings.Contains(d.Notice.Zh, "2026年2月27日 18:00") || !strings.Contains(d.Notice.En, "27 February 2026 18:00") {
		t.Errorf("delay record and notice: %+v", d)
	}
	mustMove(t, p.handler, "start", ref)
	mustMove(t, p.dispatcher, "comment", with("commentId", newID(t), "text", "物业已到场"))
	mustMove(t, p.handler, "resolve", with("result", "垃圾已清运", "photos", []string{strings.Repeat("ab", 32)}))
	mustMove(t, p.dispatcher, "verify", ref)
	if inc = getIncident(t, p.dispatcher, id); inc.Status != incident.Closed || inc.ClosedAt == nil || inc.Result != "垃圾已清运" {
		t.Fatalf("after verify: %s closed %v result %q", inc.Status, inc.ClosedAt, inc.Result)
	}
	// 服务评价: unsatisfied reopens once; the second unsatisfied rating is only kept.
	mustMove(t, p.worker, "rate", with("rating", "unsatisfied", "comment", "仍有异味"))
	if inc = getIncident(t, p.dispatcher, id); inc.Status != incident.InProgress || inc.Reopens != 1 || inc.ClosedAt != nil {
		t.Fatalf("after an unsatisfied rating: %s reopens %d", inc.Status, inc.Reopens)
	}
	mustMove(t, p.handler, "resolve", with("result", "已消毒"))
	mustMove(t, p.dispatcher, "verify", ref)
	mustMove(t, p.worker, "rate", with("rating", "unsatisfied"))
	inc = getIncident(t, p.dispatcher, id)
	if inc.Status != incident.Closed || inc.Rating == nil || inc.Rating.Value != "unsatisfied" || inc.Reopens != 1 {
		t.Errorf("a second unsatisfied rating: %s %+v reopens %d", inc.Status, inc.Rating, inc.Reopens)
	}
	var actions []string
	for _, h := range inc.History {
		if h.Action == "overdue" {
			// The test clock is in February while the broker's timers run on real time:
			// the deadlines set here fire at once and may mark the item overdue between
			// moves. (TestDeadline* test the timers.)
			continue
		}
		actions = append(actions, h.Action)
		if h.By == "" || h.At.IsZero() || h.Device == "" {
			t.Errorf("history entry without who/when/device: %+v", h)
		}
	}
	want := []string{"report", "accept", "assign", "start", "requestDelay", "approveDelay", "start", "comment", "resolve",
		"verify", "rate", "resolve", "verify", "rate"}
	if !slices.Equal(actions, want) {
		t.Errorf("history:\n got %v\nwant %v", actions, want)
	}
	if inc.FirstOwnerID != "dispatcher" {
		t.Errorf("first-inquiry owner: %q", inc.FirstOwnerID)
	}
}

// Escalation goes one level at a time to the city and no further; the first-inquiry
// owner is kept, and each level's dispatcher or supervisor acts on it there.
func TestEscalationToCity(t *testing.T) {
	_, p := startLifecycle(t, nil)
	id := report(t, p.worker, "place.sanitation")
	ref := map[string]any{"incidentId": id, "reason": "超出本级处置能力"}
	mustMove(t, p.dispatcher, "accept", map[string]any{"incidentId": id})
	for _, step := range []struct {
		by    *nodetest.Client
		level int
		unit  string
	}{{p.dispatcher, 3, nodetest.Street}, {p.street, 4, nodetest.District}, {p.district, 5, nodetest.City}} {
		mustMove(t, step.by, "escalate", ref)
		inc := getIncident(t, p.city, id)
		if inc.Status != incident.Reported || inc.Level != step.level || inc.UnitID != step.unit || inc.FirstOwnerID != "dispatcher" || inc.DueAt != nil {
			t.Fatalf("after escalation by %s: %s level %d unit %s first owner %q due %v", step.by.Device, inc.Status, inc.Level, inc.UnitID, inc.FirstOwnerID, inc.DueAt)
		}
		if st, code := move(t, p.dispatcher, "accept", map[string]any{"incidentId": id}); code != "forbidden" {
			t.Errorf("the community dispatcher acts on an item its unit no longer owns: %s %s", st, code)
		}
	}
	if st, code := move(t, p.city, "escalate", ref); code != "top_level" {
		t.Errorf("escalating above the city: %s %s", st, code)
	}
	mustMove(t, p.city, "accept", map[string]any{"incidentId": id})
	if inc := getIncident(t, p.city, id); inc.FirstOwnerID != "dispatcher" || inc.Escalations != 3 {
		t.Errorf("at the city: first owner %q, escalations %d", inc.FirstOwnerID, inc.Escalations)
	}
}

// 否定报备: no refusal without a reason; a refusal is filed with the time the unit
// received the item, flagged late after 1 working day.
func TestRefusalFiling(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-03-02 10:00").Sub(clock.Now())) // Monday
	h, p := startLifecycle(t, clock)
	onTime := report(t, p.worker, "place.sanitation")
	late := report(t, p.worker, "place.sanitation")
	if st, code := move(t, p.dispatcher, "refuse", map[string]any{"incidentId": onTime, "reason": "  "}); code != "reason_required" {
		t.Fatalf("refusal without a reason: %s %s", st, code)
	}
	if inc := getIncident(t, p.dispatcher, onTime); inc.Status != incident.Reported {
		t.Fatalf("a refused refusal changed the item: %s", inc.Status)
	}
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": onTime, "reason": "属于私人纠纷，不属本社区受理范围"})
	clock.Advance(26 * time.Hour) // Tuesday 12:00: past the 1-working-day window
	p.dispatcher = h.Login("dispatcher", "desk-a2")
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": late, "reason": "重复反映"})
	for id, wantLate := range map[string]bool{onTime: false, late: true} {
		inc := getIncident(t, p.dispatcher, id)
		r := inc.Refusal
		if inc.Status != incident.Refused || r == nil || r.Late != wantLate || r.By != "dispatcher" || r.Unit != nodetest.CommunityA ||
			!r.ReceivedAt.Equal(shanghai("2026-03-02 10:00")) {
			t.Errorf("refusal of %s: %s %+v (want late=%v)", id, inc.Status, r, wantLate)
		}
	}
}

// Every action from every status: allowed exactly where the transition table says,
// refused elsewhere with invalid_transition and nothing changed.
func TestEveryTransition(t *testing.T) {
	_, p := startLifecycle(t, nil)
	original := report(t, p.worker, "place.sanitation")
	// reach builds an incident in a status through the real moves.
	reach := map[incident.Status][]string{
		incident.Reported:   nil,
		incident.Accepted:   {"accept"},
		incident.Assigned:   {"accept", "assign"},
		incident.InProgress: {"accept", "assign", "start"},
		incident.Delayed:    {"accept", "assign", "start", "requestDelay", "approveDelay"},
		incident.Resolved:   {"accept", "assign", "start", "resolve"},
		incident.Closed:     {"accept", "assign", "start", "resolve", "verify"},
		incident.Refused:    {"refuse"},
		incident.Duplicate:  {"merge"},
	}
	args := func(id, action string) map[string]any {
		m := map[string]any{"incidentId": id}
		switch action {
		case "assign":
			m["assigneeId"] = "handler"
		case "resolve":
			m["result"] = "done"
		case "reopen", "escalate", "refuse", "takeOver":
			m["reason"] = "a reason"
		case "requestDelay":
			m["reason"], m["dueAt"] = "a reason", time.Now().Add(30*24*time.Hour)
		case "approveDelay":
			m["approved"] = true
		case "merge":
			m["intoIncidentId"] = original
		case "comment":
			m["commentId"], m["text"] = newID(t), "a comment"
		case "rate":
			m["rating"] = "satisfied"
		}
		return m
	}
	allowed := map[string][]incident.Status{
		"accept":       {incident.Reported},
		"assign":       {incident.Accepted, incident.Assigned},
		"start":        {incident.Assigned, incident.Delayed},
		"resolve":      {incident.Accepted, incident.Assigned, incident.InProgress, incident.Delayed}, // from reported: on the spot only
		"verify":       {incident.Resolved},
		"reopen":       {incident.Resolved, incident.Closed},
		"escalate":     {incident.Reported, incident.Accepted, incident.Assigned, incident.InProgress},
		"refuse":       {incident.Reported, incident.Accepted},
		"requestDelay": {incident.Accepted, incident.Assigned, incident.InProgress},
		"approveDelay": {}, // needs a requested delay: see TestLifecycleWalk
		"merge":        {incident.Reported, incident.Accepted},
		"comment":      {incident.Reported, incident.Accepted, incident.Assigned, incident.InProgress, incident.Delayed, incident.Resolved, incident.Closed, incident.Refused, incident.Duplicate},
		"rate":         {incident.Closed},
		"takeOver":     {incident.Reported, incident.Accepted, incident.Assigned, incident.InProgress, incident.Delayed},
		// handDown: from the same statuses as takeOver, once a level above owns the
		// item (TestHandDownKeepsDeadline).
	}
	checked := 0
	for status, path := range reach {
		for action, ok := range allowed {
			t.Run(fmt.Sprintf("%s/%s", status, action), func(t *testing.T) {
				id := report(t, p.worker, "place.sanitation")
				for _, step := range path {
					by := p.dispatcher
					if step == "approveDelay" {
						by = p.street
					}
					mustMove(t, by, step, args(id, step))
				}
				by := p.dispatcher
				if action == "approveDelay" || action == "takeOver" {
					by = p.street
				}
				before := getIncident(t, p.dispatcher, id)
				st, code := move(t, by, action, args(id, action))
				if slices.Contains(ok, status) {
					if st != "applied" {
						t.Errorf("%s from %s: %s %s, want applied", action, status, st, code)
					}
					return
				}
				if st != "rejected" || (code != "invalid_transition" && code != "no_delay_requested") {
					t.Errorf("%s from %s: %s %s, want rejected", action, status, st, code)
				}
				if after := getIncident(t, p.dispatcher, id); after.Version != before.Version {
					t.Errorf("a refused move changed the incident: version %d → %d", before.Version, after.Version)
				}
			})
			checked++
		}
	}
	if checked != len(reach)*14 {
		t.Errorf("checked %d pairs", checked)
	}
}

// Who may make each move: the owning unit's dispatcher, a supervisor above, the
// assignee where the work is theirs; others are refused, and someone outside the
// scope is told the incident does not exist.
func TestMoveGuards(t *testing.T) {
	_, p := startLifecycle(t, nil)
	cases := []struct {
		action string
		by     func(lifecycleCast) *nodetest.Client
		setup  []string
		args   map[string]any
		want   string // "" applied, else the error code
	}{
		{"accept", func(c lifecycleCast) *nodetest.Client { return c.worker }, nil, nil, "forbidden"},
		{"accept", func(c lifecycleCast) *nodetest.Client { return c.handler }, nil, nil, "forbidden"},
		{"accept", func(c lifecycleCast) *nodetest.Client { return c.other }, nil, nil, "not_found"},
		{"accept", func(c lifecycleCast) *nodetest.Client { return c.discipline }, nil, nil, "forbidden"},
		{"accept", func(c lifecycleCast) *nodetest.Client { return c.street }, nil, nil, ""},
		{"assign", func(c lifecycleCast) *nodetest.Client { return c.dispatcher }, []string{"accept"}, map[string]any{"assigneeId": "workerb"}, "invalid_assignee"},
		{"assign", func(c lifecycleCast) *nodetest.Client { return c.dispatcher }, []string{"accept"}, map[string]any{"assigneeId": "nobody"}, "invalid_assignee"},
		{"assign", func(c lifecycleCast) *nodetest.Client { return c.worker }, []string{"accept"}, map[string]any{"assigneeId": "handler"}, "forbidden"},
		{"start", func(c lifecycleCast) *nodetest.Client { return c.worker }, []string{"accept", "assign"}, nil, "forbidden"},
		{"start", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign"}, nil, ""},
		{"resolve", func(c lifecycleCast) *nodetest.Client { return c.worker }, []string{"accept", "assign"}, map[string]any{"result": "x"}, "forbidden"},
		{"resolve", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign"}, map[string]any{}, "reason_required"},
		{"verify", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign", "resolve"}, nil, "forbidden"},
		{"approveDelay", func(c lifecycleCast) *nodetest.Client { return c.dispatcher }, []string{"accept", "assign", "requestDelay"}, map[string]any{"approved": true}, "forbidden"},
		{"approveDelay", func(c lifecycleCast) *nodetest.Client { return c.district }, []string{"accept", "assign", "requestDelay"}, map[string]any{"approved": false}, ""},
		{"comment", func(c lifecycleCast) *nodetest.Client { return c.discipline }, nil, map[string]any{"commentId": "019ac4a2-7b3e-7c41-9e2f-5a1b2c3d4e5f", "text": "看过"}, ""},
		{"comment", func(c lifecycleCast) *nodetest.Client { return c.discipline }, nil, map[string]any{"commentId": "x", "text": "看过"}, "invalid_args"},
		{"comment", func(c lifecycleCast) *nodetest.Client { return c.other }, nil, map[string]any{"commentId": "019ac4a2-7b3e-7c41-9e2f-5a1b2c3d4e5f", "text": "看过"}, "not_found"},
		{"rate", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign", "resolve", "verify"}, map[string]any{"rating": "satisfied"}, "forbidden"},
		{"rate", func(c lifecycleCast) *nodetest.Client { return c.worker }, []string{"accept", "assign", "resolve", "verify"}, map[string]any{"rating": "great"}, "invalid_args"},
		{"merge", func(c lifecycleCast) *nodetest.Client { return c.dispatcher }, nil, map[string]any{"intoIncidentId": "019ac4a2-7b3e-7c41-9e2f-5a1b2c3d4e5f"}, "invalid_original"},
		{"resolve", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign"}, map[string]any{"result": "x", "photos": []string{"../../etc/passwd"}}, "invalid_args"},
		{"requestDelay", func(c lifecycleCast) *nodetest.Client { return c.handler }, []string{"accept", "assign"}, map[string]any{"reason": "x", "dueAt": time.Now().Add(-time.Hour)}, "invalid_args"},
	}
	stepArgs := map[string]map[string]any{
		"assign": {"assigneeId": "handler"}, "resolve": {"result": "done"},
		"requestDelay": {"reason": "r", "dueAt": time.Now().Add(72 * time.Hour)},
	}
	for _, tc := range cases {
		by := tc.by(p)
		t.Run(tc.action+"/"+by.Device+"/"+tc.want, func(t *testing.T) {
			id := report(t, p.worker, "place.sanitation")
			for _, step := range tc.setup {
				a := map[string]any{"incidentId": id}
				for k, v := range stepArgs[step] {
					a[k] = v
				}
				mustMove(t, p.dispatcher, step, a)
			}
			a := map[string]any{"incidentId": id}
			for k, v := range tc.args {
				a[k] = v
			}
			st, code := move(t, by, tc.action, a)
			if tc.want == "" && st != "applied" || tc.want != "" && code != tc.want {
				t.Errorf("%s by %s: %s %q, want %q", tc.action, by.Device, st, code, tc.want)
			}
		})
	}
}

// 就地解决: the reporting grid worker resolves on the spot only a category the grid
// handles; it is recorded at level 1 and the community verifies it.
func TestResolveOnTheSpot(t *testing.T) {
	_, p := startLifecycle(t, nil)
	var gridCat, higherCat string
	cats := catalogCodes(t, p.dispatcher)
	for code, level := range cats {
		if level == 1 && gridCat == "" {
			gridCat = code
		}
		if level == 2 && higherCat == "" { // above the grid, and not routed away from the community
			higherCat = code
		}
	}
	if gridCat == "" || higherCat == "" {
		t.Fatalf("the catalogue needs a grid-level and a higher category: %v", cats)
	}
	id := report(t, p.worker, gridCat)
	mustMove(t, p.worker, "resolve", map[string]any{"incidentId": id, "result": "当场劝离"})
	if inc := getIncident(t, p.dispatcher, id); inc.Status != incident.Resolved || inc.Level != 1 {
		t.Fatalf("on the spot: %s level %d", inc.Status, inc.Level)
	}
	mustMove(t, p.dispatcher, "verify", map[string]any{"incidentId": id})
	id = report(t, p.worker, higherCat)
	if st, code := move(t, p.worker, "resolve", map[string]any{"incidentId": id, "result": "x"}); code != "invalid_transition" {
		t.Errorf("on the spot in a category above the grid: %s %s", st, code)
	}
	if st, code := move(t, p.dispatcher, "resolve", map[string]any{"incidentId": id, "result": "x"}); code != "invalid_transition" {
		t.Errorf("a dispatcher resolves a reported item without accepting it: %s %s", st, code)
	}
}

// catalogCodes returns every sub-category's code with its default level.
func catalogCodes(t *testing.T, c *nodetest.Client) map[string]int {
	t.Helper()
	var body struct{ Categories []incident.Category }
	if st := c.Do("GET", "/v1/categories", nil, &body); st != 200 {
		t.Fatalf("categories: %d", st)
	}
	cats := body.Categories
	out := map[string]int{}
	var walk func([]incident.Category)
	walk = func(cs []incident.Category) {
		for _, c := range cs {
			if len(c.Subcategories) == 0 {
				out[c.Code] = c.DefaultLevel
			}
			walk(c.Subcategories)
		}
	}
	walk(cats)
	return out
}

// 交办 and 督办: a level above takes an item over and hands it back down; the
// deadline it set on taking it stays through the hand-down, the first-inquiry owner
// never changes, and only units on the way to where it happened can receive it.
func TestHandDownKeepsDeadline(t *testing.T) {
	clock := nodetest.NewClock()
	clock.Advance(shanghai("2026-03-03 10:00").Sub(clock.Now())) // a Tuesday
	h, p := startLifecycle(t, clock)
	id := report(t, p.worker, "place.sanitation")
	// Guards: only a unit above the owner takes over, with a reason; the owner's own
	// dispatcher cannot.
	for _, c := range []struct {
		by   *nodetest.Client
		args map[string]any
		want string
	}{
		{p.dispatcher, map[string]any{"incidentId": id, "reason": "x"}, "forbidden"},
		{p.other, map[string]any{"incidentId": id, "reason": "x"}, "not_found"},
		{p.handler, map[string]any{"incidentId": id, "reason": "x"}, "forbidden"},
		{p.district, map[string]any{"incidentId": id}, "reason_required"},
	} {
		if st, code := move(t, c.by, "takeOver", c.args); code != c.want {
			t.Errorf("takeOver by %s: %s %s, want %s", c.by.Device, st, code, c.want)
		}
	}
	mustMove(t, p.district, "takeOver", map[string]any{"incidentId": id, "reason": "群众多次反映，区级督办"})
	inc := getIncident(t, p.district, id)
	wantDue := shanghai("2026-03-04 10:00")
	if inc.Status != incident.Accepted || inc.UnitID != nodetest.District || inc.Level != 4 || inc.FirstOwnerID != "district" ||
		inc.DueAt == nil || !inc.DueAt.Equal(wantDue) {
		t.Fatalf("after takeOver: %s %s level %d owner %q due %v", inc.Status, inc.UnitID, inc.Level, inc.FirstOwnerID, inc.DueAt)
	}
	for _, c := range []struct {
		unit any
		want string
	}{
		{nodetest.CommunityB, "invalid_unit"}, // below the owner, but not where it happened
		{nodetest.GridA(1), "invalid_unit"},   // grids have no dispatcher: hand to the community
		{nodetest.District, "invalid_unit"},   // not below
		{nodetest.City, "invalid_unit"},
		{"110105001009", "invalid_unit"}, // no such community
		{"$ne", "invalid_args"},
		{nil, "invalid_args"},
	} {
		if st, code := move(t, p.district, "handDown", map[string]any{"incidentId": id, "unitId": c.unit}); code != c.want {
			t.Errorf("handDown to %v: %s %s, want %s", c.unit, st, code, c.want)
		}
	}
	if st, code := move(t, p.dispatcher, "handDown", map[string]any{"incidentId": id, "unitId": nodetest.CommunityA}); code != "forbidden" {
		t.Errorf("the community hands down an item the district owns: %s %s", st, code)
	}
	clock.Advance(3 * time.Hour) // handed down at 13:00: the deadline set at 10:00 stays
	p.district, p.dispatcher, p.handler, p.street = h.Login("district", "dt2"), h.Login("dispatcher", "desk-a2"), h.Login("handler", "h2"), h.Login("street", "st2")
	mustMove(t, p.district, "handDown", map[string]any{"incidentId": id, "unitId": nodetest.CommunityA, "note": "请社区限时办结"})
	inc = getIncident(t, p.dispatcher, id)
	if inc.Status != incident.Accepted || inc.UnitID != nodetest.CommunityA || inc.Level != 2 || inc.FirstOwnerID != "district" ||
		!inc.DueAt.Equal(wantDue) {
		t.Fatalf("after handDown: %s %s level %d owner %q due %v (want %v)", inc.Status, inc.UnitID, inc.Level, inc.FirstOwnerID, inc.DueAt, wantDue)
	}
	mustMove(t, p.dispatcher, "assign", map[string]any{"incidentId": id, "assigneeId": "handler"})
	mustMove(t, p.handler, "start", map[string]any{"incidentId": id})
	// The street takes it from the community while in progress: still accepted, same deadline.
	mustMove(t, p.street, "takeOver", map[string]any{"incidentId": id, "reason": "社区超期"})
	inc = getIncident(t, p.street, id)
	if inc.Status != incident.Accepted || inc.UnitID != nodetest.Street || inc.AssigneeID != "" || !inc.DueAt.Equal(wantDue) ||
		inc.FirstOwnerID != "district" || inc.Escalations != 2 {
		t.Fatalf("after the street's takeOver: %s %s assignee %q due %v first %q escalations %d", inc.Status, inc.UnitID, inc.AssigneeID, inc.DueAt, inc.FirstOwnerID, inc.Escalations)
	}
	var actions []string
	for _, h := range inc.History {
		if h.Action != "overdue" {
			actions = append(actions, h.Action+"@"+h.Unit)
		}
	}
	want := []string{"report@" + nodetest.CommunityA, "takeOver@" + nodetest.District, "handDown@" + nodetest.CommunityA,
		"assign@" + nodetest.CommunityA, "start@" + nodetest.CommunityA, "takeOver@" + nodetest.Street}
	if !slices.Equal(actions, want) {
		t.Errorf("history:\n got %v\nwant %v", actions, want)
	}
}
