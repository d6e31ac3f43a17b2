package node_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/notify/notifytest"
)

// register gives a client's device a push token.
func register(t *testing.T, c *nodetest.Client, token, locale string) {
	t.Helper()
	if st := c.Do("PUT", "/v1/devices/"+c.Device, map[string]any{"pushToken": token, "platform": "android", "appVersion": "1.0", "locale": locale}, nil); st != 200 {
		t.Fatalf("register %s: %d %s", c.Device, st, c.LastBody)
	}
}

// inbox returns a user's notifications, oldest first.
func inbox(t *testing.T, c *nodetest.Client) []notify.Notification {
	t.Helper()
	var r struct{ Notifications []notify.Notification }
	if st := c.Do("GET", "/v1/notifications?limit=200", nil, &r); st != 200 {
		t.Fatalf("inbox of %s: %d %s", c.Device, st, c.LastBody)
	}
	slices.Reverse(r.Notifications)
	return r.Notifications
}

// kindsFor lists the kinds of a user's notifications about one incident.
func kindsFor(t *testing.T, c *nodetest.Client, incidentID string) []string {
	var out []string
	for _, n := range inbox(t, c) {
		if n.IncidentID == incidentID {
			out = append(out, n.Kind)
		}
	}
	return out
}

// Each step of an item's life reaches the people the rules name — in their inbox and
// as a push through the real firebase SDK to the fake FCM — and never whoever made
// the step: the dispatcher when an item arrives; the handler when assigned; the
// reporter (who holds the requester's contact) with the delay notice and the refusal;
// reporter and first-inquiry owner when resolved and closed; the dispatcher on an
// unsatisfied rating; the street's desk on escalation; the discipline officer on a
// complaint.
func TestNotificationRules(t *testing.T) {
	fake := notifytest.NewFCM(t)
	h, p := startLifecycle(t, nil)
	h.Restart(func(c *node.Config, o *node.Options) { o.Sender = fake.Sender(t) })
	p = lifecycleCast{worker: h.Login("worker1", "w1"), dispatcher: h.Login("dispatcher", "desk-a"), handler: h.Login("handler", "h1"),
		street: h.Login("street", "st"), discipline: h.Login("discipline", "dsc")}
	register(t, p.worker, "tok-w", "zh-CN")
	register(t, p.dispatcher, "tok-d", "zh-CN")
	register(t, p.handler, "tok-h", "en-GB")
	register(t, p.street, "tok-s", "zh-CN")
	register(t, p.discipline, "tok-dsc", "zh-CN")
	waitFor(t, "five devices registered", func() bool { return h.Node.Poker.Watching() == 5 })

	id := report(t, p.worker, "place.sanitation")
	with := func(kv ...any) map[string]any {
		m := map[string]any{"incidentId": id}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	mustMove(t, p.dispatcher, "accept", with())
	mustMove(t, p.dispatcher, "assign", with("assigneeId", "handler"))
	mustMove(t, p.handler, "start", with())
	mustMove(t, p.handler, "requestDelay", with("reason", "等待物业", "dueAt", time.Now().Add(72*time.Hour)))
	mustMove(t, p.street, "approveDelay", with("approved", true))
	mustMove(t, p.handler, "start", with())
	mustMove(t, p.handler, "resolve", with("result", "已清运"))
	mustMove(t, p.dispatcher, "verify", with())
	mustMove(t, p.worker, "rate", with("rating", "unsatisfied"))

	esc := report(t, p.worker, "place.sanitation")
	mustMove(t, p.dispatcher, "escalate", map[string]any{"incidentId": esc, "reason": "超出社区能力"})
	ref := report(t, p.worker, "place.sanitation")
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": ref, "reason": "不属受理范围"})
	if st, r := p.worker.Push(p.worker.Queue([]string{"complaint.file"}, []any{map[string]any{"complaintId": newID(t), "text": "态度差"}})); st != 200 || r.Results[0].Status != "applied" {
		t.Fatalf("complaint: %d %+v", st, r)
	}

	want := map[*nodetest.Client]map[string][]string{
		p.dispatcher: {id: {"queued", "resolved", "unsatisfied"}, ref: {"queued"}, esc: {"queued"}},
		p.handler:    {id: {"assigned"}},
		p.worker:     {id: {"delayed", "resolved", "closed"}, ref: {"refused"}},
		p.street:     {esc: {"escalated"}},
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !func() bool {
		for c, per := range want {
			for inc, kinds := range per {
				if !slices.Equal(kindsFor(t, c, inc), kinds) {
					return false
				}
			}
		}
		return true
	}() {
		time.Sleep(100 * time.Millisecond)
	}
	for c, per := range want {
		for inc, kinds := range per {
			if got := kindsFor(t, c, inc); !slices.Equal(got, kinds) {
				t.Errorf("%s about %s: %v, want %v", c.Device, inc[len(inc)-6:], got, kinds)
			}
		}
	}
	// The delay notice reaches the reporter word for word.
	for _, n := range inbox(t, p.worker) {
		if n.Kind == "delayed" && (!strings.Contains(n.Body.Zh, "延期办理告知") || !strings.Contains(n.Body.Zh, "等待物业")) {
			t.Errorf("delay notice: %+v", n.Body)
		}
	}
	var complaintSeen bool
	for _, n := range inbox(t, p.discipline) {
		complaintSeen = complaintSeen || (n.Kind == "complaintFiled" && n.ComplaintID != "")
	}
	if !complaintSeen {
		t.Errorf("the discipline officer was not told of the complaint")
	}

	// Pushes: each notification as an FCM data message in the device's language, with
	// its id; the exact request body of the handler's.
	waitFor(t, "the handler's push", func() bool { return len(fake.Of("notification", "tok-h")) == 1 })
	hn := inbox(t, p.handler)[0]
	push := fake.Of("notification", "tok-h")[0]
	var body struct {
		Message struct {
			Token   string            `json:"token"`
			Data    map[string]string `json:"data"`
			Android struct {
				Priority string `json:"priority"`
			} `json:"android"`
		} `json:"message"`
	}
	if err := json.Unmarshal([]byte(push.Body), &body); err != nil {
		t.Fatal(err)
	}
	wantData := map[string]string{"type": "notification", "id": hn.ID, "kind": "assigned", "incidentId": id,
		"title": "An item was assigned to you", "body": hn.Body.En}
	if body.Message.Token != "tok-h" || body.Message.Android.Priority != "high" || len(body.Message.Data) != len(wantData) {
		t.Errorf("push body: %s", push.Body)
	}
	for k, v := range wantData {
		if body.Message.Data[k] != v {
			t.Errorf("push data %s = %q, want %q", k, body.Message.Data[k], v)
		}
	}
	// Every notification of a user with a device went out: alone, with exactly its
	// fields in the device's language, or in a coalesced push that lists its id.
	for c, tok := range map[*nodetest.Client]string{p.worker: "tok-w", p.dispatcher: "tok-d", p.handler: "tok-h", p.street: "tok-s", p.discipline: "tok-dsc"} {
		locale := map[string]string{"tok-h": "en-GB"}[tok]
		for _, n := range inbox(t, c) {
			waitFor(t, "the push of "+n.Kind+" to "+tok, func() bool {
				for _, r := range fake.Of("notification", tok) {
					if r.Data["id"] == n.ID || slices.Contains(strings.Split(r.Data["ids"], ","), n.ID) {
						return true
					}
				}
				return false
			})
			for _, r := range fake.Of("notification", tok) {
				if r.Data["id"] != n.ID {
					continue
				}
				want := map[string]string{"type": "notification", "id": n.ID, "kind": n.Kind, "title": n.Title.In(locale), "body": n.Body.In(locale)}
				if n.IncidentID != "" {
					want["incidentId"] = n.IncidentID
				}
				if n.Urgent {
					want["urgent"] = "true"
				}
				if len(r.Data) != len(want) {
					t.Errorf("%s push of %s: %v, want %v", tok, n.Kind, r.Data, want)
				}
				for k, v := range want {
					if r.Data[k] != v {
						t.Errorf("%s push of %s: %s = %q, want %q", tok, n.Kind, k, r.Data[k], v)
					}
				}
			}
		}
	}
	waitFor(t, "the worker's pushes", func() bool {
		n := 0
		for _, r := range fake.Of("notification", "tok-w") {
			n += max(1, strings.Count(r.Data["ids"], ",")+1)
		}
		return n >= 4
	})
	for _, r := range fake.Of("notification", "tok-w") {
		if r.Data["title"] == "" || strings.Contains(r.Data["title"], "item") {
			t.Errorf("a zh-CN device got %q", r.Data["title"])
		}
	}
}

// A burst for one user is coalesced into a few pushes per device carrying every id;
// quiet hours hold non-urgent pushes until they end while the inbox has them at once;
// a logged-out device gets no more pushes.
func TestPushCoalescingQuietHoursLogout(t *testing.T) {
	fake := notifytest.NewFCM(t)
	// 22:30 a month ahead: the deadlines the moves set lie in the broker's future, so no
	// due-soon or overdue notification joins the ones counted here.
	clock := nodetest.NewClock()
	yy, mm, dd := clock.Now().In(workday.Location()).AddDate(0, 1, 0).Date()
	clock.Advance(time.Date(yy, mm, dd, 22, 30, 0, 0, workday.Location()).Sub(clock.Now()))
	h, _ := startLifecycle(t, clock)
	h.Restart(func(c *node.Config, o *node.Options) { o.Sender = fake.Sender(t) })
	d, hd := h.Login("dispatcher", "desk-q"), h.Login("handler", "phone-h")
	w := h.Login("worker1", "w-q")
	register(t, hd, "tok-h", "zh-CN")
	waitFor(t, "the device registered", func() bool { return h.Node.Poker.Watching() == 1 })

	// Burst: 12 items assigned to the handler at once.
	var ids []string
	for range 12 {
		id := report(t, w, "place.sanitation")
		ids = append(ids, id)
	}
	var names []string
	var args []any
	for _, id := range ids {
		names = append(names, "incident.accept", "incident.assign")
		args = append(args, map[string]any{"incidentId": id}, map[string]any{"incidentId": id, "assigneeId": "handler"})
	}
	if st, r := d.Push(d.Queue(names, args)); st != 200 || r.Results[len(r.Results)-1].Status != "applied" {
		t.Fatalf("accept and assign: %d", st)
	}
	pushedIDs := func() int {
		n := 0
		for _, r := range fake.Of("notification", "tok-h") {
			if r.Data["ids"] != "" {
				n += len(strings.Split(r.Data["ids"], ","))
			} else {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for pushedIDs() < 12 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := pushedIDs(); n != 12 {
		t.Fatalf("%d notifications pushed, want 12; inbox has %d", n, len(inbox(t, hd)))
	}
	pushes := fake.Of("notification", "tok-h")
	if len(pushes) > 4 {
		for _, p := range pushes {
			t.Logf("push: %v", p.Data)
		}
		t.Errorf("12 assignments made %d pushes; want them coalesced", len(pushes))
	}
	t.Logf("12 assignments in a burst: %d pushes", len(pushes))

	// Quiet hours 22:00–07:00: a new assignment is in the inbox at once, not pushed.
	if st := hd.Do("PUT", "/v1/me/preferences", map[string]any{"quietHours": map[string]string{"start": "22:00", "end": "07:00"}}, nil); st != 200 {
		t.Fatalf("preferences: %d %s", st, hd.LastBody)
	}
	for _, bad := range []any{map[string]any{"quietHours": map[string]string{"start": "25:00", "end": "07:00"}}, "x", map[string]any{"quietHours": 1}} {
		if st, _ := hd.Raw("PUT", "/v1/me/preferences", bad, nil); st != 400 {
			t.Errorf("bad preferences %v: %d", bad, st)
		}
	}
	before := len(fake.Of("notification", "tok-h"))
	clock.Advance(8*time.Hour + 29*time.Minute + 58*time.Second) // 06:59:58 the next morning
	d, w = h.Login("dispatcher", "desk-q2"), h.Login("worker1", "w-q2")
	quiet := report(t, w, "place.sanitation")
	mustMove(t, d, "accept", map[string]any{"incidentId": quiet})
	mustMove(t, d, "assign", map[string]any{"incidentId": quiet, "assigneeId": "handler"})
	hd = h.Login("handler", "phone-h")
	waitFor(t, "the quiet-hours notification in the inbox", func() bool { return slices.Contains(kindsFor(t, hd, quiet), "assigned") })
	time.Sleep(1500 * time.Millisecond)
	if n := len(fake.Of("notification", "tok-h")); n != before {
		t.Fatalf("pushed during quiet hours: %d new", n-before)
	}
	clock.Advance(5 * time.Second) // 07:00:03: the held push goes out
	waitFor(t, "the held push after quiet hours", func() bool { return len(fake.Of("notification", "tok-h")) == before+1 })

	// Logged out: the device's token is dropped, nothing more is pushed to it.
	if st := hd.Do("POST", "/v1/auth/logout", nil, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	waitFor(t, "the logged-out device silenced", func() bool { return h.Node.Poker.Watching() == 0 })
	after := report(t, w, "place.sanitation")
	mustMove(t, d, "accept", map[string]any{"incidentId": after})
	mustMove(t, d, "assign", map[string]any{"incidentId": after, "assigneeId": "handler"})
	time.Sleep(800 * time.Millisecond)
	if n := len(fake.Of("notification", "tok-h")); n != before+1 {
		t.Errorf("a logged-out device got %d more pushes", n-before-1)
	}
}

// 503 then 200: the SDK retries after the Retry-After; 429 (quota) then 200: the
// pusher retries after the Retry-After it was given. Both arrive once.
func TestPushRetriesWithBackoff(t *testing.T) {
	fake := notifytest.NewFCM(t)
	h, p := startLifecycle(t, nil)
	h.Restart(func(c *node.Config, o *node.Options) { o.Sender = fake.Sender(t) })
	w, d, hd := h.Login("worker1", "w-r"), h.Login("dispatcher", "desk-r"), h.Login("handler", "phone-r")
	_ = p
	register(t, hd, "tok-h", "zh-CN")
	waitFor(t, "the device registered", func() bool { return h.Node.Poker.Watching() == 1 })
	for _, c := range []struct {
		status int
		after  string
	}{{503, "1"}, {429, "2"}} {
		attempts := len(fake.Attempts())
		fake.Fail("notification", 1, c.status, c.after)
		id := report(t, w, "place.sanitation")
		mustMove(t, d, "accept", map[string]any{"incidentId": id})
		mustMove(t, d, "assign", map[string]any{"incidentId": id, "assigneeId": "handler"})
		waitFor(t, "the push after a failure", func() bool {
			for _, r := range fake.Of("notification", "tok-h") {
				if r.Data["incidentId"] == id {
					return true
				}
			}
			return false
		})
		as := fake.Attempts()[attempts:]
		var failed, ok time.Time
		for _, a := range as {
			if a.Type != "notification" {
				continue
			}
			if a.Status == c.status && failed.IsZero() {
				failed = a.At
			}
			if a.Status == 200 && !failed.IsZero() && ok.IsZero() {
				ok = a.At
			}
		}
		wait := ok.Sub(failed)
		secs := map[string]time.Duration{"1": time.Second, "2": 2 * time.Second}[c.after]
		if failed.IsZero() || ok.IsZero() || wait < secs-50*time.Millisecond || wait > secs+5*time.Second {
			t.Errorf("%d then 200: retried after %v, want about the Retry-After of %v (%+v)", c.status, wait, secs, as)
		}
		t.Logf("%d with Retry-After %ss: delivered %v later", c.status, c.after, wait.Round(time.Millisecond))
	}
}

// A crash between filing a notification and sending it: the push goes out once gridd
// is back; the inbox holds the notification once.
func TestPushAfterCrash(t *testing.T) {
	fake := notifytest.NewFCM(t)
	stuck := &stuckSender{}
	h, _ := startLifecycle(t, nil)
	h.Restart(func(c *node.Config, o *node.Options) {
		o.Sender = stuck
		o.Push.AckWait = time.Second
	})
	w, d, hd := h.Login("worker1", "w-c"), h.Login("dispatcher", "desk-c"), h.Login("handler", "phone-c")
	register(t, hd, "tok-h", "zh-CN")
	waitFor(t, "the device registered", func() bool { return h.Node.Poker.Watching() == 1 })
	id := report(t, w, "place.sanitation")
	mustMove(t, d, "accept", map[string]any{"incidentId": id})
	mustMove(t, d, "assign", map[string]any{"incidentId": id, "assigneeId": "handler"})
	waitFor(t, "the pusher to be sending", func() bool { return stuck.calls.Load() > 0 })
	h.Restart(func(c *node.Config, o *node.Options) { o.Sender = fake.Sender(t) }) // the send never finished
	waitFor(t, "the push after the restart", func() bool {
		for _, r := range fake.Of("notification", "tok-h") {
			if r.Data["incidentId"] == id {
				return true
			}
		}
		return false
	})
	hd = h.Login("handler", "phone-c")
	if kinds := kindsFor(t, hd, id); !slices.Equal(kinds, []string{"assigned"}) {
		t.Errorf("inbox after the crash: %v", kinds)
	}
}

// stuckSender never finishes a send until gridd stops: a crash in the middle of it.
type stuckSender struct{ calls atomic.Int32 }

func (s *stuckSender) Send(ctx context.Context, msgs []notify.Message) []notify.Result {
	for _, m := range msgs {
		if m.Data["type"] == "notification" {
			s.calls.Add(1)
		}
	}
	<-ctx.Done()
	out := make([]notify.Result, len(msgs))
	for i := range out {
		out[i].Err = ctx.Err()
	}
	return out
}
