package node_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/pkg/workday"
	"github.com/gridkeeper/gridkeeper/services/stats"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// statsReport is GET /v1/stats as the dashboard reads it.
type statsReport struct {
	stats.Counts
	ClosureRate      *float64 `json:"closureRate"`
	OnTimeRate       *float64 `json:"onTimeRate"`
	SatisfactionRate *float64 `json:"satisfactionRate"`
	RefusalRate      *float64 `json:"refusalRate"`
	Unit             string   `json:"unit"`
	From, To         string
	ByUnit           []struct {
		Key string `json:"key"`
		stats.Counts
		ClosureRate *float64 `json:"closureRate"`
	} `json:"byUnit"`
	ByCategory []struct {
		Key, Name string
		stats.Counts
	} `json:"byCategory"`
	ByDay []struct {
		Key string `json:"key"`
		stats.Counts
	} `json:"byDay"`
	Overdue []stats.OverdueEntry `json:"overdue"`
	Path    []stats.Unit         `json:"path"`
}

// caughtUp waits until the projector has counted every change.
func caughtUp(t *testing.T, h *nodetest.Harness) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ok, err := h.Node.Projector.CaughtUp(context.Background()); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the statistics projector did not catch up in 20 s")
}

// counters reads every counter document as stored.
func counters(t *testing.T, h *nodetest.Harness) map[string]bson.M {
	t.Helper()
	cur, err := h.Node.DB.Collection(stats.Coll).Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var ds []bson.M
	if err := cur.All(context.Background(), &ds); err != nil {
		t.Fatal(err)
	}
	out := map[string]bson.M{}
	for _, d := range ds {
		out[d["_id"].(string)] = d
	}
	return out
}

