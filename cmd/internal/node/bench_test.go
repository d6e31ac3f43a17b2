package node_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node"
	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Benchmarks of the write path. Each reports a figure beside its limit measured in the
// same run on the same servers: raw JetStream async publish of the same command
// messages, and raw InsertMany of the same incident documents. Every figure is the
// median of 5 runs (this machine is noisy). Run with `make bench`.

const benchRuns = 5

// pushLoad is how many handsets push how many reports, in batches of what size.
type pushLoad struct {
	clients, perClient, batch int
	workers                   int // devices are spread over this many grid workers
}

var pushLoads = map[string]pushLoad{
	// 50 handsets of 5 workers in one community: one partition takes everything.
	"clients=50": {clients: 50, perClient: 200, batch: 50, workers: 5},
	// 200 handsets of 20 workers, still one community and one partition (the sync
	// issue's fleet size): 100 reports each in pushes of 25.
	"clients=200": {clients: 200, perClient: 100, batch: 25, workers: 20},
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// backends lists the databases to measure on: the embedded default (SQLite), and
// FerretDB on PostgreSQL when GRID_BENCH_POSTGRESQL_URL names one.
func backends() map[string]func(*node.Config, *node.Options) {
	m := map[string]func(*node.Config, *node.Options){
		"sqlite": func(c *node.Config, _ *node.Options) { c.PushWait = time.Minute },
	}
	if pg := os.Getenv("GRID_BENCH_POSTGRESQL_URL"); pg != "" {
		m["postgresql"] = func(c *node.Config, _ *node.Options) {
			c.PushWait, c.PostgreURL = time.Minute, pg
			c.MongoDB = fmt.Sprintf("bench%d", time.Now().UnixNano()) // every run on fresh tables
		}
	}
	return m
}

func BenchmarkWritePath(b *testing.B) {
	for name, mod := range backends() {
		for lname, load := range pushLoads {
			b.Run(name+"/"+lname, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					benchWritePath(b, mod, load)
				}
			})
		}
	}
}

func benchWritePath(b *testing.B, mod func(*node.Config, *node.Options), load pushLoad) {
	benchClients, benchPerClient, benchBatch := load.clients, load.perClient, load.batch
	var pushRate, jsRate, insertRate []float64
	var lat []time.Duration
	for run := 0; run < benchRuns; run++ {
		h := nodetest.StartEmbedded(b, b.TempDir(), mod)
		h.Org(load.workers)
		clients := make([]*nodetest.Client, benchClients)
		for i := range clients {
			clients[i] = h.Login(fmt.Sprintf("worker%d", i%load.workers+1), fmt.Sprintf("bench-%d", i))
		}
		// Prepare every mutation first so only the push is timed.
		batches := make([][][]nodetest.Mutation, benchClients)
		for i, c := range clients {
			for k := 0; k < benchPerClient/benchBatch; k++ {
				names := make([]string, benchBatch)
				args := make([]any, benchBatch)
				for j := range names {
					names[j], args[j] = "incident.report", nodetest.Report(newID(b))
				}
				batches[i] = append(batches[i], c.Queue(names, args))
			}
		}
		start := time.Now()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, m := range batches[i] {
					st, r := c.Push(m)
					if st != 200 || r.Results[len(r.Results)-1].Status != "applied" {
						b.Errorf("push: %d %s", st, c.LastBody)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		total := benchClients * benchPerClient
		pushRate = append(pushRate, float64(total)/elapsed.Seconds())

		// Limit 1: raw JetStream async publish of the same command payloads.
		cmds := commandPayloads(b, h, total)
		jsRate = append(jsRate, rawPublish(b, h.Node.JS, cmds))
		// Limit 2: raw InsertMany of the same incident documents.
		insertRate = append(insertRate, rawInsert(b, h.Node.DB))
		// End to end: push one report, pull until it is there.
		lat = append(lat, pushToPullable(b, h, 40)...)
		h.Stop()
	}
	b.ReportMetric(median(pushRate), "push-mutations/s")
	b.ReportMetric(median(jsRate), "raw-js-publish-msgs/s")
	b.ReportMetric(median(insertRate), "raw-insertmany-docs/s")
	b.ReportMetric(median(pushRate)/median(jsRate), "push/js-ratio")
	b.ReportMetric(median(pushRate)/median(insertRate), "push/insert-ratio")
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "e2e-p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "e2e-p99-ms")
}

// commandPayloads makes n command messages shaped like those a push publishes.
func commandPayloads(b *testing.B, h *nodetest.Harness, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		data, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("bench-x:%d", i), "name": "incident.report",
			"args": nodetest.Report(newID(b)), "actor": map[string]any{"userId": "worker1", "roles": []string{"grid_manager"}, "unitId": nodetest.GridA(1)},
			"clientId": "bench-x", "mutationId": i + 1, "issuedAt": time.Now(), "key": nodetest.CommunityA})
		out[i] = data
	}
	return out
}

