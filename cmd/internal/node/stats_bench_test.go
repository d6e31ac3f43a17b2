package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gridkeeper/gridkeeper/cmd/internal/node/nodetest"
	"github.com/gridkeeper/gridkeeper/services/command"
	"github.com/gridkeeper/gridkeeper/services/incident"
	"github.com/gridkeeper/gridkeeper/services/org"
)

// BenchmarkStatsProjector feeds the statistics projector 20,000 incidents, each as two
// versions on the change feed (reported, then closed and rated — the second takes the
// first out of the counters and puts itself in), and times it until it has caught up;
// beside it, a plain consumer reading the same messages. Median of 3 runs, embedded
// default.
func BenchmarkStatsProjector(b *testing.B) {
	const n = 20000
	var rates, raws []float64
	for run := 0; run < 3; run++ {
		h := nodetest.StartEmbedded(b, b.TempDir(), nil)
		h.Org(8)
		ctx := context.Background()
		js, names := h.Node.JS, h.Node.Names
		day := time.Date(2026, 10, 12, 9, 0, 0, 0, time.UTC)
		start := time.Now()
		for i := 0; i < n; i++ {
			grid := nodetest.GridA(i%8 + 1)
			at := day.Add(time.Duration(i) * 13 * time.Second)
			inc := incident.Incident{ID: newID(b), Status: incident.Reported, Level: 2, UnitID: nodetest.CommunityA, GridID: grid,
				Category: []string{"place.sanitation", "thing.facility", "place.road"}[i%3], Description: "bench",
				CreatedAt: at, UpdatedAt: at, Version: 1, Photos: []string{},
				History: []incident.HistoryEntry{{At: at, By: "worker1", Action: "report", To: incident.Reported}}}
			publish := func() {
				doc, _ := json.Marshal(inc)
				data, _ := json.Marshal(command.Change{Collection: incident.Coll, Op: "put", ID: inc.ID, Version: inc.Version, Doc: doc})
				if _, err := js.PublishAsync(names.ChgSubject(org.PathSubject(grid), incident.Coll, inc.ID), data); err != nil {
					b.Fatal(err)
				}
			}
			publish()
			acc, due, closed := at.Add(time.Hour), at.Add(25*time.Hour), at.Add(5*time.Hour)
			inc.Status, inc.DueAt, inc.ClosedAt, inc.Version = incident.Closed, &due, &closed, 2
			inc.History = append(inc.History, incident.HistoryEntry{At: acc, By: "dispatcher", Action: "accept", To: incident.Accepted},
				incident.HistoryEntry{At: closed, By: "dispatcher", Action: "verify", To: incident.Closed})
			inc.Rating = &incident.Rating{Value: "satisfied", By: "worker1", At: closed.Add(time.Hour)}
			publish()
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish did not complete")
		}
		for {
			ok, err := h.Node.Projector.CaughtUp(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		rates = append(rates, 2*n/elapsed.Seconds())
		raws = append(raws, 2*n/rawStreamRead(b, h, names.ChgStream(), names.ChgSubject("*.*.*.*.*", incident.Coll, "*")))
		var r struct{ Reported, Closed int }
		admin := h.Login("district", "bench")
		if st := admin.Do("GET", "/v1/stats?from=2026-10-01&to=2026-10-31", nil, &r); st != 200 || r.Reported != n || r.Closed != n {
			b.Fatalf("figures after the run: %d %+v", st, r)
		}
		b.Logf("run %d: %d changes in %v (%.0f/s); projected %d", run, 2*n, elapsed.Round(time.Millisecond), rates[run], h.Node.Projector.Projected())
		h.Stop()
	}
	b.ReportMetric(median(rates), "changes/s")
	b.ReportMetric(median(raws), "raw-consume/s")
	b.ReportMetric(median(rates)/median(raws), "projector/raw-ratio")
}