func rate(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// The dashboard's figures kept live by the projector: a day of four reports in two
// communities read at every level, broken down by child unit, category and day;
// scoped to the caller's subtree; bad queries refused; a live update on the event
// stream when an item closes; and a rebuild from the stored incidents that finds
// nothing to correct — until a counter is tampered with.
func TestStatsLiveScopedAndRebuilt(t *testing.T) {
	h, p := startLifecycle(t, nil)
	wb := h.Login("workerb", "wb")
	a := report(t, p.worker, "place.sanitation")
	b := report(t, p.worker, "place.sanitation")
	c := report(t, p.worker, "thing.facility")
	report(t, wb, "place.sanitation")
	ref := func(id string) map[string]any { return map[string]any{"incidentId": id} }
	mustMove(t, p.dispatcher, "accept", ref(a))
	mustMove(t, p.dispatcher, "assign", map[string]any{"incidentId": a, "assigneeId": "handler"})
	mustMove(t, p.handler, "start", ref(a))
	mustMove(t, p.handler, "resolve", map[string]any{"incidentId": a, "result": "已清运"})
	mustMove(t, p.dispatcher, "verify", ref(a))
	mustMove(t, p.worker, "rate", map[string]any{"incidentId": a, "rating": "satisfied"})
	mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": b, "reason": "不属本社区受理范围"})
	mustMove(t, p.dispatcher, "accept", ref(c))
	caughtUp(t, h)

	today := time.Now().In(workday.Location()).Format(time.DateOnly)
	var r statsReport
	if st := p.district.Do("GET", "/v1/stats", nil, &r); st != 200 {
		t.Fatalf("district: %d %s", st, p.district.LastBody)
	}
	if r.Unit != nodetest.District || r.To != today || r.Reported != 4 || r.Accepted != 2 || r.DueToClose != 2 || r.Closed != 1 ||
		r.ClosedOnTime != 1 || r.Refused != 1 || r.Rated != 1 || r.Satisfied != 1 || r.ResolvedOfReported != 1 ||
		rate(r.ClosureRate) != 0.5 || rate(r.OnTimeRate) != 0.5 || rate(r.SatisfactionRate) != 1 || rate(r.RefusalRate) != 0.25 {
		t.Fatalf("district figures: %+v", r.Counts)
	}
	if len(r.ByUnit) != 1 || r.ByUnit[0].Key != nodetest.Street || r.ByUnit[0].Reported != 4 {
		t.Errorf("district by unit: %+v", r.ByUnit)
	}
	if len(r.Path) != 1 || r.Path[0].ID != nodetest.District {
		t.Errorf("path from the caller's home: %+v", r.Path)
	}
	var day *stats.Counts
	for i := range r.ByDay {
		if r.ByDay[i].Key == today {
			day = &r.ByDay[i].Counts
		}
	}
	if day == nil || day.Reported != 4 || day.Closed != 1 {
		t.Errorf("today in byDay: %+v", day)
	}
	if len(r.ByCategory) != 2 || r.ByCategory[0].Key != "place.sanitation" || r.ByCategory[0].Reported != 3 || r.ByCategory[0].Name == "" ||
		r.ByCategory[1].Key != "thing.facility" || r.ByCategory[1].Reported != 1 {
		t.Errorf("by category: %+v", r.ByCategory)
	}
	// Drill down: the street's communities, community A's grids, grid A1.
	if st := p.district.Do("GET", "/v1/stats?unit="+nodetest.Street, nil, &r); st != 200 || len(r.ByUnit) != 2 ||
		r.ByUnit[0].Key != nodetest.CommunityA || r.ByUnit[0].Reported != 3 || rate(r.ByUnit[0].ClosureRate) != 0.5 ||
		r.ByUnit[1].Key != nodetest.CommunityB || r.ByUnit[1].Reported != 1 || r.ByUnit[1].ClosureRate != nil {
		t.Errorf("street: %d %+v", st, r.ByUnit)
	}
	if st := p.district.Do("GET", "/v1/stats?unit="+nodetest.CommunityA, nil, &r); st != 200 || len(r.ByUnit) != 2 ||
		r.ByUnit[0].Key != nodetest.GridA(1) || r.ByUnit[0].Reported != 3 || r.ByUnit[1].Reported != 0 {
		t.Errorf("community A: %d %+v", st, r.ByUnit)
	}
	if st := p.district.Do("GET", "/v1/stats?unit="+nodetest.GridA(1), nil, &r); st != 200 || r.Reported != 3 || len(r.ByUnit) != 0 ||
		len(r.Path) != 4 {
		t.Errorf("grid A1: %d reported %d, path %+v", st, r.Reported, r.Path)
	}
	// A period before any report counts nothing and gives no rates.
	if st := p.district.Do("GET", "/v1/stats?from=2025-01-01&to=2025-12-31", nil, &r); st != 200 || r.Reported != 0 || r.ClosureRate != nil {
		t.Errorf("2025: %d %+v", st, r.Counts)
	}

	// Scope: everyone sees their own subtree only.
	for _, x := range []struct {
		c      *nodetest.Client
		unit   string
		status int
		rep    int
	}{
		{p.street, "", 200, 4},
		{p.street, nodetest.District, 403, 0},
		{p.dispatcher, "", 200, 3},
		{p.dispatcher, nodetest.CommunityB, 403, 0},
		{p.other, "", 200, 1},
		{p.other, nodetest.CommunityA, 403, 0},
		{p.worker, "", 200, 3},
		{p.worker, nodetest.GridA(2), 403, 0},
		{p.worker, nodetest.CommunityA, 403, 0},
		{p.city, nodetest.CommunityB, 200, 1},
	} {
		var got statsReport
		st := x.c.Do("GET", "/v1/stats?unit="+x.unit, nil, &got)
		if st != x.status || (st == 200 && got.Reported != x.rep) {
			t.Errorf("%s asks for %q: %d reported %d, want %d and %d", x.c.Device, x.unit, st, got.Reported, x.status, x.rep)
		}
	}
	// Bad queries: a clear error.
	for q, want := range map[string]string{
		"unit=12":                               "invalid_request",
		"unit=%7B%22%24ne%22%3A1%7D":            "invalid_request",
		"from=yesterday":                        "invalid_request",
		"from=2026-02-30":                       "invalid_request",
		"from=2026-10-02&to=2026-10-01":         "invalid_request",
		"from=2020-01-01&to=2026-10-01":         "invalid_request",
		"lang=fr":                               "invalid_request",
		"format=xml":                            "invalid_request",
		"format=csv&table=secrets":              "invalid_request",
		"format=csv&table=days&from=2024-01-01": "invalid_request",
		"unit=110105009":                        "not_found",
	} {
		st, body := p.district.Raw("GET", "/v1/stats?"+q, nil, nil)
		if st/100 != 4 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s", q, st, body)
		}
	}
	if st, _ := h.Anon().Raw("GET", "/v1/stats", nil, nil); st != 401 {
		t.Errorf("no token: %d", st)
	}
	// Every table as CSV.
	for table, rows := range map[string]int{"summary": 2, "units": 2, "categories": 3, "months": 14, "overdue": 1} {
		st, body := p.district.Raw("GET", "/v1/stats?format=csv&table="+table, nil, nil)
		lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(string(body), "\ufeff")), "\n")
		if st != 200 || len(lines) != rows {
			t.Errorf("CSV %s: %d, %d lines: %s", table, st, len(lines), body)
		}
	}

	// Live: the dispatcher's stream is told when the open item closes.
	req, _ := http.NewRequest("GET", h.URL+"/v1/stats/events?unit="+nodetest.CommunityA, nil)
	req.Header.Set("Authorization", "Bearer "+p.dispatcher.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("event stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	events := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				events <- sc.Text()
			}
		}
		close(events)
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	mustMove(t, p.dispatcher, "assign", map[string]any{"incidentId": c, "assigneeId": "handler"})
	select {
	case e := <-events:
		if e != "event: stats" {
			t.Errorf("event: %q", e)
		}
		t.Logf("live update %v after the move", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Error("no live update within 10 s")
	}
	caughtUp(t, h)

	// A rebuild from the stored incidents agrees with the live counters.
	before := counters(t, h)
	admin := h.Login("admin", "adm")
	if st := p.district.Do("POST", "/v1/admin/stats/rebuild", nil, nil); st != 403 {
		t.Errorf("a leader rebuilds: %d", st)
	}
	var rb stats.RebuildReport
	if st := admin.Do("POST", "/v1/admin/stats/rebuild", nil, &rb); st != 200 || rb.Items != 4 || rb.Differences != 0 || rb.Documents != len(before) {
		t.Fatalf("rebuild: %d %+v (live documents %d)", st, rb, len(before))
	}
	if after := counters(t, h); !reflect.DeepEqual(before, after) {
		t.Errorf("the rebuild changed the counters:\nbefore %v\nafter  %v", before, after)
	}
	// A tampered counter is found and put right.
	id := nodetest.District + "/y/" + today[:4]
	if _, err := h.Node.DB.Collection(stats.Coll).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "total.rp", Value: 40}}}}); err != nil {
		t.Fatal(err)
	}
	if st := admin.Do("POST", "/v1/admin/stats/rebuild", nil, &rb); st != 200 || rb.Differences != 1 {
		t.Errorf("rebuild after tampering: %d %+v", st, rb)
	}
	if after := counters(t, h); !reflect.DeepEqual(before, after) {
		t.Errorf("the tampered counter was not put right")
	}
}