func rawPublish(b *testing.B, js jetstream.JetStream, payloads [][]byte) float64 {
	ctx := context.Background()
	name := fmt.Sprintf("RAW%d", time.Now().UnixNano())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(ctx, name)
	start := time.Now()
	for i, p := range payloads {
		m := nats.NewMsg(name + ".cmd")
		m.Data = p
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw publish did not complete")
	}
	return float64(len(payloads)) / time.Since(start).Seconds()
}

func rawInsert(b *testing.B, db *mongo.Database) float64 {
	ctx := context.Background()
	cur, err := db.Collection("incidents").Find(ctx, bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	var docs []bson.Raw
	for cur.Next(ctx) {
		docs = append(docs, slices.Clone(cur.Current))
	}
	coll := db.Collection(fmt.Sprintf("raw%d", time.Now().UnixNano()))
	defer coll.Drop(ctx)
	start := time.Now()
	for i := 0; i < len(docs); i += 256 {
		batch := make([]any, 0, 256)
		for _, d := range docs[i:min(len(docs), i+256)] {
			batch = append(batch, d)
		}
		if _, err := coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatal(err)
		}
	}
	return float64(len(docs)) / time.Since(start).Seconds()
}

// pushToPullable measures, n times, from the start of a push of one report to the
// moment a pull by another device returns it.
func pushToPullable(b *testing.B, h *nodetest.Harness, n int) []time.Duration {
	w := h.Login("worker1", "lat-w")
	d := h.Login("dispatcher", "lat-d")
	cursor := ""
	for { // catch up first
		_, p := d.Pull(cursor, 500)
		cursor = p.Cursor
		if !p.HasMore {
			break
		}
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		id := newID(b)
		start := time.Now()
		w.Push(w.Queue([]string{"incident.report"}, []any{nodetest.Report(id)}))
		for found := false; !found; {
			_, p := d.Pull(cursor, 500)
			cursor = p.Cursor
			for _, c := range p.Changes {
				found = found || c.ID == id
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("report never became pullable")
			}
		}
		out = append(out, time.Since(start))
	}
	return out
}

// BenchmarkPull measures a first sync of a grid holding 5,000 records to a fresh
// device (pages of 500), and idle delta pulls, beside the limit of reading the same
// records straight from the change-feed stream with one consumer.
func BenchmarkPull(b *testing.B) {
	const records = 5000
	for i := 0; i < b.N; i++ {
		h := nodetest.StartEmbedded(b, b.TempDir(), func(c *node.Config, _ *node.Options) { c.PushWait = time.Minute })
		h.Org(1)
		seedIncidents(b, h, records)
		var first, raw []float64
		var pages, bytes, gz int
		for run := 0; run < benchRuns; run++ {
			c := h.Login("worker1", fmt.Sprintf("fresh-%d", run))
			start := time.Now()
			cursor, n := "", 0
			pages, bytes, gz = 0, 0, 0
			for {
				st, body := c.Raw("POST", "/v1/sync/pull", map[string]any{"clientId": c.Device, "schemaVersion": 1, "cursor": cursor, "limit": 500}, nil)
				var p nodetest.PullPage
				if st != 200 || json.Unmarshal(body, &p) != nil {
					b.Fatalf("pull: %d", st)
				}
				pages++
				bytes += len(body)
				gz += gzipSize(body)
				n += len(p.Changes)
				cursor = p.Cursor
				if !p.HasMore {
					break
				}
			}
			first = append(first, time.Since(start).Seconds())
			if n < records {
				b.Fatalf("first sync got %d records, want ≥ %d", n, records)
			}
			raw = append(raw, rawStreamRead(b, h, h.Node.Names.ChgStream()))
		}
		c := h.Login("worker1", "idle")
		_, p := c.Pull("", 500)
		for p.HasMore {
			_, p = c.Pull(p.Cursor, 500)
		}
		var idle []time.Duration
		for k := 0; k < 200; k++ {
			start := time.Now()
			c.Pull(p.Cursor, 500)
			idle = append(idle, time.Since(start))
		}
		b.ReportMetric(median(first)*1000, "first-sync-5000-ms")
		b.ReportMetric(float64(pages), "first-sync-pages")
		b.ReportMetric(float64(bytes)/1024, "first-sync-KiB")
		b.ReportMetric(float64(gz)/1024, "first-sync-gzip-KiB")
		b.ReportMetric(median(raw)*1000, "raw-stream-read-5000-ms")
		b.ReportMetric(median(first)/median(raw), "first-sync/raw-ratio")
		b.ReportMetric(float64(percentile(idle, 0.5).Microseconds())/1000, "idle-pull-p50-ms")
		b.ReportMetric(float64(percentile(idle, 0.99).Microseconds())/1000, "idle-pull-p99-ms")
		h.Stop()
	}
}

