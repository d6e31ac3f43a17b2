package node_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/notify"
	"github.com/gridkeeper/gridkeeper/services/notify/notifytest"
	"github.com/gridkeeper/gridkeeper/services/org"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkNotifications measures the notification fan-out on the embedded default:
// domain events (incident.assigned) published straight into the event stream go
// through the notifier (rules, recipient lookup, filing each in the inbox through the
// write path) and the pusher to the real firebase SDK and a fake FCM.
//   - burst: 2,000 events at once; events/s until the last push reached the fake,
//     beside the raw rate of reading the same events from the stream;
//   - steady: 100 events/s for 10 s; from the event's publish to the HTTP request at
//     the fake, p50/p99.
//
// Median of benchRuns runs.
func BenchmarkNotifications(b *testing.B) {
	const burst, rate, seconds = 2000, 100, 10
	var rates, raws, p50s, p99s []float64
	for run := 0; run < benchRuns; run++ {
		fake := notifytest.NewFCM(b)
		h := nodetest.StartEmbedded(b, b.TempDir(), func(c *node.Config, o *node.Options) { o.Sender = fake.Sender(b) })
		h.Org(1)
		hd := h.Login("handler", "bench-phone")
		if st := hd.Do("PUT", "/v1/devices/bench-phone", map[string]any{"pushToken": "tok-bench", "platform": "android", "appVersion": "1"}, nil); st != 200 {
			b.Fatalf("register: %d", st)
		}
		for h.Node.Poker.Watching() != 1 {
			time.Sleep(10 * time.Millisecond)
		}
		t := newNotifyTrace(b, h, fake)

		start := time.Now()
		for i := 0; i < burst; i++ {
			t.publish(false)
		}
		t.wait(burst)
		elapsed := time.Since(start)
		rates = append(rates, float64(burst)/elapsed.Seconds())
		raws = append(raws, float64(t.events())/rawStreamRead(b, h, h.Node.Names.EvtStream(), h.Node.Names.EvtSubject("incident.assigned", ">")))

		t.reset()
		tick := time.NewTicker(time.Second / rate)
		for i := 0; i < rate*seconds; i++ {
			<-tick.C
			t.publish(true)
		}
		tick.Stop()
		t.wait(rate * seconds)
		lat := t.latencies()
		p50s = append(p50s, float64(percentile(lat, 0.5).Microseconds())/1000)
		p99s = append(p99s, float64(percentile(lat, 0.99).Microseconds())/1000)
		t.stop()
		h.Stop()
	}
	b.ReportMetric(median(rates), "notifications/s")
	b.ReportMetric(median(raws), "raw-consume-events/s")
	b.ReportMetric(median(rates)/median(raws), "notify/raw-ratio")
	b.ReportMetric(median(p50s), "event-to-fcm-p50-ms")
	b.ReportMetric(median(p99s), "event-to-fcm-p99-ms")
}

// notifyTrace publishes synthetic domain events and follows each to the fake FCM.
type notifyTrace struct {
	b    *testing.B
	h    *nodetest.Harness
	fake *notifytest.FCM
	sub  *nats.Subscription

	mu      sync.Mutex
	sent    map[string]time.Time // event id → publish time
	notif   map[string]string    // notification id → event id
	counted int                  // fake requests already matched
	arrived map[string]time.Time // event id → push at the fake
	total   int
}

func newNotifyTrace(b *testing.B, h *nodetest.Harness, fake *notifytest.FCM) *notifyTrace {
	t := &notifyTrace{b: b, h: h, fake: fake, sent: map[string]time.Time{}, notif: map[string]string{}, arrived: map[string]time.Time{}}
	sub, err := h.Node.NC.Subscribe(h.Node.Names.EvtSubject(notify.CreatedEvent, ">"), func(m *nats.Msg) {
		var ev command.Event
		var n notify.Notification
		if json.Unmarshal(m.Data, &ev) == nil && json.Unmarshal(ev.Data, &n) == nil {
			t.mu.Lock()
			t.notif[n.ID] = n.Event
			t.mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	t.sub = sub
	return t
}

func (t *notifyTrace) publish(timed bool) {
	id := uuid.NewString()
	inc := map[string]any{"id": uuid.Must(uuid.NewV7()).String(), "status": "assigned", "unitId": nodetest.CommunityA,
		"category": "place.sanitation", "description": "bench", "assigneeId": "handler", "reporterId": "worker1"}
	data, _ := json.Marshal(inc)
	ev, _ := json.Marshal(command.Event{ID: id, Type: "incident.assigned", Actor: org.SystemActor("bench"), At: time.Now().UTC(), Data: data})
	t.mu.Lock()
	t.sent[id] = time.Now()
	t.total++
	t.mu.Unlock()
	if _, err := t.h.Node.JS.Publish(context.Background(), t.h.Node.Names.EvtSubject("incident.assigned", org.PathSubject(nodetest.CommunityA)), ev,
		jetstream.WithMsgID("bench-"+id)); err != nil {
		t.b.Fatal(err)
	}
}

// match attributes the fake's new requests to their events.
func (t *notifyTrace) match() int {
	reqs := t.fake.Of("notification", "tok-bench")
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range reqs[t.counted:] {
		ids := strings.Split(r.Data["ids"], ",")
		if r.Data["id"] != "" {
			ids = []string{r.Data["id"]}
		}
		for _, nid := range ids {
			if ev, ok := t.notif[nid]; ok {
				if _, seen := t.arrived[ev]; !seen {
					t.arrived[ev] = r.At
				}
			}
		}
	}
	t.counted = len(reqs)
	n := 0
	for ev := range t.sent {
		if _, ok := t.arrived[ev]; ok {
			n++
		}
	}
	return n
}

func (t *notifyTrace) wait(n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for t.match() < n {
		if time.Now().After(deadline) {
			t.b.Fatalf("%d of %d notifications pushed", t.match(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (t *notifyTrace) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for ev, t0 := range t.sent {
		if t1, ok := t.arrived[ev]; ok {
			out = append(out, t1.Sub(t0))
		}
	}
	return out
}

func (t *notifyTrace) events() int { t.mu.Lock(); defer t.mu.Unlock(); return t.total }

func (t *notifyTrace) reset() {
	t.mu.Lock()
	t.sent, t.arrived = map[string]time.Time{}, map[string]time.Time{}
	t.mu.Unlock()
}

func (t *notifyTrace) stop() { _ = t.sub.Unsubscribe() }