// Crash safety: the projector dies after writing a batch's journal and before writing
// its documents; after the restart the journal is written again, the redelivered
// changes are skipped as counted, and the figures equal a rebuild — nothing lost,
// nothing counted twice.
// The projector stops dead at a stage of a batch — after fetching it (nothing written,
// its changes delivered and not acknowledged) or after writing its journal — and gridd
// is restarted: every change is counted exactly once. With cumulative acks the first
// stage lost changes (the restarted projector's first ack covered them unseen), found
// by gridlab chaos.
func TestStatsProjectorCrash(t *testing.T) {
	for _, stage := range []string{"fetched", "journaled"} {
		t.Run(stage, func(t *testing.T) { projectorCrash(t, stage) })
	}
}

func projectorCrash(t *testing.T, stage string) {
	stuck := make(chan struct{})
	var once atomic.Bool
	arm := make(chan struct{})
	h, p := startLifecycle(t, nil)
	h.Restart(func(c *node.Config, o *node.Options) {
		// Long enough for the changes after the restart to be counted before the
		// ones cut short are delivered again.
		o.Stats.AckWait = 6 * time.Second
		o.Stats.Hook = func(at string) {
			select {
			case <-arm:
				if at == stage && once.CompareAndSwap(false, true) {
					close(stuck)
					select {} // dies here
				}
			default:
			}
		}
	})
	p = relogin(h, "r1")
	var ids []string
	for range 10 {
		ids = append(ids, report(t, p.worker, "place.sanitation"))
	}
	caughtUp(t, h)
	close(arm)
	for _, id := range ids[:6] {
		mustMove(t, p.dispatcher, "accept", map[string]any{"incidentId": id})
	}
	select {
	case <-stuck:
	case <-time.After(10 * time.Second):
		t.Fatalf("the projector never reached %q", stage)
	}
	h.Restart(func(c *node.Config, o *node.Options) { o.Stats.Hook = nil })
	p = relogin(h, "r2") // new devices: a device's mutation ids go on across logins
	for _, id := range ids[6:8] {
		mustMove(t, p.dispatcher, "refuse", map[string]any{"incidentId": id, "reason": fmt.Sprint("重复 ", id)})
	}
	caughtUp(t, h)
	time.Sleep(7 * time.Second) // past the AckWait: the batch cut short is delivered again
	caughtUp(t, h)
	var r statsReport
	if st := p.district.Do("GET", "/v1/stats", nil, &r); st != 200 || r.Reported != 10 || r.Accepted != 6 || r.DueToClose != 6 || r.Refused != 2 {
		t.Errorf("after the crash: %d %+v", st, r.Counts)
	}
	var rb stats.RebuildReport
	if st := h.Login("admin", "adm").Do("POST", "/v1/admin/stats/rebuild", nil, &rb); st != 200 || rb.Differences != 0 || rb.Items != 10 {
		t.Errorf("rebuild after the crash: %d %+v", st, rb)
	}
}