// seedIncidents stores n incidents in grid A1 through the command path.
func seedIncidents(b *testing.B, h *nodetest.Harness, n int) {
	w := h.Login("worker1", "seeder")
	for done := 0; done < n; done += 250 {
		names, args := make([]string, 250), make([]any, 250)
		for k := range names {
			names[k], args[k] = "incident.report", nodetest.Report(newID(b))
		}
		if st, r := w.Push(w.Queue(names, args)); st != 200 || r.Results[249].Status != "applied" {
			b.Fatalf("seed: %d", st)
		}
	}
}

// rawStreamRead reads the whole change feed with one ordered consumer: the floor for a
// first sync.
// rawStreamRead is the seconds an ordered consumer takes to read every message of a
// stream (of the filters' subjects, when given).
func rawStreamRead(b *testing.B, h *nodetest.Harness, stream string, filters ...string) float64 {
	ctx := context.Background()
	start := time.Now()
	cons, err := h.Node.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		b.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	want := int(info.NumPending)
	for got := 0; got < want; {
		batch, err := cons.Fetch(min(500, want-got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	return time.Since(start).Seconds()
}

func gzipSize(b []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Len()
}

// BenchmarkPullUnderLoad: 200 devices of one grid pull in a loop while a writer adds
// 100 reports a second for 10 s; pull latency p50/p99 while writing, and how many of
// the written reports each device missed once it caught up (must be none).
func BenchmarkPullUnderLoad(b *testing.B) {
	const devices, rate, seconds = 200, 100, 10
	for i := 0; i < b.N; i++ {
		h := nodetest.StartEmbedded(b, b.TempDir(), func(c *node.Config, _ *node.Options) { c.PushWait = time.Minute })
		h.Org(1)
		clients := make([]*nodetest.Client, devices)
		cursors := make([]string, devices)
		seen := make([]map[string]bool, devices)
		for k := range clients {
			clients[k] = h.Login("worker1", fmt.Sprintf("dev-%03d", k))
			seen[k] = map[string]bool{}
		}
		var mu sync.Mutex
		var lat []time.Duration
		pullOnce := func(k int) bool {
			start := time.Now()
			_, p := clients[k].Pull(cursors[k], 500)
			d := time.Since(start)
			for _, c := range p.Changes {
				seen[k][c.ID] = true
			}
			cursors[k] = p.Cursor
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
			return p.HasMore
		}
		for k := range clients { // first sync: everyone up to date
			for pullOnce(k) {
			}
		}
		lat = nil
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						pullOnce(k)
						time.Sleep(time.Duration(500+k%500) * time.Millisecond) // a poke-driven device pulls now and then
					}
				}
			}()
		}
		w := h.Login("worker1", "writer")
		var written []string
		tick := time.NewTicker(time.Second / 10)
		for n := 0; n < rate*seconds; n += 10 {
			<-tick.C
			names, args := make([]string, 10), make([]any, 10)
			for j := range names {
				id := newID(b)
				written = append(written, id)
				names[j], args[j] = "incident.report", nodetest.Report(id)
			}
			w.Push(w.Queue(names, args))
		}
		tick.Stop()
		close(stop)
		wg.Wait()
		mu.Lock()
		during := lat
		mu.Unlock()
		missed := 0
		for k := range clients {
			for pullOnce(k) {
			}
			for _, id := range written {
				if !seen[k][id] {
					missed++
				}
			}
		}
		b.ReportMetric(float64(len(during)), "pulls-during-load")
		b.ReportMetric(float64(percentile(during, 0.5).Microseconds())/1000, "loaded-pull-p50-ms")
		b.ReportMetric(float64(percentile(during, 0.99).Microseconds())/1000, "loaded-pull-p99-ms")
		b.ReportMetric(float64(missed), "changes-missed")
		h.Stop()
	}
}