// A projector consumer made by an earlier gridd (cumulative acks, which cannot be
// changed in place) is replaced by one starting after what it acknowledged: nothing
// is counted twice or lost.
func TestStatsConsumerUpgrade(t *testing.T) {
	h, p := startLifecycle(t, nil)
	var ids []string
	for range 4 {
		ids = append(ids, report(t, p.worker, "place.sanitation"))
	}
	caughtUp(t, h)
	ctx := context.Background()
	js, err := jetstream.New(h.Env.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, h.Node.Names.ChgStream())
	if err != nil {
		t.Fatal(err)
	}
	h.Restart(func(c *node.Config, o *node.Options) {
		// As an earlier gridd left it: cumulative acks, all four reports acknowledged.
		old, err := stream.Consumer(ctx, stats.Durable)
		if err != nil {
			t.Fatal(err)
		}
		cfg := old.CachedInfo().Config
		if err := stream.DeleteConsumer(ctx, stats.Durable); err != nil {
			t.Fatal(err)
		}
		cfg.AckPolicy = jetstream.AckAllPolicy
		ackAll, err := stream.CreateConsumer(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ackAll.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var last jetstream.Msg
		for m := range b.Messages() {
			last = m
		}
		if last == nil {
			t.Fatal("no change on the feed")
		}
		if err := last.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	})
	p = relogin(h, "u1")
	mustMove(t, p.dispatcher, "accept", map[string]any{"incidentId": ids[0]})
	caughtUp(t, h)
	cons, err := stream.Consumer(ctx, stats.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if c := cons.CachedInfo().Config; c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || c.OptStartSeq == 0 {
		t.Fatalf("consumer after the upgrade: %+v", c)
	}
	var r statsReport
	if st := p.district.Do("GET", "/v1/stats", nil, &r); st != 200 || r.Reported != 4 || r.Accepted != 1 {
		t.Errorf("after the upgrade: %d %+v", st, r.Counts)
	}
	var rb stats.RebuildReport
	if st := h.Login("admin", "adm").Do("POST", "/v1/admin/stats/rebuild", nil, &rb); st != 200 || rb.Differences != 0 {
		t.Errorf("rebuild after the upgrade: %d %+v", st, rb)
	}
}

// relogin logs the lifecycle cast in again on new devices.
func relogin(h *nodetest.Harness, suffix string) lifecycleCast {
	return lifecycleCast{
		worker: h.Login("worker1", "w1"+suffix), dispatcher: h.Login("dispatcher", "desk-a"+suffix), handler: h.Login("handler", "h1"+suffix),
		street: h.Login("street", "st"+suffix), district: h.Login("district", "dt"+suffix), city: h.Login("city", "ct"+suffix),
		other: h.Login("dispatcherb", "desk-b"+suffix), discipline: h.Login("discipline", "dsc"+suffix),
	}
}