// BenchmarkRouting measures, at 100 reports a second for 10 s from 50 handsets (5
// workers × 10 devices, each pushing one report every 0.5 s), the time from the start
// of a report's push to the router's decision event (incident.routed), beside the raw
// JetStream publish → consume round trip of messages of the same size at the same rate
// on the same node. Half the reports are in a category the community handles (queued),
// half in one the street handles (passed up once: the first decision is timed).
// Median of benchRuns runs.
func BenchmarkRouting(b *testing.B) {
	const devices, perDevice, every = 50, 20, 500 * time.Millisecond // 100 reports/s for 10 s
	var p50s, p99s, pushP50s, pushP99s, rawP50s, rawP99s []float64
	for run := 0; run < benchRuns; run++ {
		h := nodetest.StartEmbedded(b, b.TempDir(), nil) // the embedded default: partitions preloaded
		h.Org(5)
		ctx := context.Background()
		var mu sync.Mutex
		decided := map[string]time.Time{}
		sub, err := h.Node.NC.Subscribe(h.Node.Names.EvtSubject("incident.routed", ">"), func(m *nats.Msg) {
			var ev struct {
				Data struct {
					IncidentID string `json:"incidentId"`
				} `json:"data"`
			}
			now := time.Now()
			if json.Unmarshal(m.Data, &ev) == nil {
				mu.Lock()
				if _, ok := decided[ev.Data.IncidentID]; !ok {
					decided[ev.Data.IncidentID] = now
				}
				mu.Unlock()
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		clients := make([]*nodetest.Client, devices)
		for i := range clients {
			clients[i] = h.Login(fmt.Sprintf("worker%d", i%5+1), fmt.Sprintf("route-%d", i))
		}
		started := map[string]time.Time{}
		var pushLat []time.Duration
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(every * time.Duration(i) / devices) // spread the devices over the period
				tick := time.NewTicker(every)
				defer tick.Stop()
				for n := 0; n < perDevice; n++ {
					id := newID(b)
					args := nodetest.Report(id)
					if n%2 == 1 {
						args["category"] = "thing.streetlight" // handled by the street
					}
					m := c.Queue([]string{"incident.report"}, []any{args})
					t0 := time.Now()
					mu.Lock()
					started[id] = t0
					mu.Unlock()
					if st, _ := c.Push(m); st != 200 {
						b.Errorf("push: %d %s", st, c.LastBody)
						return
					}
					mu.Lock()
					pushLat = append(pushLat, time.Since(t0))
					mu.Unlock()
					<-tick.C
				}
			}()
		}
		wg.Wait()
		total := devices * perDevice
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(decided)
			mu.Unlock()
			if n >= total || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = sub.Unsubscribe()
		var lat []time.Duration
		mu.Lock()
		for id, t0 := range started {
			if t1, ok := decided[id]; ok {
				lat = append(lat, t1.Sub(t0))
			}
		}
		mu.Unlock()
		if len(lat) != total {
			b.Fatalf("%d of %d reports got a routing decision", len(lat), total)
		}
		p50s = append(p50s, float64(percentile(lat, 0.5).Microseconds())/1000)
		p99s = append(p99s, float64(percentile(lat, 0.99).Microseconds())/1000)
		pushP50s = append(pushP50s, float64(percentile(pushLat, 0.5).Microseconds())/1000)
		pushP99s = append(pushP99s, float64(percentile(pushLat, 0.99).Microseconds())/1000)
		raw := rawRoundTrip(b, ctx, h.Node.JS, 100, 10)
		rawP50s = append(rawP50s, float64(percentile(raw, 0.5).Microseconds())/1000)
		rawP99s = append(rawP99s, float64(percentile(raw, 0.99).Microseconds())/1000)
		h.Stop()
	}
	b.ReportMetric(median(p50s), "route-p50-ms")
	b.ReportMetric(median(p99s), "route-p99-ms")
	b.ReportMetric(median(pushP50s), "push-p50-ms")
	b.ReportMetric(median(pushP99s), "push-p99-ms")
	b.ReportMetric(median(rawP50s), "raw-js-roundtrip-p50-ms")
	b.ReportMetric(median(rawP99s), "raw-js-roundtrip-p99-ms")
	b.ReportMetric(median(p99s)/median(rawP99s), "route/raw-p99-ratio")
}

// rawRoundTrip publishes rate messages a second for seconds to a fresh file stream and
// times each from publish to its delivery to a push consumer.
func rawRoundTrip(b *testing.B, ctx context.Context, js jetstream.JetStream, rate, seconds int) []time.Duration {
	name := fmt.Sprintf("RT%d", time.Now().UnixNano())
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(ctx, name)
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		_ = m.Ack()
		mu.Lock()
		lat = append(lat, now.Sub(sent[m.Headers().Get("id")]))
		if len(lat) == rate*seconds {
			close(done)
		}
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	payload := make([]byte, 600) // about an incident event's size
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 0; i < rate*seconds; i++ {
		<-tick.C
		m := nats.NewMsg(name + ".evt")
		m.Data = payload
		id := fmt.Sprint(i)
		m.Header.Set("id", id)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		if _, err := js.PublishMsg(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatal("raw round trip did not complete")
	}
	return lat
}
